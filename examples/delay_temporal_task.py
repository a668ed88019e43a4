"""Learned vs fixed random vs no synaptic delays on the SHD-format temporal task (3 seeds each).

The task (:mod:`spikeseq.data.temporal_task`) has classes that differ only in the relative spike timing across
channels: every channel fires the same number of spikes in every class and the onset is random. The network is the
DCLS recipe of :mod:`spikeseq.models.delay_snn` at a reduced size (``--hidden``, ``--layers``), trained with the
paper's optimiser settings (see ``examples/delay_common.py``); only ``delays`` changes between the variants.

    python examples/delay_temporal_task.py --json runs/delay_temporal.json

prints a table ``variant | test accuracy per seed | mean +- std`` and writes all numbers (with the task and model
settings) to ``--json``. Defaults are sized so that the 9 runs take about 10-15 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from delay_common import load_frames, train, write_json

from spikeseq.data import temporal_task
from spikeseq.models.delay_snn import DelaySNNConfig


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="learned,fixed,none")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-train", type=int, default=1600)
    p.add_argument("--n-test", type=int, default=400)
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--duration", type=float, default=0.4, help="seconds per sample")
    p.add_argument("--groups", type=int, default=4, help="channel groups; a class is an order of the groups")
    p.add_argument("--group-gap", type=float, default=0.05, help="seconds between successive groups")
    p.add_argument("--group-spread", type=float, default=0.01, help="spread of the offsets within a group (s)")
    p.add_argument("--jitter", type=float, default=2e-3)
    p.add_argument("--noise-spikes", type=int, default=1)
    p.add_argument("--dt", type=float, default=10e-3)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--max-delay", type=int, default=24, help="largest delay in steps (25 taps, as the paper)")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (0 = torch default; 1 is fastest on a shared machine)")
    p.add_argument("--data-dir", default=None, help="where the task files go (default: a temporary folder)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def task_files(args, seed: int, root: Path) -> dict[str, Path]:
    kw = dict(n_classes=args.classes, n_channels=args.channels, duration=args.duration, seed=seed,
              n_groups=args.groups, group_gap=args.group_gap, group_spread=args.group_spread, jitter=args.jitter,
              noise_spikes=args.noise_spikes)
    return {split: temporal_task.generate(root / f"temporal_s{seed}_{split}.h5", n_samples=n, split=split, **kw)
            for split, n in (("train", args.n_train), ("test", args.n_test))}


def main(argv=None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    tmp = tempfile.TemporaryDirectory() if args.data_dir is None else None
    root = Path(args.data_dir or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[int, float]] = {v: {} for v in variants}
    runs = []
    t_all = time.perf_counter()
    for seed in seeds:
        files = task_files(args, seed, root)
        xtr, ytr = load_frames(files["train"], dt=args.dt, duration=args.duration)
        xte, yte = load_frames(files["test"], dt=args.dt, duration=args.duration)
        data = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
        for variant in variants:
            cfg = DelaySNNConfig(n_inputs=args.channels, n_outputs=args.classes, n_hidden=args.hidden,
                                 n_layers=args.layers, max_delay=args.max_delay, delays=variant, dt=args.dt,
                                 dropout=args.dropout)
            print(f"seed {seed}  delays={variant}  T={xtr.shape[1]}+{cfg.pad_end}  C={args.channels}", flush=True)
            r = train(cfg, data, epochs=args.epochs, batch_size=args.batch_size, seed=seed, log=not args.quiet)
            results[variant][seed] = r["test_acc"]
            runs.append({"variant": variant, "seed": seed, "test_acc": r["test_acc"], "train_s": r["train_s"],
                         "history": r["history"]})
            print(f"  -> test accuracy {100 * r['test_acc']:.2f}%  ({r['train_s']:.0f} s)", flush=True)
    summary = {}
    print("\n| delays | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | min-max |")
    print("|---|" + "---|" * (len(seeds) + 3))
    for v in variants:
        accs = [results[v][s] for s in seeds]
        mean = statistics.fmean(accs)
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        summary[v] = {"accs": accs, "mean": mean, "std": std, "min": min(accs), "max": max(accs)}
        print(f"| {v} | " + " | ".join(f"{100 * a:.1f}%" for a in accs)
              + f" | {100 * mean:.1f}% | {100 * std:.1f} | {100 * min(accs):.1f}-{100 * max(accs):.1f} |")
    ordered = [v for v in ("learned", "fixed", "none") if v in summary]
    margins = {}
    for a, b in itertools.pairwise(ordered):
        mean_gap = summary[a]["mean"] - summary[b]["mean"]
        worst_gap = summary[a]["min"] - summary[b]["max"]
        spread = max(summary[a]["max"] - summary[a]["min"], summary[b]["max"] - summary[b]["min"])
        margins[f"{a}>{b}"] = {"mean_gap": mean_gap, "worst_seed_gap": worst_gap, "largest_spread": spread,
                               "mean_gap_exceeds_spread": mean_gap > spread,
                               "worst_seed_gap_exceeds_spread": worst_gap > spread}
        print(f"{a} > {b}: mean gap {100 * mean_gap:.1f} points, worst {a} seed - best {b} seed "
              f"{100 * worst_gap:.1f} points, largest spread (max - min over seeds) {100 * spread:.1f} points")
    total = time.perf_counter() - t_all
    print(f"total {total:.0f} s")
    if args.json:
        write_json(args.json, {"args": vars(args), "summary": summary, "margins": margins, "runs": runs,
                               "total_s": total, "torch_threads": torch.get_num_threads()})
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
