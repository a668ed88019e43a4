"""``spikeseq bench gpu``: validate and time every Triton kernel on a real GPU.

Until this has run on a GPU (and its JSON is committed under ``results/gpu/``) the Triton backend is opt-in
(``SPIKESEQ_TRITON=1`` or ``backend="triton"``; :mod:`spikeseq.kernels.lif`): the kernels are otherwise tested only
under ``TRITON_INTERPRET=1`` on the CPU at small sizes.

For each scan (``lif_scan``, ``cuba_lif_scan``, ``alif_scan``, ``li_scan``) and reset mode, and for ``egru_scan``
and ``wkv``, at realistic sizes (default ``T=500, B=32, N=1024``) with learnable parameters and a random initial
state:

1. **check** against the torch reference (:mod:`spikeseq.functional`) on the same GPU: outputs, final states and
   all gradients (input, initial state, every tensor parameter) of a random linear loss; float64 within
   ``--atol64`` (default 1e-9), float32 spikes identical and the rest within ``--atol32`` (default 1e-4; float32
   sums over 500 steps);
2. **time** the LIF-family scans forward and forward+backward (float32, median of ``--reps`` after warm-up,
   CUDA-synchronised): the reference in eager mode, under ``torch.compile`` and the Triton kernel, side by side.

Writes ``results/gpu/bench_gpu_<date>.json`` (``--out``; a benchmark record of :mod:`spikeseq.report.results`:
``command``, ``machine``): device, versions, sizes, every check (max errors, pass)
and every timing; exits 1 when a check fails. Without a CUDA device (or without triton) it refuses: a message on
stderr, exit status 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from spikeseq.provenance import bench_command

SCANS = ("lif_scan", "cuba_lif_scan", "alif_scan", "li_scan")
RESETS = ("subtract", "zero", "none")


def register(parser: argparse.ArgumentParser) -> None:
    """The command's options (sizes, repetitions, tolerances, output folder)."""
    parser.add_argument("--T", type=int, default=500, help="time steps (default 500)")
    parser.add_argument("--B", type=int, default=32, help="batch (default 32)")
    parser.add_argument("--N", type=int, default=1024, help="neurons (default 1024)")
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions per variant (median; default 20)")
    parser.add_argument("--atol64", type=float, default=1e-9, help="float64 tolerance vs the reference")
    parser.add_argument("--atol32", type=float, default=1e-4, help="float32 tolerance (non-spike tensors)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile timings")
    parser.add_argument("--out", type=Path, default=Path("results/gpu"), help="folder of the JSON result")


def refusal() -> str | None:
    """Why the benchmark cannot run here (``None`` when it can)."""
    if not torch.cuda.is_available():
        return ("spikeseq bench gpu: no CUDA device here (torch.cuda.is_available() is False); run it on a machine "
                "with an NVIDIA GPU. Nothing was written.")
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        return "spikeseq bench gpu: triton is not installed (pip install 'spikeseq[gpu]'). Nothing was written."
    return None


def _params(op: str, reset: str, n: int, dtype, dev, gen) -> dict:
    def u(lo, hi):
        return (torch.rand(n, generator=gen, dtype=torch.float64) * (hi - lo) + lo).to(dev, dtype)

    if op == "li_scan":
        return {"beta": u(0.5, 0.99)}
    p = {"beta": u(0.5, 0.99), "v_th": u(0.5, 1.5), "reset": reset}
    if op == "cuba_lif_scan":
        p["alpha"] = u(0.3, 0.95)
    if op == "alif_scan":
        p.update(rho=u(0.8, 0.99), adapt=u(0.0, 0.5))
    return p


def _state(op: str, b: int, n: int, dtype, dev, gen):
    from spikeseq.functional import ALIFState, CubaLIFState, LIFState, LIState

    def r(scale=0.5):
        return (torch.randn(b, n, generator=gen, dtype=torch.float64) * scale).to(dev, dtype)

    return {"lif_scan": lambda: LIFState(r()), "cuba_lif_scan": lambda: CubaLIFState(r(), r()),
            "alif_scan": lambda: ALIFState(r(), r().abs()), "li_scan": lambda: LIState(r())}[op]()


