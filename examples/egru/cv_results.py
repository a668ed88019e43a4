"""Collect a k-fold cross-validation of an EGRU classifier against its GRU baseline into one record.

    python examples/egru/cv_results.py --egru runs/cv/egru-f* --gru runs/cv/gru-f* \
        --out results/egru/cv10_nmnist.json

Each fold is one pair of runs of the recipes with ``--set data.cv_folds=K --set data.cv_fold=F`` (the fold is the
test split, :func:`spikeseq.train.datasets.cv_split`), so every training recording is tested exactly once. The
record holds, per fold, both runs' provenance and test accuracy (each checked against the run's own ``eval.json``:
the predictions are recomputed from the evaluated checkpoint) and the EGRU's activity sparsity; pooled over the
folds, both accuracies, the paired gap with two standard errors (over the (fold, seed) pairs, and over the
recordings from the per-recording differences), and the discordant counts (tests only one of the two models gets
right). Runs with other seeds on the same folds repeat the cross-validation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

import torch

from spikeseq import _atomic
from spikeseq.errors import SpikeseqError
from spikeseq.models import registry
from spikeseq.train import checkpoint
from spikeseq.train.config import load_config
from spikeseq.train.datasets import prepare, time_first
from spikeseq.train.evaluate import predict

#: the issue's target: the EGRU within this many points of the GRU (issue #16)
TARGET_POINTS = 1.5


def fold_run(run: Path) -> dict:
    """Provenance, fold, per-recording correctness and (for an EGRU) activity sparsity of one finished run."""
    try:
        info = json.loads((run / "run.json").read_text())
        ev = json.loads((run / "eval.json").read_text())
        cfg = load_config(run / "config.toml")
        if cfg.data.cv_folds is None:
            raise SystemExit(f"{run}: not a cross-validation run (its config has no data.cv_folds)")
        model = registry.build(cfg.model.name, **cfg.model.kwargs)
        state = checkpoint.load(run / "checkpoints" / f"{ev['checkpoint']}.pt", map_location="cpu")["model"]
        model.load_state_dict(state)
        data = prepare(cfg.data, cfg.train.seed)
    except (OSError, ValueError, KeyError, SpikeseqError) as e:  # a missing file, checkpoint or key: name the run
        raise SystemExit(f"{run}: cannot be collected ({type(e).__name__}: {e}); finish the run (or write its "
                         f"eval.json with `spikeseq eval {run}`), or leave it out") from None
    logits = predict(model, data.test.x, cfg.train.eval_batch_size, cfg.train.readout, torch.device("cpu"))
    correct = (logits.argmax(1) == data.test.y).long()
    acc = float(correct.float().mean())
    if abs(acc - ev["test"]["acc"]) > 1e-6:
        raise SystemExit(f"{run}: recomputed test accuracy {acc} differs from its eval.json ({ev['test']['acc']})")
    out = {"run": str(run), "command": " ".join(info["command"]), "git": info.get("git"),
           "git_dirty": info.get("git_dirty"), "seed": info["seed"], "model": cfg.model.name,
           "folds": cfg.data.cv_folds, "fold": cfg.data.cv_fold, "test_n": len(data.test), "test_acc": acc,
           "checkpoint": ev["checkpoint"], "epoch": ev["epoch"], "correct": correct.tolist(),
           "test_labels": hashlib.sha256(data.test.y.to(torch.int64).numpy().tobytes()).hexdigest()[:16]}
    rnn = getattr(model, "rnn", None)
    if rnn is not None and "egru" in cfg.model.name:
        with torch.no_grad():
            events = [rnn(time_first(data.test.x[i:i + 256]).flatten(2))[0].events
                      for i in range(0, len(data.test), 256)]
        out["activity_sparsity"] = float(sum(int((e == 0).sum()) for e in events) / sum(e.numel() for e in events))
    return out


def _mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else float("nan")
    return mean, math.sqrt(var / n)


def _repeat_key(keys: list[tuple[int, int]]):
    """Which repeat a (fold, seed) run belongs to: its seed when every fold ran the same seeds (e.g. seed 0 for
    every fold), else ``seed - fold`` when every fold ran the same offsets (seed = repeat + fold, as in
    cv10_nmnist.json); anything else is refused (the repeats would be guessed)."""
    by_fold: dict[int, set[int]] = {}
    for fold, seed in keys:
        by_fold.setdefault(fold, set()).add(seed)
    if len({frozenset(v) for v in by_fold.values()}) == 1:
        return lambda k: k[1]
    if len({frozenset(s - f for s in v) for f, v in by_fold.items()}) == 1:
        return lambda k: k[1] - k[0]
    raise SystemExit("cannot tell the repeats of the cross-validation apart: give every fold the same seeds, or "
                     "seed = repeat + fold for every fold (and the same repeats for every fold); seeds per fold: "
                     + ", ".join(f"{f}: {sorted(v)}" for f, v in sorted(by_fold.items())))


def summarise(egru: list[dict], gru: list[dict]) -> dict:
    """Pooled accuracies, the paired gap (points) with its standard errors, and the discordant counts.

    Runs pair by (fold, seed); a repeated cross-validation (the same folds, other seeds) tests each recording once
    per repeat, so the standard error over recordings is taken of each recording's gap averaged over the repeats."""
    by_key = {(r["fold"], r["seed"]): r for r in gru}
    keys = sorted((r["fold"], r["seed"]) for r in egru)
    if sorted(by_key) != keys or len(set(keys)) != len(keys):
        raise SystemExit("--egru and --gru must name one run per (fold, seed), the same pairs")
    folds = egru[0]["folds"]
    if any(r["folds"] != folds for r in egru + gru):
        raise SystemExit("every run must use the same data.cv_folds")
    if {r["run"] for r in egru if "run" in r} & {r["run"] for r in gru if "run" in r}:
        raise SystemExit("a run is named in both --egru and --gru")
    labels: dict[int, set[str]] = {}
    for r in egru + gru:  # every run of a fold tests the same recordings (same dataset, fold, max_test, ...)
        if "test_labels" in r:
            labels.setdefault(r["fold"], set()).add(r["test_labels"])
    if any(len(v) > 1 for v in labels.values()):
        raise SystemExit("runs of one fold were tested on different recordings (their test labels differ: another "
                         "dataset, data.max_test or data option); collect runs of one cross-validation only")
    egru_by_key = {(r["fold"], r["seed"]): r for r in egru}
    pairs = [(egru_by_key[k], by_key[k]) for k in keys]
    per_recording: dict[tuple[int, int], list[int]] = {}
    for eg, gr in pairs:
        for i, (e, g) in enumerate(zip(eg["correct"], gr["correct"], strict=True)):
            per_recording.setdefault((eg["fold"], i), []).append(g - e)
    rec_gaps = [100.0 * sum(d) / len(d) for d in per_recording.values()]
    gap, se_rec = _mean_se(rec_gaps)
    pair_gaps = [100 * (gr["test_acc"] - eg["test_acc"]) for eg, gr in pairs]
    gap_pairs, se_pairs = _mean_se(pair_gaps)
    repeat_of = _repeat_key(keys)
    repeats = sorted({repeat_of(k) for k in keys})
    per_repeat = {str(r): sum(g for k, g in zip(keys, pair_gaps, strict=True) if repeat_of(k) == r)
                  / sum(1 for k in keys if repeat_of(k) == r) for r in repeats}
    diffs = [d for ds in per_recording.values() for d in ds]
    n_tests = len(diffs)
    return {"folds": folds, "pairs": len(pairs), "recordings": len(per_recording), "tests": n_tests,
            "egru_acc": sum(sum(eg["correct"]) for eg, _ in pairs) / n_tests,
            "gru_acc": sum(sum(gr["correct"]) for _, gr in pairs) / n_tests,
            "gru_minus_egru_points": gap, "se_over_recordings": se_rec,
            "gru_minus_egru_points_pair_mean": gap_pairs, "se_over_pairs": se_pairs,
            "gap_per_repeat": per_repeat,
            "only_gru_right": sum(d == 1 for d in diffs), "only_egru_right": sum(d == -1 for d in diffs),
            "egru_activity_sparsity": sum(eg.get("activity_sparsity", float("nan")) for eg, _ in pairs) / len(pairs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--egru", type=Path, nargs="+", required=True, help="the EGRU runs, one per fold")
    ap.add_argument("--gru", type=Path, nargs="+", required=True, help="the GRU runs, one per fold")
    ap.add_argument("--dataset", default="N-MNIST subset (1000 training recordings)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    egru = [fold_run(r) for r in args.egru]
    gru = [fold_run(r) for r in args.gru]
    s = summarise(egru, gru)
    command = (f"python examples/egru/cv_results.py --egru {' '.join(map(str, args.egru))} --gru "
               f"{' '.join(map(str, args.gru))} --out {args.out}")
    out = {"schema": 1, "producer": "examples/egru/cv_results.py", "command": command, "dataset": args.dataset,
           "summary": s, "comparison": {"gru_minus_egru_points": s["gru_minus_egru_points"],
                                        "target_points": TARGET_POINTS,
                                        "met": bool(s["gru_minus_egru_points"] <= TARGET_POINTS)},
           "runs": {"egru": egru, "gru": gru}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(args.out, json.dumps(out, indent=2, default=str))
    print(f"{s['pairs']} (fold, seed) pairs, {s['recordings']} recordings: EGRU {100 * s['egru_acc']:.2f}%, GRU "
          f"{100 * s['gru_acc']:.2f}%, gap {s['gru_minus_egru_points']:.2f} +- {s['se_over_recordings']:.2f} "
          f"(recordings) / +- {s['se_over_pairs']:.2f} (pairs) points; per repeat {s['gap_per_repeat']}; only GRU "
          f"right {s['only_gru_right']}, only "
          f"EGRU right {s['only_egru_right']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
