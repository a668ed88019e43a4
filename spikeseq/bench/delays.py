"""``spikeseq bench delays``: DelayLinear vs the dcls package's ``Dcls1d``, and the integer path vs the Gaussian path.

Same run, interleaved repetitions (machine load hits every row alike), on the SHD shape of the delay paper
(140 -> 256 synapses, K = 25 taps, T = 100 steps, B = 32; ``specs/models.md`` §5):

- training step (forward + backward to weights and positions, and to the input with ``--input-grad``) of
  ``DelayLinear`` (Gaussian path) and of ``DCLS.construct.modules.Dcls1d(version="gauss")`` used as in SNN-delays
  (time-first input permuted to ``[B, C, T]``, left-padded by K - 1, output permuted back);
- memory of a training step: bytes of the tensors autograd saves for the backward pass (unique storages);
- inference: the integer path (rounded delays, gather-sum with the cached plan) vs the Gaussian path's forward.

Both layers get identical weights and positions (``P = K//2 - d``, same sigma) and the outputs are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from spikeseq._args import nonnegative_int, positive_float, positive_int, probability
from spikeseq.errors import BackendUnavailableError
from spikeseq.nn.delay import DelayLinear


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench delays`` options (layer shape, taps, T, B, input density, sigma, ...) to ``parser``."""
    parser.add_argument("--in-features", type=positive_int, default=140)
    parser.add_argument("--out-features", type=positive_int, default=256)
    parser.add_argument("--taps", type=positive_int, default=25, help="K = max_delay + 1")
    parser.add_argument("--steps", type=positive_int, default=100, help="T")
    parser.add_argument("--batch", type=positive_int, default=32, help="B")
    parser.add_argument("--density", type=probability, default=0.1, help="input spike probability per bin")
    parser.add_argument("--sigma", type=positive_float, default=None,
                        help="Gaussian sigma (default K//2, the initial one)")
    parser.add_argument("--input-grad", action="store_true", help="also back-propagate to the input (hidden layer)")
    parser.add_argument("--reps", type=positive_int, default=15)
    parser.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (0 = leave torch's default)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")


def _dcls_layer(n_in: int, n_out: int, k: int):
    try:
        from DCLS.construct.modules import Dcls1d
    except ImportError as e:
        raise BackendUnavailableError("the comparison needs the dcls package: pip install dcls") from e
    return Dcls1d(n_in, n_out, kernel_count=1, dilated_kernel_size=k, bias=False, version="gauss")


def _saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            st = t.untyped_storage()
            seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0), st.nbytes())
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn()
    del y
    return sum(seen.values())


