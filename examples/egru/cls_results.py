"""Collect an EGRU classifier run and its GRU baseline into ``results/egru/<name>.json``.

    python examples/egru/cls_results.py --egru runs/egru_hapt --gru runs/egru_hapt_gru --out results/egru/hapt.json

Per run: command, commit, seed, config (run.json / config.json) and the test accuracy of eval.json; for the EGRU,
the activity sparsity of its events on the test split. The gap is stated against the issue's target (within 1.5
points of the GRU).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from spikeseq import _atomic
from spikeseq.models import registry
from spikeseq.train import checkpoint
from spikeseq.train.config import load_config
from spikeseq.train.datasets import prepare, time_first


def summary(run: Path) -> dict:
    """Command, commit, seed, config and test accuracy of a finished run."""
    info = json.loads((run / "run.json").read_text())
    ev = json.loads((run / "eval.json").read_text())
    return {"run": str(run), "command": " ".join(info["command"]), "git": info.get("git"),
            "git_dirty": info.get("git_dirty"), "seed": info["seed"],
            "config": json.loads((run / "config.json").read_text()), "test_acc": ev["test"]["acc"],
            "test_n": ev["test"]["n"], "checkpoint": ev["checkpoint"], "epoch": ev["epoch"]}


@torch.no_grad()
def activity_sparsity(run: Path) -> float:
    """Fraction of zero events of the evaluated EGRU checkpoint over the test split."""
    cfg = load_config(run / "config.toml")
    ev = json.loads((run / "eval.json").read_text())
    model = registry.build(cfg.model.name, **cfg.model.kwargs)
    model.load_state_dict(checkpoint.load(run / "checkpoints" / f"{ev['checkpoint']}.pt", map_location="cpu")["model"])
    model.eval()
    data = prepare(cfg.data, cfg.train.seed)
    zeros = n = 0.0
    for i in range(0, len(data.test), 256):
        x = time_first(data.test.x[i:i + 256])
        out, _ = model.rnn(x.reshape(x.shape[0], x.shape[1], -1))
        zeros += float((out.events == 0).sum())
        n += out.events.numel()
    return zeros / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--egru", type=Path, required=True)
    ap.add_argument("--gru", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    egru, gru = summary(args.egru), summary(args.gru)
    egru["activity_sparsity"] = activity_sparsity(args.egru)
    gap = 100 * (gru["test_acc"] - egru["test_acc"])
    command = f"python examples/egru/cls_results.py --egru {args.egru} --gru {args.gru} --out {args.out}"
    out = {"schema": 1, "producer": "examples/egru/cls_results.py", "command": command,
           "metrics": {"egru": egru, "gru": gru},
           "comparison": {"gru_minus_egru_points": gap, "target_points": 1.5, "met": bool(gap <= 1.5)}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(args.out, json.dumps(out, indent=2, default=str))
    print(f"egru acc {egru['test_acc']:.4f} (activity sparsity {egru['activity_sparsity']:.3f}), gru acc "
          f"{gru['test_acc']:.4f}: gap {gap:.2f} points; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
