"""Write per-seed records results/spikegpt/shakespeare_<model>-s<seed>.json and shakespeare_summary.json.

    python examples/spikegpt/collect_shakespeare.py runs/sg_rwkv4_s0 runs/sg_spikegpt_s0 runs/sg_rwkv4_s1 ...

Each record holds the commit and command of the run, its config, seed, the test-split metrics (last 10 % of
input.txt: nanoGPT's "val") of the checkpoint the recipe evaluates (``train.eval_checkpoint``), the wall time of
training (run creation to the last checkpoint) and the parameter count. The summary gives the per-seed and mean
SpikeGPT - RWKV-4 gap over the seeds both models ran, and compares both with nanoGPT's documented CPU configuration
(README of karpathy/nanoGPT: 4 layers, 4 heads, 128 wide, block 64, 2,000 iterations, validation loss about 1.88
nats = 2.71 bits per character). The records of the earlier 3,000-step recipe (``shakespeare_<model>.json``) stay.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
from datetime import datetime
from pathlib import Path

from spikeseq import _atomic


def nanogpt_parameters(n_layer: int = 4, d: int = 128, vocab: int = 65) -> int:
    """nanoGPT's parameter count at its CPU configuration, computed from its model definition (bias off as in its
    train.py, head tied to the token embedding, position embeddings left out as nanoGPT's own count does): per block
    two LayerNorm weights, the attention (3 d^2 + d^2) and the MLP (8 d^2); then the token embedding and ln_f."""
    return n_layer * (2 * d + 4 * d * d + 8 * d * d) + vocab * d + d


NANOGPT_CPU = {"val_loss_nats": 1.88, "val_bpc": round(1.88 / math.log(2), 3), "layers": 4, "width": 128,
               "block": 64, "iterations": 2000, "parameters": nanogpt_parameters(), "wall_s": 180,
               "source": "karpathy/nanoGPT README, shakespeare_char on a CPU (validation loss; 'This still runs in "
                         "about ~3 minutes'); parameters computed from its model definition at that configuration"}


def collect(run: Path) -> dict:
    """The result record of one run directory."""
    missing = [n for n in ("run.json", "eval.json", "config.json", "metrics.jsonl", "checkpoints/last.pt")
               if not (run / n).is_file()]
    if missing:
        raise SystemExit(f"collect_shakespeare: {run} is not a finished, evaluated `spikeseq train` run (missing "
                         f"{', '.join(missing)}); train it with its recipe (without --no-eval) or run `spikeseq eval "
                         f"{run}` first")
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
        "machine": {"cpus": os.cpu_count(), "load_average_at_collection": list(os.getloadavg())},
        "note": ("both models: the same code (language_modelling task: cross-entropy summed over a window's tokens), "
                 "recipe budget and seed, run side by side, one thread each"),
    }


def main(argv: list[str]) -> int:
    """Collect the runs named in ``argv`` and write the JSON files."""
    out = Path("results/spikegpt")
    out.mkdir(parents=True, exist_ok=True)
    recs: dict[str, dict[int, dict]] = {}
    for r in argv:
        rec = collect(Path(r))
        recs.setdefault(rec["model"], {})[rec["seed"]] = rec
        _atomic.write_text(out / f"shakespeare_{rec['model']}-s{rec['seed']}.json", json.dumps(rec, indent=2) + "\n")
    summary = {"command": "python examples/spikegpt/collect_shakespeare.py " + " ".join(argv),
               "nanogpt_cpu_reference": NANOGPT_CPU,
               "test_bpc": {m: {str(s): r["test"]["bpc"] for s, r in sorted(by.items())} for m, by in recs.items()},
               "parameters": {m: next(iter(by.values()))["parameters"] for m, by in recs.items()}}
    if {"spikegpt", "rwkv4"} <= recs.keys():
        seeds = sorted(recs["spikegpt"].keys() & recs["rwkv4"].keys())
        gaps = [recs["spikegpt"][s]["test"]["bpc"] - recs["rwkv4"][s]["test"]["bpc"] for s in seeds]
        summary["spikegpt_minus_rwkv4_bpc"] = {"per_seed": dict(zip(map(str, seeds), gaps)),
                                               "mean": statistics.fmean(gaps), "max": max(gaps)}
        summary["within_0.15"] = max(gaps) <= 0.15
        summary["both_beat_nanogpt_2.71"] = all(r["test"]["bpc"] < NANOGPT_CPU["val_bpc"]
                                                for by in recs.values() for r in by.values())
    _atomic.write_text(out / "shakespeare_summary.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