def compare(call, leaves: dict[str, torch.Tensor], atol: float, exact: tuple[str, ...] = ()) -> tuple[dict, bool]:
    """``call(backend, leaves) -> {name: output tensor}`` on ``"torch"`` and ``"triton"`` with the same leaves: max
    |difference| of every output and of the gradient of a random linear loss w.r.t. every leaf. Outputs named in
    ``exact`` must be identical, the rest within ``atol``."""
    got = {}
    for backend in ("torch", "triton"):
        ls = {k: v.detach().clone().requires_grad_(True) for k, v in leaves.items()}
        outs = call(backend, ls)
        dev = next(iter(ls.values())).device
        gen = torch.Generator(device=dev).manual_seed(1)
        loss = sum((o * torch.randn(o.shape, generator=gen, device=dev, dtype=o.dtype)).sum() for o in outs.values())
        grads = torch.autograd.grad(loss, list(ls.values()), allow_unused=True)
        got[backend] = ({k: o.detach() for k, o in outs.items()}, dict(zip((f"grad.{k}" for k in ls), grads)))
    errs, ok = {}, True
    for part in (0, 1):
        for k, a in got["torch"][part].items():
            bb = got["triton"][part][k]
            if (a is None) != (bb is None):
                errs[k], ok = "missing on one side", False
                continue
            if a is None:
                continue
            e = float((a.double() - bb.double()).abs().max())
            errs[k] = e
            ok &= (e == 0.0) if k in exact else (e <= atol)
    return errs, bool(ok)


def check_egru(t: int, b: int, n: int, dtype, atol: float, device: str = "cuda") -> dict:
    """The Triton EGRU (forward kernel, PyTorch backward) against the reference: outputs, state, all gradients."""
    from spikeseq import kernels as K
    from spikeseq.functional.egru import EGRUState

    g = torch.Generator().manual_seed(0)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(device, dtype)

    n_in = max(1, n // 4)
    leaves = {"x": r(t, b, n_in), "c0": r(b, n, scale=0.3), "y0": r(b, n, scale=0.3).clamp(min=0),
              "weight_ih": r(3 * n, n_in, scale=0.7 / n_in ** 0.5), "weight_hh": r(3 * n, n, scale=1 / n ** 0.5),
              "bias_ih": r(3 * n, scale=0.1), "bias_hh": r(3 * n, scale=0.1),
              "threshold": (torch.rand(n, generator=g, dtype=torch.float64) * 0.4).to(device, dtype)}

    def call(backend, ls):
        out, new = K.egru_scan(ls["x"], EGRUState(ls["c0"], ls["y0"]), backend=backend,
                               **{k: v for k, v in ls.items() if k not in ("x", "c0", "y0")})
        return {**{f"out.{i}": o for i, o in enumerate(out)}, "final.c": new.c, "final.y": new.y}

    errs, ok = compare(call, leaves, atol)
    return {"op": "egru_scan", "reset": "-", "dtype": str(dtype).replace("torch.", ""), "T": t, "B": b, "N": n,
            "max_abs_error": errs, "atol": atol, "spikes_exact": False, "passed": ok}


def check_wkv(t: int, b: int, n: int, dtype, atol: float, device: str = "cuda") -> dict:
    """The Triton WKV against the reference ``wkv_scan``: output, final state, all gradients."""
    from spikeseq import kernels as K
    from spikeseq.functional import WKVState

    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device, dtype)

    leaves = {"k": r(t, b, n), "v": r(t, b, n), "w": r(n).exp(), "u": r(n), "a0": r(b, n),
              "b0": (torch.rand(b, n, generator=g, dtype=torch.float64) + 0.5).to(device, dtype), "p0": r(b, n)}

    def call(backend, ls):
        y, new = K.wkv(ls["k"], ls["v"], WKVState(ls["a0"], ls["b0"], ls["p0"]), w=ls["w"], u=ls["u"],
                       backend=backend)
        return {"y": y, **{f"final.{f}": v for f, v in zip(new._fields, new)}}

    errs, ok = compare(call, leaves, atol)
    return {"op": "wkv", "reset": "-", "dtype": str(dtype).replace("torch.", ""), "T": t, "B": b, "N": n,
            "max_abs_error": errs, "atol": atol, "spikes_exact": False, "passed": ok}


def check(op: str, reset: str, t: int, b: int, n: int, dtype, atol: float, device: str = "cuda") -> dict:
    """Triton vs the reference on the GPU: max |difference| of every output, final state and gradient."""
    from spikeseq import kernels as K

    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(t, b, n, generator=gen, dtype=torch.float64) * 1.2 + 0.3).to(dev, dtype)
    state = _state(op, b, n, dtype, dev, gen)
    params = _params(op, reset, n, dtype, dev, gen)
    leaves = {"x": x, **{f"state.{f}": v for f, v in zip(state._fields, state)},
              **{k: v for k, v in params.items() if isinstance(v, torch.Tensor)}}
    opts = {k: v for k, v in params.items() if not isinstance(v, torch.Tensor)}

    def call(backend, ls):
        st = type(state)(*(ls[f"state.{f}"] for f in state._fields))
        ps = {k: v for k, v in ls.items() if k != "x" and not k.startswith("state.")}
        y, new = getattr(K, op)(ls["x"], st, backend=backend, **ps, **opts)
        return {"y": y, **{f"final.{f}": v for f, v in zip(new._fields, new)}}

    exact = ("y",) if op != "li_scan" and dtype == torch.float32 else ()
    errs, ok = compare(call, leaves, atol, exact)
    return {"op": op, "reset": reset, "dtype": str(dtype).replace("torch.", ""), "T": t, "B": b, "N": n,
            "max_abs_error": errs, "atol": atol, "spikes_exact": dtype == torch.float32 and op != "li_scan",
            "passed": bool(ok)}


