"""``spikeseq export RUN --target nir loihi spinnaker2``: export the trained model and verify the export.

For each target, :func:`spikeseq.verify.export_and_verify` writes the exported files under ``RUN/export/``
(``model.nir``, ``model.net``, ``spinnaker2/network.json`` + its build script) and compares the exported
(quantised) graph with the torch model on ``[export] samples`` test samples (per-layer spike agreement, output
agreement, accuracies, mapping report). The result goes to ``RUN/export/<target>.json`` and ``.md``. A target
that fails is reported and the others still run; the exit code is 1 if any failed. Writer options per target come
from ``[export.<target>]`` (e.g. ``[export.loihi] reset_policy = "zero"``). A run trained for a target
(``[train] target``) is exported with the numerics it was trained with (the checkpoint's ``"target"`` settings, e.g.
the input payloads' fractional bits), and its result also holds ``target_mode``: target mode against the bit-exact
interpreter on the same samples (:func:`spikeseq.train.target.target_agreement`; spike agreement 1.0 per node).
A run whose training did not finish (``run.json`` status not ``"finished"``) is refused unless ``--checkpoint``
names the checkpoint to export (:func:`spikeseq.train.runs.load_run`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from spikeseq._args import positive_int
from spikeseq.errors import ConfigError, SpikeseqError

TARGETS = ("nir", "loihi", "spinnaker2")
#: the exported file of each target under RUN/export/
ARTIFACTS = {"nir": "model.nir", "loihi": "model.net", "spinnaker2": "spinnaker2/network.json"}


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq export`` arguments (``RUN``, ``--target``, ``--samples``, ``--checkpoint``) to ``parser``."""
    parser.add_argument("run", type=Path, help="run directory written by `spikeseq train`")
    parser.add_argument("--target", nargs="+", default=None, choices=TARGETS, metavar="TARGET",
                        help=f"one or more of {', '.join(TARGETS)} (default: [export] targets)")
    parser.add_argument("--samples", type=positive_int, default=None, help="test samples for verification")
    parser.add_argument("--checkpoint", choices=("best", "last"), default=None,
                        help="which checkpoint (default: the run's train.eval_checkpoint, as in its eval.json, of a "
                             "finished run only; naming one also loads an unfinished run's)")


