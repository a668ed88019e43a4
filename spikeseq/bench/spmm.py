"""``spikeseq bench spmm``: event-driven ``spike_linear`` against the dense matmul, over spike densities.

One linear layer on spikes ``[rows, in] -> [rows, out]`` (default: the hidden layer of ``bench sim small``,
3200 x 256 -> 256), float32, for each density: forward (inference) and forward + backward (gradients of the
weight, the bias and the spikes) of ``spike_linear(mode="sparse")`` and ``spike_linear(mode="dense")`` (``F.linear``
with the input saved as uint8), timed interleaved, medians. The table shows where the event-driven path stops
paying, the measurement behind ``spike_linear.SPARSE_MAX_DENSITY_BY_VECTOR``; outputs of the two are compared each time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from spikeseq._args import nonnegative_int
from spikeseq._atomic import write_text
from spikeseq.errors import BackendUnavailableError, ParameterError
from spikeseq.kernels import spike_linear, spmm
from spikeseq.kernels.spike_linear import sparse_max_density
from spikeseq.timing import time_interleaved

DENSITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench spmm`` options (rows, sizes, densities, repetitions, threads, ``--json``) to ``parser``."""
    parser.add_argument("--rows", type=int, default=3200, help="T x B rows (default 100 x 32)")
    parser.add_argument("--in-features", type=int, default=256)
    parser.add_argument("--out-features", type=int, default=256)
    parser.add_argument("--densities", default=",".join(map(str, DENSITIES)), help="comma list of spike densities")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0 = leave torch's default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON to this path")


def measure(rows: int, n_in: int, n_out: int, density: float, reps: int, seed: int = 0) -> dict:
    """Median times (ms) of ``spike_linear`` sparse vs dense at one ``density``, ratios, max output difference."""
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(rows, n_in, generator=g) < density).float().requires_grad_()
    w = (torch.randn(n_out, n_in, generator=g) / n_in**0.5).requires_grad_()
    b = torch.zeros(n_out, requires_grad=True)
    grad_out = torch.randn(rows, n_out, generator=g)

    def forward(mode):
        with torch.no_grad():
            return spike_linear(z, w, b, mode=mode)

    def train_step(mode):
        spike_linear(z, w, b, mode=mode).backward(grad_out)
        z.grad = w.grad = b.grad = None

    diff = float((forward("sparse") - forward("dense")).abs().max())
    fns = {f"{kind} {mode}": (lambda m=mode, k=kind: forward(m) if k == "forward" else train_step(m))
           for kind in ("forward", "fwd+bwd") for mode in ("sparse", "dense")}
    t = time_interleaved(fns, reps, warmup=3)
    return {"density": density, **{k.replace(" ", "_").replace("+", "_") + "_ms": v for k, v in t.items()},
            "forward_dense_over_sparse": t["forward dense"] / t["forward sparse"],
            "fwd_bwd_dense_over_sparse": t["fwd+bwd dense"] / t["fwd+bwd sparse"], "max_abs_diff": diff}


def run(args: argparse.Namespace) -> int:
    """Measure every density and print the table; ``BackendUnavailableError`` without the C++ library."""
    if not spmm.available():
        raise BackendUnavailableError("bench spmm needs the C++ library (a C++ compiler); see spikeseq.kernels._native")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        densities = [float(d) for d in args.densities.split(",") if d.strip()]
    except ValueError as e:
        raise ParameterError(f"--densities must be a comma list of numbers, got {args.densities!r}") from e
    if not densities or any(not 0.0 <= d <= 1.0 for d in densities):
        raise ParameterError(f"--densities must be spike probabilities in [0, 1], got {args.densities!r}")
    for name in ("rows", "in_features", "out_features", "reps"):
        if getattr(args, name) < 1:
            raise ParameterError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    print(f"spike_linear [{args.rows}, {args.in_features}] -> {args.out_features}, float32, "
          f"{torch.get_num_threads()} threads, median of {args.reps} (dense / sparse > 1: event-driven is faster)")
    print(f"{'density':>8s} {'fwd sparse':>10s} {'fwd dense':>9s} {'ratio':>6s} {'f+b sparse':>10s} {'f+b dense':>9s} "
          f"{'ratio':>6s} {'max|diff|':>9s}")
    table = []
    for d in densities:
        r = measure(args.rows, args.in_features, args.out_features, d, args.reps)
        table.append(r)
        print(f"{d:8.3f} {r['forward_sparse_ms']:10.3f} {r['forward_dense_ms']:9.3f} "
              f"{r['forward_dense_over_sparse']:6.2f} {r['fwd_bwd_sparse_ms']:10.3f} {r['fwd_bwd_dense_ms']:9.3f} "
              f"{r['fwd_bwd_dense_over_sparse']:6.2f} {r['max_abs_diff']:9.1e}", flush=True)
    paying = [r["density"] for r in table if r["fwd_bwd_dense_over_sparse"] > 1.0]
    print(f"event-driven fwd+bwd faster up to density {max(paying) if paying else 'none'} "
          f"(auto mode switches at {sparse_max_density()} with this {8 * spmm.vector_bytes()}-bit vector build)")
    if args.json:
        write_text(args.json, json.dumps({"rows": args.rows, "in": args.in_features, "out": args.out_features,
                                          "threads": torch.get_num_threads(), "table": table}, indent=2))
    return 0

