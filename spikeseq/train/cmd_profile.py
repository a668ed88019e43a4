"""``spikeseq profile RUN``: operation counts per layer and time step, energy per hardware table.

Writes ``RUN/profile.json`` (``{"report": ProfileReport.to_dict(), "energy": {table: {"memory_on": ...,
"memory_off": ...}}}``), ``RUN/profile.md`` and, when :mod:`spikeseq.profile.plots` is available,
``RUN/profile.png``. The counts are per sample over ``[profile] samples`` test samples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spikeseq._args import positive_int
from spikeseq.errors import ConfigError, SpikeseqError


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq profile`` arguments (``RUN``, ``--tables``, ``--samples``, ``--checkpoint``) to ``parser``."""
    parser.add_argument("run", type=Path, help="run directory written by `spikeseq train`")
    parser.add_argument("--tables", nargs="+", default=None, metavar="TABLE",
                        help="hardware tables (default: [profile] tables, or all of spikeseq.hardware.available())")
    parser.add_argument("--samples", type=positive_int, default=None,
                        help="test samples to profile ([profile] samples)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default=None,
                        help="which checkpoint (default: the run's train.eval_checkpoint, as in its eval.json, of a "
                             "finished run only; naming one also loads an unfinished run's)")


def _profile_api():
    from spikeseq import profile
    from spikeseq.hardware import available

    return profile, available


def profile_run(path: str | Path, tables: list[str] | None = None, samples: int | None = None,
                which: str | None = "best", plot: bool = True) -> dict[str, Any]:
    """Profile the run's model on ``samples`` test samples, price it with ``tables``, write ``profile.*``
    (``profile.png`` only with ``plot``).

    Returns what ``profile.json`` holds; ``ConfigError`` for an unknown hardware table.
    """
    from spikeseq.train.rundir import write_json, write_text
    from spikeseq.train.runs import load_run, sample_inputs

    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ConfigError(f"--samples must be an integer >= 1 (test samples to profile), got {samples!r}")
    lr = load_run(path, which)
    profile, available = _profile_api()
    known = available()
    tables = tables or lr.cfg.profile.tables or known
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise ConfigError(f"unknown hardware table(s) {', '.join(unknown)}; known tables: {', '.join(known)}")
    n = samples or lr.cfg.profile.samples
    x, _ = sample_inputs(lr.data(), n, lr.cfg.train.seed)
    report = profile.count(lr.model, x, name=lr.cfg.model.name)
    energy = {}
    for t in tables:
        est = {}
        for key, mem in (("memory_on", True), ("memory_off", False)):
            try:
                est[key] = report.energy(t, memory=mem).to_dict()
            except SpikeseqError as e:  # a table without energy figures (e.g. no published numbers)
                est[key] = {"table": t, "total_pj": None, "per_layer_pj": {}, "terms_pj": {}, "notes": [str(e)]}
        energy[t] = est
    result = {"checkpoint": lr.which, "samples": int(x.shape[1]), "tables": tables,
              "report": report.to_dict(tables), "energy": energy}
    run = lr.run
    write_json(run.path / "profile.json", result)
    write_text(run.path / "profile.md", report.to_markdown(tables))
    try:
        from spikeseq.profile.plots import plot_profile
    except ImportError:
        plot_profile = None
    if plot and plot_profile is not None:
        plot_profile(report, run.path / "profile.png")
    return result


def run(args: argparse.Namespace) -> int:
    """Profile the run and print the per-sample totals and energies; returns 0."""
    result = profile_run(args.run, args.tables, args.samples, args.checkpoint)
    tot = result["report"]["totals_per_sample"]
    print(f"profiled {result['samples']} test samples of {args.run} (per sample):")
    for key in ("dense_macs", "eff_macs", "eff_acs", "spikes_out"):
        if key in tot:
            print(f"  {key:<12} {tot[key]:.6g}")
    for t, e in result["energy"].items():
        on, off = e["memory_on"]["total_pj"], e["memory_off"]["total_pj"]
        fmt = lambda v: "n/a" if v is None else f"{v / 1e3:.4g} nJ"  # noqa: E731
        print(f"  energy {t:<13} {fmt(on)} (memory on), {fmt(off)} (memory off)")
    print(f"wrote {Path(args.run) / 'profile.json'} and profile.md", file=sys.stderr)
    return 0
