"""Write results/spikegpt/shakespeare_<model>.json and shakespeare_summary.json from finished runs.

    python examples/spikegpt/collect_shakespeare.py runs/shakespeare_rwkv4 runs/shakespeare_spikegpt

Each JSON holds the commit and command of the run, its config, seed, the test-split metrics (last 10 % of
input.txt: nanoGPT's "val"), the wall time of training (run creation to the last checkpoint) and the parameter
count. The summary compares both with nanoGPT's documented CPU configuration (README of karpathy/nanoGPT: 4 layers,
4 heads, 128 wide, block 64, 2,000 iterations, validation loss about 1.88 nats = 2.71 bits per character).
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime
from pathlib import Path


def nanogpt_parameters(n_layer: int = 4, d: int = 128, vocab: int = 65) -> int:
    """nanoGPT's parameter count at its CPU configuration, computed from its model definition (bias off as in its
    train.py, head tied to the token embedding, position embeddings left out as nanoGPT's own count does): per block
    two LayerNorm weights, the attention (3 d^2 + d^2) and the MLP (8 d^2); then the token embedding and ln_f."""
    return n_layer * (2 * d + 4 * d * d + 8 * d * d) + vocab * d + d


NANOGPT_CPU = {"val_loss_nats": 1.88, "val_bpc": round(1.88 / math.log(2), 3), "layers": 4, "width": 128,
               "block": 64, "iterations": 2000, "parameters": nanogpt_parameters(),
               "source": "karpathy/nanoGPT README, shakespeare_char on a CPU (validation loss); parameters computed "
                         "from its model definition at that configuration"}


def collect(run: Path) -> dict:
    """The result record of one run directory."""
    meta = json.loads((run / "run.json").read_text())
    ev = json.loads((run / "eval.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    metrics = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    return {
        "model": ev["model"]["name"], "parameters": ev["model"]["parameters"],
        "command": " ".join(meta["command"]), "commit_of_run": meta["git"], "seed": meta["seed"],
        "config": cfg, "versions": meta["versions"],
        "steps": ev["step"], "checkpoint": ev["checkpoint"],
        "test": {k: ev["test"].get(k) for k in ("bpc", "loss", "ppl", "perplexity", "tokens")},
        "val_during_training": metrics,
        "train_wall_s_last_epoch_end": metrics[-1]["time_s"] if metrics else None,
        "train_wall_s_to_last_checkpoint": round((run / "checkpoints" / "last.pt").stat().st_mtime - datetime.strptime(
            meta["created"], "%Y-%m-%dT%H:%M:%S%z").timestamp(), 1),
        "note": ("wall times are from a 2-core machine shared by 8 agents (load average about 14 during these runs): "
                 "each run had a CPU share of about 13 %. Both runs: the same code (language_modelling task: "
                 "cross-entropy summed over a window's tokens), recipe and overrides, run side by side."),
    }


def main(argv: list[str]) -> int:
    """Collect the runs named in ``argv`` and write the JSON files."""
    out = Path("results/spikegpt")
    out.mkdir(parents=True, exist_ok=True)
    recs = {}
    for r in argv:
        rec = collect(Path(r))
        recs[rec["model"]] = rec
        (out / f"shakespeare_{rec['model']}.json").write_text(json.dumps(rec, indent=2) + "\n")
    summary = {"command": "python examples/spikegpt/collect_shakespeare.py " + " ".join(argv),
               "nanogpt_cpu_reference": NANOGPT_CPU,
               "test_bpc": {m: r["test"]["bpc"] for m, r in recs.items()},
               "parameters": {m: r["parameters"] for m, r in recs.items()}}
    if {"spikegpt", "rwkv4"} <= recs.keys():
        gap = recs["spikegpt"]["test"]["bpc"] - recs["rwkv4"]["test"]["bpc"]
        summary["spikegpt_minus_rwkv4_bpc"] = gap
        summary["within_0.15"] = gap <= 0.15
        summary["both_beat_nanogpt_2.71"] = all(r["test"]["bpc"] < NANOGPT_CPU["val_bpc"] for r in recs.values())
    (out / "shakespeare_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
