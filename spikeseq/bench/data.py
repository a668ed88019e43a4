"""``spikeseq bench data``: N-MNIST event binning, first pass vs cached pass, and DataLoader feeding a model.

Rows (repetitions interleaved so that load from other processes hits all rows alike; medians reported):

1. ``decode``: read + decode all recordings of both splits (no binning);
2. ``bin (no cache)``: decode + bin into ``[T, 2, 34, 34]`` frames;
3. ``first pass``: decode + bin + write the HDF5 cache (what a first ``load_frames`` call costs);
4. ``cached pass``: the second ``load_frames`` call, served from the cache (memory-mapped; both passes end by
   reading every byte of the frames, so the mapped pages are really read).

Then a per-sample ``DataLoader`` (``NMNIST`` + ``ToFrames(dtype=torch.uint8)``: workers ship a quarter of the
bytes of float32 frames; the batch is converted with ``.float()``) feeds a small stand-in model (a 2312-256-10 MLP run
over the frames, forward + backward) with 0 and ``--workers`` worker processes: samples/s, the fraction of the
loop spent waiting for data, and the CPU time of the workers per wall-clock second (cores kept busy). The main
process runs torch with one thread there, so that model and workers do not oversubscribe a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from spikeseq._args import nonnegative_int, positive_int


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench data`` options (data root, repetitions, bins, workers, batches, ``--json``) to ``parser``."""
    parser.add_argument("--root", help="N-MNIST folder (default: <data root>/nmnist/NMNIST)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--n-bins", type=positive_int, default=30, help="frames per recording (default 30)")
    parser.add_argument("--workers", type=nonnegative_int, default=2,
                        help="DataLoader workers for the feeding test (default 2)")
    parser.add_argument("--batches", type=positive_int, default=40,
                        help="batches of 32 in the feeding test (default 40)")
    parser.add_argument("--json", help="also write the results to this JSON file")


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _proc_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of live processes, from /proc (0 where unavailable)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _feed(root, n_bins: int, workers: int, batches: int, model_on: bool = True,
          dtype: torch.dtype = torch.uint8) -> dict[str, float]:
    from spikeseq.data.events import collate_events_frames
    from spikeseq.data.nmnist import NMNIST, ToFrames

    ds = NMNIST(root, "train", transform=ToFrames(n_bins=n_bins, dtype=dtype))
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers,
                                         collate_fn=collate_events_frames, generator=torch.Generator().manual_seed(0),
                                         persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(2 * 34 * 34, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    wait = step = 0.0
    n = 0
    it = iter(loader)
    pids = [w.pid for w in getattr(it, "_workers", [])]
    x, y, _ = next(it)  # workers started and warm
    cpu0 = _proc_cpu(pids)
    t_start = time.perf_counter()
    for _ in range(batches):
        t0 = time.perf_counter()
        try:
            x, y, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, y, _ = next(it)
        t1 = time.perf_counter()
        if model_on:
            loss = torch.nn.functional.cross_entropy(model(x.float()).mean(0), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t2 = time.perf_counter()
        wait += t1 - t0
        step += t2 - t1
        n += y.shape[0]
    wall = time.perf_counter() - t_start
    workers_cpu = _proc_cpu(pids) - cpu0
    del it
    return {"workers": workers, "model": model_on, "dtype": str(dtype), "samples_per_s": n / wall,
            "wait_fraction": wait / wall, "model_s_per_batch": step / batches,
            "worker_cores_busy": workers_cpu / wall if pids else float("nan")}


def run(args: argparse.Namespace) -> int:
    """Time the rows of the module docstring on the N-MNIST copy at ``args.root`` and print the table; returns 0."""
    from spikeseq.data import nmnist

    root = nmnist.resolve_root(args.root)
    recs = {s: nmnist.list_recordings(root, s) for s in ("train", "test")}
    n_rec = sum(len(r) for r in recs.values())
    print(f"N-MNIST at {root}: {n_rec} recordings ({len(recs['train'])} train + {len(recs['test'])} test), "
          f"{args.n_bins} bins -> [T={args.n_bins}, 2, 34, 34]; {args.repeats} interleaved repetitions")

    def decode_all() -> None:
        for rs in recs.values():
            for r in rs:
                nmnist.decode_arrays(nmnist.read_bytes(r), r.source)

    rows: dict[str, list[float]] = {"decode": [], "bin (no cache)": [], "first pass (bin + write cache)": [],
                                    "cached pass": []}
    with tempfile.TemporaryDirectory(prefix="spikeseq-bench-") as tmp:
        for rep in range(args.repeats):
            rows["decode"].append(_time(decode_all))
            rows["bin (no cache)"].append(_time(lambda: [nmnist.load_frames(root, s, n_bins=args.n_bins, cache=False)
                                                         for s in recs]))
            paths = {s: Path(tmp) / f"{s}-{rep}.h5" for s in recs}

            def cached_pass(paths: dict[str, Path] = paths) -> list[bool]:
                hits = []
                for s in recs:
                    fs = nmnist.load_frames(root, s, n_bins=args.n_bins, cache=paths[s])
                    int(fs.x.max())  # touch every byte: a memory-mapped cache is read here, not skipped
                    hits.append(fs.cache_hit)
                return hits

            t0 = time.perf_counter()
            first = cached_pass()
            rows["first pass (bin + write cache)"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            second = cached_pass()
            rows["cached pass"].append(time.perf_counter() - t0)
            if any(first) or not all(second):
                raise RuntimeError("the first pass must miss and the second hit the cache")
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\n{'step':<32}{'median s':>10}{'min s':>9}{'rec/s':>10}")
    for k, v in rows.items():
        print(f"{k:<32}{med[k]:>10.3f}{min(v):>9.3f}{n_rec / med[k]:>10.0f}")
    ratio = med["first pass (bin + write cache)"] / med["cached pass"]
    ratio_nc = med["bin (no cache)"] / med["cached pass"]
    print(f"\ncached pass speed-up: {ratio:.1f}x vs the first pass, {ratio_nc:.1f}x vs binning without cache")

    print(f"\nDataLoader (NMNIST + ToFrames, per-sample decode + bin, batch 32, {args.batches} batches), alone and "
          "feeding a 2312-256-10 MLP (forward + backward):")
    print(f"{'workers':>8}{'model':>7}{'samples/s':>11}{'data wait':>11}{'model s/batch':>15}{'worker cores busy':>19}")
    feed = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the model gets one core, the workers the others (no oversubscription on 2 cores)
    for w in (0, args.workers):
        for model_on in (False, True):
            r = _feed(root, args.n_bins, w, args.batches, model_on)
            feed.append(r)
            print(f"{w:>8}{'yes' if model_on else 'no':>7}{r['samples_per_s']:>11.0f}{r['wait_fraction']:>10.0%}"
                  f"{r['model_s_per_batch']:>15.4f}{r['worker_cores_busy']:>19.2f}")
    torch.set_num_threads(threads)
    if args.json:
        from spikeseq._atomic import write_text
        from spikeseq.provenance import bench_command, cpu_model, git_commit, git_dirty

        clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in feed]  # NaN
        write_text(args.json, json.dumps({
            "command": bench_command("data"), "commit": git_commit(), "dirty": git_dirty(),
            "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch": torch.__version__},
            "n_recordings": n_rec, "n_bins": args.n_bins, "times": rows,
            "median": med, "speedup_vs_first": ratio,
            "speedup_vs_no_cache": ratio_nc,
            "feed": clean}, indent=2, allow_nan=False))
    return 0