def export_run(path: str | Path, targets: list[str] | None = None, samples: int | None = None,
               which: str | None = "best", options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Export and verify each target; returns ``{target: result dict or {"error": message}}``. ``options``: writer
    options per target on top of the run's ``[export.<target>]`` (e.g. ``{"loihi": {"reset_policy": "zero"}}``)."""
    from spikeseq._atomic import ensure_dir
    from spikeseq.progress import progress
    from spikeseq.train.rundir import write_json, write_text
    from spikeseq.train.runs import load_run, model_dt, sample_inputs
    from spikeseq.train.target import TargetMode, TargetSettings, target_agreement
    from spikeseq.train.tasks import task_for
    from spikeseq.verify import export_and_verify

    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ConfigError(f"--samples must be an integer >= 1 (test samples run through the export), got "
                          f"{samples!r}")
    lr = load_run(path, which)
    targets = targets or lr.cfg.export.targets
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        raise ConfigError(f"unknown export target(s) {', '.join(bad)}; known targets: {', '.join(TARGETS)}")
    export_dir = lr.run.export_dir  # checked before anything is computed or written
    for folder in sorted({export_dir, *((export_dir / ARTIFACTS[t]).parent for t in targets)}):
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder} is a file, not a directory; `spikeseq export` writes its files into that "
                              "folder: move or delete the file and run the command again (nothing was written)")
    for t in targets:
        if (export_dir / ARTIFACTS[t]).is_dir():
            raise ConfigError(f"{export_dir / ARTIFACTS[t]} is a directory, but the {t} export is written to that "
                              "file name: move it away and run the command again (nothing was written)")
    dt = lr.cfg.export.dt or model_dt(lr.model)
    if dt is None:
        raise ConfigError(f"cannot tell the time step of model {lr.cfg.model.name!r} of {lr.run.path}: none of its "
                          "modules stores a dt and the run's config has no export.dt; retrain with "
                          "--set export.dt=SECONDS (or [export] dt in the recipe), or add \"dt\": SECONDS to the "
                          f"\"export\" section of {lr.run.config_json} (nothing was written)")
    asked = samples or lr.cfg.export.samples
    x, y = sample_inputs(lr.data(), asked, lr.cfg.train.seed)
    if x.shape[1] < asked:   # said, not silently: the records hold the number used ("samples")
        print(f"[export] note: the run's test split has {x.shape[1]} samples; verifying on all {x.shape[1]}, not the "
              f"{asked} asked for", file=sys.stderr)
    if lr.cfg.train.readout == "max":
        raise ConfigError("export verification compares predictions from the summed or last output; a model "
                          "trained with train.readout = 'max' cannot be checked that way")
    readout = lr.cfg.train.readout if lr.cfg.train.readout in ("last", "softmax_sum") else "sum"  # mean: as sum
    if task_for(lr.cfg).name == "language_modelling":   # next-token predictions at every step, labels [B, T]
        readout = "per_step"
    out_dir = ensure_dir(lr.run.export_dir)
    results: dict[str, Any] = {}
    trained_for = lr.ckpt.get("target")  # a target-mode run: its stored numerics (input bits k, ...) are reused
    for target in progress(targets, total=len(targets), desc="export + verify"):
        artifact = out_dir / ARTIFACTS[target]
        ensure_dir(artifact.parent)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                kwargs = {**getattr(lr.cfg.export, target), **(options or {}).get(target, {})}
                if trained_for and trained_for.get("target") == target:
                    kwargs.update(TargetSettings(**trained_for).export_kwargs())
                res = export_and_verify(lr.model, target, artifact, x, y, dt=dt, readout=readout, **kwargs)
                extra = {}
                if trained_for and trained_for.get("target") == target:
                    tm = TargetMode(lr.model, TargetSettings(**trained_for), dt=dt)
                    extra["target_mode"] = target_agreement(tm, x, y, lr.cfg.train.readout)
            _replay(caught, target)
        except SpikeseqError as e:
            results[target] = {"target": target, "error": str(e)}
            write_json(out_dir / f"{target}.json", results[target])
            write_text(out_dir / f"{target}.md", f"### Export to {target}: failed\n\n{e}\n")
            continue
        results[target] = {**res.to_dict(), **extra}
        write_json(out_dir / f"{target}.json", results[target])
        write_text(out_dir / f"{target}.md", res.to_markdown())
    return results


def _replay(caught: list, target: str) -> None:
    """One plain line per distinct NIR extension warning (no source lines; the verification notes in the report
    say the same); every other warning is re-issued as it was."""
    from spikeseq.export.nir import NIRExtensionWarning

    seen = set()
    for w in caught:
        if issubclass(w.category, NIRExtensionWarning):
            if str(w.message) not in seen:
                seen.add(str(w.message))
                print(f"[export] {target}: note: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def run(args: argparse.Namespace) -> int:
    """Export and verify every target, print one line each; returns 1 if any target failed, else 0."""
    results = export_run(args.run, args.target, args.samples, args.checkpoint)
    failed = 0
    for target, r in results.items():
        if "error" in r:
            failed += 1
            print(f"{target:<11} FAILED: {r['error']}", file=sys.stderr)
            continue
        summary = {k: r.get(k) for k in ("output_agreement", "prediction_agreement", "model_accuracy",
                                         "graph_accuracy")}
        print(f"{target:<11} ok  " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in summary.items()) + f"  -> {r.get('artifact')}")
    print(f"wrote {Path(args.run) / 'export'}", file=sys.stderr)
    return 1 if failed else 0