def run(args: argparse.Namespace) -> int:
    """Time and measure the rows of the module docstring side by side and print the table; returns 0."""
    if args.threads:
        torch.set_num_threads(args.threads)
    n_in, n_out, k, t, b = args.in_features, args.out_features, args.taps, args.steps, args.batch
    max_delay = k - 1
    sigma = float(k // 2) if args.sigma is None else float(args.sigma)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(t, b, n_in, generator=g) < args.density).float()
    gy = torch.randn(t, b, n_out, generator=g)

    ours = DelayLinear(n_in, n_out, max_delay, generator=g)
    ours.set_sigma(sigma)
    ref = _dcls_layer(n_in, n_out, k)
    with torch.no_grad():  # identical parameters: P = K//2 - d (tap n = P + K//2 has delay K-1-n)
        ref.weight.copy_(ours.weight.detach().unsqueeze(-1))
        ref.P.copy_((k // 2 - ours.delay.detach()).view(1, n_out, n_in, 1))
        ref.SIG.fill_(sigma)
    ref.SIG.requires_grad_(False)  # SNN-delays sets sigma by schedule, not by gradient

    def dcls_forward(xx: torch.Tensor) -> torch.Tensor:
        return ref(F.pad(xx.permute(1, 2, 0), (max_delay, 0))).permute(2, 0, 1)

    def ours_forward(xx: torch.Tensor) -> torch.Tensor:
        return ours(xx)[0]

    ours.train()
    with torch.no_grad():
        diff = float((ours_forward(x) - dcls_forward(x)).abs().max())

    def train_step(forward) -> Callable[[], None]:
        def step() -> None:
            xx = x.clone().requires_grad_(args.input_grad)
            y = forward(xx)
            (y * gy).sum().backward()
        return step

    def no_grad(forward) -> Callable[[], None]:
        def step() -> None:
            with torch.no_grad():
                forward(x)
        return step

    integer = DelayLinear(n_in, n_out, max_delay)
    integer.load_state_dict(ours.state_dict())
    integer.round_delays().eval()

    def integer_forward() -> None:
        with torch.no_grad():
            integer.forward_integer(x)

    rows: dict[str, Callable[[], None]] = {
        "dcls Dcls1d gauss: train step": train_step(dcls_forward),
        "DelayLinear gauss: train step": train_step(ours_forward),
        "dcls Dcls1d gauss: forward": no_grad(dcls_forward),
        "DelayLinear gauss: forward": no_grad(ours_forward),
        "DelayLinear integer: forward": integer_forward,
    }
    for fn in rows.values():  # warm-up (allocator, oneDNN primitives, integer plan)
        fn()
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.reps):
        for name, fn in rows.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}

    def saved(forward) -> int:
        xx = x.clone().requires_grad_(args.input_grad)
        return _saved_bytes(lambda: forward(xx))

    mem = {"dcls Dcls1d gauss: train step": saved(dcls_forward),
           "DelayLinear gauss: train step": saved(ours_forward)}
    plan = integer._plan[1] if integer._plan is not None else None
    plan_bytes = 0 if plan is None else plan.idx.nbytes + plan.psw.nbytes

    print(f"spikeseq bench delays: {n_in} -> {n_out}, K={k}, T={t}, B={b}, input density {args.density}, "
          f"sigma {sigma:g}, input grad {args.input_grad}, torch threads {torch.get_num_threads()}, "
          f"{args.reps} interleaved reps (median)")
    print(f"max |DelayLinear - Dcls1d| output difference with identical parameters: {diff:.2e}")
    print(f"{'row':40s} {'median ms':>10s} {'min ms':>9s} {'saved for backward':>20s}")
    for name in rows:
        m = f"{mem[name] / 2**20:.1f} MiB" if name in mem else ""
        print(f"{name:40s} {1e3 * med[name]:10.2f} {1e3 * min(times[name]):9.2f} {m:>20s}")
    mins = {name: min(v) for name, v in times.items()}

    def ratios(tt: dict[str, float]) -> dict[str, float]:
        return {
            "train_speedup_vs_dcls": tt["dcls Dcls1d gauss: train step"] / tt["DelayLinear gauss: train step"],
            "integer_vs_gauss_forward": tt["DelayLinear gauss: forward"] / tt["DelayLinear integer: forward"],
            "integer_vs_gauss_train_step": tt["DelayLinear gauss: train step"] / tt["DelayLinear integer: forward"],
        }

    r_med, r_min = ratios(med), ratios(mins)
    mem_ratio = mem["dcls Dcls1d gauss: train step"] / max(1, mem["DelayLinear gauss: train step"])
    print(f"training step: DelayLinear is {r_med['train_speedup_vs_dcls']:.2f}x as fast as Dcls1d "
          f"({r_min['train_speedup_vs_dcls']:.2f}x on the fastest reps), saves {mem_ratio:.2f}x less for backward")
    print(f"integer inference path: {r_med['integer_vs_gauss_forward']:.2f}x faster than the Gaussian forward "
          f"({r_min['integer_vs_gauss_forward']:.2f}x on the fastest reps), "
          f"{r_med['integer_vs_gauss_train_step']:.2f}x faster than the Gaussian training step "
          f"(cached gather plan {plan_bytes / 2**20:.1f} MiB)")
    if torch.get_num_threads() > 1:
        print("note: on a loaded machine several torch threads make medians noisy; compare with --threads 1")
    if args.json:
        from pathlib import Path

        from spikeseq._atomic import write_text
        from spikeseq.provenance import bench_command, cpu_model, git_commit, git_dirty

        out = Path(args.json)
        write_text(out, json.dumps({
            "command": bench_command("delays"), "commit": git_commit(), "dirty": git_dirty(),
            "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch": torch.__version__},
            "shape": dict(n_in=n_in, n_out=n_out, taps=k, steps=t, batch=b, density=args.density, sigma=sigma,
                          input_grad=args.input_grad),
            "threads": torch.get_num_threads(), "reps": args.reps, "median_s": med,
            "min_s": mins, "saved_bytes": mem, "plan_bytes": plan_bytes,
            "max_abs_diff": diff, "memory_ratio_vs_dcls": mem_ratio, "ratios_median": r_med, "ratios_min": r_min,
        }, indent=2))
    return 0