def _median_ms(fn, reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def timing(op: str, t: int, b: int, n: int, reps: int, compile_: bool) -> dict:
    """Forward and forward+backward times (float32) of eager reference, compiled reference and Triton."""
    from spikeseq import functional as F
    from spikeseq import kernels as K

    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(t, b, n, generator=gen) * 1.2 + 0.3).to(dev).requires_grad_()
    reset = "subtract" if op != "li_scan" else None
    params = _params(op, reset or "subtract", n, torch.float32, dev, gen)
    if reset is None:
        params.pop("reset", None)
    variants = {"eager": getattr(F, op), "triton": lambda xx, s=None, **k: getattr(K, op)(xx, s, backend="triton", **k)}
    if compile_:
        variants["compile"] = torch.compile(getattr(F, op))
    out = {"op": op, "T": t, "B": b, "N": n}
    for name, fn in variants.items():
        def fwd(fn=fn):
            with torch.no_grad():
                return fn(x, None, **params)

        def fwd_bwd(fn=fn):
            y, _ = fn(x, None, **params)
            y.sum().backward()
            x.grad = None

        try:
            out[f"{name}_fwd_ms"] = _median_ms(fwd, reps)
            out[f"{name}_fwd_bwd_ms"] = _median_ms(fwd_bwd, reps)
        except Exception as e:
            out[f"{name}_error"] = f"{type(e).__name__}: {e}"[:500]
    for k in ("fwd_ms", "fwd_bwd_ms"):
        if f"triton_{k}" in out:
            for base in ("eager", "compile"):
                if f"{base}_{k}" in out:
                    out[f"{base}_over_triton_{k.removesuffix('_ms')}"] = out[f"{base}_{k}"] / out[f"triton_{k}"]
    return out


def _write(out_dir: Path, result: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench_gpu_{time.strftime('%Y%m%d-%H%M%S')}.json"
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, path)
    return path


def run(args: argparse.Namespace) -> int:
    """Check and time every Triton kernel; write the JSON; 2 without a GPU, 1 when a check fails."""
    why = refusal()
    if why is not None:
        print(why, file=sys.stderr)
        return 2
    for name in ("T", "B", "N", "reps"):
        if getattr(args, name) < 1:
            print(f"spikeseq bench gpu: --{name} must be at least 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    import triton

    t, b, n = args.T, args.B, args.N
    checks = []
    for op in SCANS:
        for reset in (RESETS if op != "li_scan" else ("-",)):
            # float64 at a quarter of the size (the reference keeps every step), float32 at the full size
            for dtype, size, atol in ((torch.float64, (t, max(1, b // 4), n), args.atol64),
                                      (torch.float32, (t, b, n), args.atol32)):
                r = check(op, reset if reset != "-" else "subtract", *size, dtype, atol)
                checks.append(r)
                print(f"check {op:14s} {reset:9s} {r['dtype']:8s} {'ok' if r['passed'] else 'FAILED'}  max err "
                      + ", ".join(f"{k} {v:.1e}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in r["max_abs_error"].items()), flush=True)
    for name, fn in (("egru_scan", check_egru), ("wkv", check_wkv)):
        for dtype, size, atol in ((torch.float64, (t, max(1, b // 4), n), args.atol64),
                                  (torch.float32, (t, b, n), args.atol32)):
            r = fn(*size, dtype, atol)
            checks.append(r)
            print(f"check {name:14s} {'-':9s} {r['dtype']:8s} {'ok' if r['passed'] else 'FAILED'}", flush=True)
    times = []
    for op in SCANS:
        r = timing(op, t, b, n, args.reps, not args.no_compile)
        times.append(r)
        print(f"time  {op:14s} " + "  ".join(f"{k} {v:.3f}" for k, v in r.items() if k.endswith("_ms")), flush=True)
    result = {"command": bench_command("gpu"),
              "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)",
              "device": torch.cuda.get_device_name(0),
              "capability": list(torch.cuda.get_device_capability(0)), "torch": torch.__version__,
              "triton": triton.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
              "sizes": {"T": t, "B": b, "N": n}, "checks": checks, "timings": times,
              "all_checks_passed": all(c["passed"] for c in checks)}
    path = _write(args.out, result)
    print(f"wrote {path}; all checks {'passed' if result['all_checks_passed'] else 'NOT passed'}")
    return 0 if result["all_checks_passed"] else 1
