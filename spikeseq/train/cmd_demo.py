"""``spikeseq demo``: the main job end to end on real HAR data available offline.

train -> test evaluation -> export to NIR / Loihi-style / SpiNNaker2-style with verification -> op/energy profile
-> HTML + Markdown report, then print where the report is. The dataset is HAPT when the data root
(``SPIKESEQ_DATA``) has it, else BasicMotions; the model is L2MU when it is registered, else the recurrent LIF
``rsnn``. A stage whose component is not available in this build is reported as such (in the summary and in the
report), never replaced by made-up numbers. The configs are below (``DEMO_CONFIGS``); ``examples/har_l2mu.toml``
is the same recipe for ``spikeseq train``.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError, DataError, SpikeseqError

# Small enough to train on 2 CPU cores in about a minute (one torch thread: these recurrent models run many tiny
# ops per step, where a second thread costs more than it gains and collapses under CPU contention).
_TRAIN = {"epochs": 3, "batch_size": 64, "lr": 3e-3, "optimizer": "adam", "seed": 0, "threads": 1,
          "eval_batch_size": 512}
DEMO_CONFIGS: dict[tuple[str, str], dict[str, Any]] = {
    ("l2mu", "hapt"): {
        "model": {"name": "l2mu", "input_size": 6, "n_classes": 6, "hidden_size": 64, "memory_size": 32,
                  "order": 4, "input_pop_size": 32, "dt": 0.02},
        "data": {"name": "hapt", "normalize": True, "val_fraction": 0.1},
        "train": {**_TRAIN, "readout": "last"},
    },
    ("l2mu", "basicmotions"): {
        "model": {"name": "l2mu", "input_size": 6, "n_classes": 4, "hidden_size": 64, "memory_size": 32,
                  "order": 4, "input_pop_size": 32, "dt": 0.1},
        "data": {"name": "basicmotions", "normalize": True, "val_fraction": 0.2},
        "train": {**_TRAIN, "epochs": 40, "batch_size": 8, "readout": "last"},
    },
    # rsnn: reset to zero and integer-valued inputs, so that the Loihi-style target (reset to zero, integer graded
    # spikes in) runs exactly the trained model
    ("rsnn", "hapt"): {
        "model": {"name": "rsnn", "n_in": 6, "n_out": 6, "hidden": 128, "tau_mem": 0.1, "dt": 0.02, "reset": "zero"},
        "data": {"name": "hapt", "normalize": True, "val_fraction": 0.1, "input_scale": 4.0},
        "train": {**_TRAIN, "readout": "mean"},
    },
    ("rsnn", "basicmotions"): {
        "model": {"name": "rsnn", "n_in": 6, "n_out": 4, "hidden": 64, "tau_mem": 0.5, "dt": 0.1, "reset": "zero"},
        "data": {"name": "basicmotions", "normalize": True, "val_fraction": 0.2, "input_scale": 4.0},
        "train": {**_TRAIN, "epochs": 40, "batch_size": 8, "readout": "mean"},
    },
}
# L2MU keeps spikeseq's subtractive reset; the Loihi writer may apply reset-to-zero (verification measures it).
COMMON = {"export": {"targets": ["nir", "loihi", "spinnaker2"], "samples": 128, "loihi": {"reset_policy": "zero"}},
          "profile": {"tables": [], "samples": 16}}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (default: runs/demo)")
    parser.add_argument("--dataset", choices=("hapt", "basicmotions"), default=None,
                        help="default: hapt when the data root has it, else basicmotions")
    parser.add_argument("--model", choices=("l2mu", "rsnn"), default=None,
                        help="default: l2mu when available, else rsnn")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=1")
    parser.add_argument("--force", action="store_true", help="replace a run in --out that `demo` did not write")


def _pick_model(requested: str | None) -> str:
    from spikeseq.models import registry

    known = registry.names()
    if requested is not None:
        if requested not in known:
            raise ConfigError(f"model {requested!r} is not available in this build; known models: {', '.join(known)}")
        return requested
    return "l2mu" if "l2mu" in known else "rsnn"


def _pick_data(requested: str | None, model: str, overrides: list[str]):
    """(config, prepared data) for the first dataset that loads."""
    from spikeseq.train.config import apply_overrides, from_dict
    from spikeseq.train.datasets import prepare

    candidates = [requested] if requested else ["hapt", "basicmotions"]
    reasons = []
    for name in candidates:
        raw = apply_overrides({"name": f"demo-{model}-{name}", **copy.deepcopy(DEMO_CONFIGS[(model, name)]),
                               **copy.deepcopy(COMMON)}, overrides)
        cfg = from_dict(raw, "demo config")
        try:
            return cfg, prepare(cfg.data, cfg.train.seed)
        except (DataError, FileNotFoundError) as e:
            reasons.append(f"{name}: {e}")
            if requested:
                raise
    raise DataError("no HAR dataset found for the demo (" + "; ".join(reasons) + "); set SPIKESEQ_DATA to the "
                    "data root (e.g. ../shared/data) or fetch BasicMotions with `spikeseq data fetch basicmotions`")


def _stage(name: str, timings: dict[str, float], notes: dict[str, str], fn, *a, **kw):
    t0 = time.time()
    print(f"[demo] {name} ...", file=sys.stderr, flush=True)
    try:
        return fn(*a, **kw)
    except SpikeseqError as e:
        notes[name] = str(e)
        print(f"[demo] {name}: not done: {e}", file=sys.stderr)
        return None
    finally:
        timings[name] = round(time.time() - t0, 2)


def _prepare_out(out: Path, force: bool) -> None:
    from spikeseq.train.rundir import RunDir, read_json

    run = RunDir(out)
    if run.is_run() and not force:
        cmd = read_json(run.meta).get("command", [])
        if "demo" not in cmd:
            raise ConfigError(f"{out} holds a run that `spikeseq demo` did not write; choose another --out or pass "
                              "--force")


def run(args: argparse.Namespace) -> int:
    from spikeseq.train import loop
    from spikeseq.train.cmd_export import export_run
    from spikeseq.train.cmd_profile import profile_run
    from spikeseq.train.rundir import RunDir, write_json
    from spikeseq.train.runs import evaluate_run

    t_start = time.time()
    timings: dict[str, float] = {}
    notes: dict[str, str] = {}
    _prepare_out(args.out, args.force)
    model = _pick_model(args.model)
    t0 = time.time()
    cfg, data = _pick_data(args.dataset, model, args.overrides)
    timings["data"] = round(time.time() - t0, 2)
    print(f"[demo] {cfg.model.name} on {cfg.data.name}: {data.info['n_train']} train / {data.info['n_val']} val / "
          f"{data.info['n_test']} test windows, {data.info['sample_shape']}", file=sys.stderr)
    loop.preflight(cfg)
    run_dir = RunDir.prepare(args.out, cfg, force=True, argv=["spikeseq", "demo", *sys.argv[2:]])
    t0 = time.time()
    print("[demo] train ...", file=sys.stderr, flush=True)
    summary = loop.fit(cfg, run_dir, data=data)
    run_dir.set_status(summary["status"], step=summary["step"], best=summary["best"])
    timings["train"] = round(time.time() - t0, 2)
    if summary["status"] == "interrupted":
        print(f"[demo] interrupted; the run so far is in {run_dir.path}", file=sys.stderr)
        return 130
    ev = _stage("evaluate", timings, notes, evaluate_run, run_dir.path)
    exports = _stage("export", timings, notes, export_run, run_dir.path) or {}
    prof = _stage("profile", timings, notes, profile_run, run_dir.path)
    t0 = time.time()
    print("[demo] report ...", file=sys.stderr, flush=True)
    # The report layer is a sibling of train (import-linter): run it as its own command.
    proc = subprocess.run([sys.executable, "-m", "spikeseq.cli", "report", str(run_dir.path)], capture_output=True,
                          text=True)
    timings["report"] = round(time.time() - t0, 2)
    if proc.returncode != 0:
        notes["report"] = proc.stderr.strip()
    timings["total"] = round(time.time() - t_start, 2)
    result = {"model": cfg.model.name, "dataset": cfg.data.name, "timings_s": timings, "not_done": notes,
              "test_acc": ev["test"]["acc"] if ev else None,
              "exports": {t: ("error: " + r["error"]) if "error" in r else "ok" for t, r in exports.items()},
              "profiled": prof is not None}
    write_json(run_dir.path / "demo.json", result)
    print(json.dumps(result, indent=2), file=sys.stderr)
    html = run_dir.report_dir / "index.html"
    if proc.returncode != 0:
        raise SpikeseqError(f"the report failed: {notes['report']}")
    print(f"\nreport: {html.resolve()}")
    return 0
