"""Export a finished float run to its targets and record float vs exported accuracy: the "today" baseline of the
train-for-target results (issue #19).

    python examples/export_record.py runs/nmnist_mlp-s0 --out results/lifnet/export/nmnist_mlp-s0.json

Runs :func:`spikeseq.train.cmd_export.export_run` (what ``spikeseq export RUN --checkpoint C`` runs; the run's
``[export] targets``, ``samples`` and writer options unless ``--target`` / ``--samples`` / ``--option`` say
otherwise, the checkpoint its ``train.eval_checkpoint`` names) and writes one record: the run's provenance (its
``spikeseq train`` command, commit, seed, recipe), the float test accuracy of the run's evaluation (``eval.json``:
the task's readout on the whole test split) and per target the model's and the exported graph's accuracy on the
verified samples, their prediction agreement and the lowest per-layer spike agreement (or the export's error
message). ``spikeseq results table`` renders these records through ``results/target/tables.toml``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from spikeseq import _atomic
from spikeseq.provenance import git_commit
from spikeseq.train.cmd_export import export_run
from spikeseq.train.rundir import RunDir, read_json


def target_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one target's export result (``RUN/export/<target>.json``) that the table shows."""
    if "error" in res:
        return {"error": res["error"]}
    layers = [v for v in (res.get("layer_agreement") or {}).values() if v is not None]
    return {"samples": res.get("samples"), "model_accuracy": res.get("model_accuracy"),
            "graph_accuracy": res.get("graph_accuracy"), "prediction_agreement": res.get("prediction_agreement"),
            "output_agreement": res.get("output_agreement"),
            "layer_agreement_min": min(layers) if layers else None, "artifact": res.get("artifact")}


def main(argv: list[str] | None = None) -> int:
    """Export, verify and write the record (see the module docstring); returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished `spikeseq train` run directory")
    ap.add_argument("--out", type=Path, required=True, help="the record to write (JSON)")
    ap.add_argument("--target", nargs="+", default=None, help="targets (default: the run's [export] targets)")
    ap.add_argument("--samples", type=int, default=None, help="verified test samples (default: [export] samples)")
    ap.add_argument("--option", action="append", default=[], metavar="TARGET.KEY=VALUE",
                    help="a writer option on top of [export.<target>], e.g. loihi.reset_policy=zero (the demo's)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    run = RunDir.open(args.run)
    cfg = run.config()
    meta = read_json(run.meta)
    which = cfg.train.eval_checkpoint
    ev = read_json(run.eval_json)
    if ev.get("checkpoint") != which:
        raise SystemExit(f"{run.eval_json} evaluates the {ev.get('checkpoint')!r} checkpoint, the recipe reports "
                         f"{which!r}: run `spikeseq eval {args.run} --checkpoint {which}` first")
    t0 = time.time()
    options: dict[str, dict[str, Any]] = {}
    for opt in args.option:
        key, _, value = opt.partition("=")
        target, _, name = key.partition(".")
        if not (target and name and value):
            raise SystemExit(f"--option {opt!r}: expected TARGET.KEY=VALUE, e.g. loihi.reset_policy=zero")
        options.setdefault(target, {})[name] = json.loads(value) if value[:1].isdigit() else value
    exported = export_run(args.run, args.target, args.samples, which=which, options=options)
    record = {
        "command": shlex.join(["python", "examples/export_record.py", *(sys.argv[1:] if argv is None else argv)]),
        "producer": "examples/export_record.py", "git": git_commit(),
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": {"recipe": cfg.name, "seed": cfg.train.seed, "command": shlex.join(meta.get("command") or []),
                "git": meta.get("git"), "git_dirty": meta.get("git_dirty"), "checkpoint": which},
        "metrics": {"float_acc": ev["test"]["acc"], "test_n": ev["test"]["n"],
                    "export": {t: target_summary(r) for t, r in exported.items()}},
        "export_s": round(time.time() - t0, 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["metrics"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
