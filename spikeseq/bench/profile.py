"""``spikeseq bench profile``: cost of :func:`spikeseq.profile.count` relative to the plain forward pass.

The SHD-shaped network of ``bench sim``: input ``[T=100, B=32, 700]`` Bernoulli spikes of density 0.05 ->
Linear 256 -> LIF -> Linear 256 -> LIF -> Linear 20. Both runs are inference (eval mode, ``torch.no_grad()``);
repetitions are interleaved (forward, profile, forward, profile, ...) so background load hits both alike, and
the report gives the median of each and the ratio of medians. Target: ratio < 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from spikeseq._args import nonnegative_int, positive_int, probability


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench profile`` options (T, B, sizes, density, repetitions, NeuroBench mode, threads) to ``parser``."""
    parser.add_argument("--steps", type=positive_int, default=100, help="time steps T (default 100)")
    parser.add_argument("--batch", type=positive_int, default=32, help="batch size B (default 32)")
    parser.add_argument("--inputs", type=positive_int, default=700, help="input channels (default 700, SHD)")
    parser.add_argument("--hidden", type=positive_int, default=256, help="hidden size (default 256)")
    parser.add_argument("--density", type=probability, default=0.05, help="input spike density (default 0.05)")
    parser.add_argument("--reps", type=positive_int, default=15, help="interleaved repetitions (default 15)")
    parser.add_argument("--neurobench", action="store_true", help="also time the NeuroBench-compatible mode")
    parser.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="write the measurements to this JSON file")


def build(n_in: int, hidden: int, n_out: int = 20):
    """The SHD-shaped network ``Linear -> LIF -> Linear -> LIF -> Linear(n_out)`` with seed 0 (module docstring)."""
    from spikeseq import nn as snn

    torch.manual_seed(0)
    return snn.Sequential(torch.nn.Linear(n_in, hidden), snn.LIF(hidden, beta=0.9),
                          torch.nn.Linear(hidden, hidden), snn.LIF(hidden, beta=0.9),
                          torch.nn.Linear(hidden, n_out))


def run(args: argparse.Namespace) -> int:
    """Time a plain forward against :func:`spikeseq.profile.count` and print both medians and their ratio."""
    from spikeseq import profile

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = build(args.inputs, args.hidden).eval()
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(args.steps, args.batch, args.inputs, generator=g) < args.density).float()

    def forward():
        with torch.no_grad():
            model(x)

    def counted():
        profile.count(model, x)

    def counted_nb():
        profile.count(model, x, neurobench=True)

    rows = [("forward", forward), ("profile.count", counted)]
    if args.neurobench:
        rows.append(("profile.count(neurobench=True)", counted_nb))
    for _, fn in rows:  # warm-up (kernel selection, allocator)
        fn()
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    cpu: dict[str, list[float]] = {name: [] for name, _ in rows}
    for _ in range(args.reps):
        for name, fn in rows:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    base, base_cpu = med["forward"], med_cpu["forward"]
    print(f"bench profile: x [{args.steps}, {args.batch}, {args.inputs}] density {args.density}, "
          f"Linear {args.hidden} -> LIF -> Linear {args.hidden} -> LIF -> Linear 20; {args.reps} interleaved reps, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'run':34s} {'wall ms':>9s} {'ratio':>6s} {'CPU ms':>9s} {'ratio':>6s}   (medians)")
    for k, v in med.items():
        c = med_cpu[k]
        print(f"{k:34s} {v * 1e3:9.2f} {v / base:6.2f} {c * 1e3:9.2f} {c / base_cpu:6.2f}")
    rep = profile.count(model, x)
    tot = rep.totals()
    print(f"per sample: dense MACs {tot['dense_macs']:.4g}, effective ACs {tot['eff_acs']:.4g}, effective MACs "
          f"{tot['eff_macs']:.4g}, spikes {tot['spikes_out']:.4g}, activation sparsity "
          f"{rep.activation_sparsity():.4f}")
    ratio, ratio_cpu = med["profile.count"] / base, med_cpu["profile.count"] / base_cpu
    print(f"profile.count / forward (target < 2): wall {ratio:.2f}, CPU time {ratio_cpu:.2f} (CPU time is the "
          "fairer measure on a shared machine; wall time includes waiting for other processes)")
    if args.json:
        from spikeseq._atomic import write_text

        write_text(args.json, json.dumps({"median_wall_s": med, "median_cpu_s": med_cpu, "ratio_wall": ratio,
                                          "ratio_cpu": ratio_cpu, "reps": args.reps,
                                          "threads": torch.get_num_threads(), "shape": list(x.shape)}, indent=1))
    return 0
