"""``spikeseq bench wkv``: the WKV forms, forward + backward, against the reference loop and the block's matmuls.

At ``T x B x C`` (default 1024 x 8 x 512, float32, the paper's 46M width), times forward + backward (gradients of
k, v, w, u) of

- ``reference``: :func:`spikeseq.functional.wkv_scan`, the loop of single steps under autograd;
- ``chunked``: :func:`spikeseq.functional.wkv_chunked`, the chunked parallel form in torch ops;
- ``chunked_compiled``: the same maths in phases that run every chunk at once (:mod:`spikeseq.kernels.wkv.phases`),
  compiled by ``torch.compile`` (:mod:`spikeseq.kernels.wkv.compiled`, at its own chunk length ``--compiled-chunk``,
  default 8; where compiling fails it runs eagerly, and ``compiled_status`` says so);
- ``cpu``: the fused C++ loops (``kernels.wkv`` backend ``"cpu"``, the default on the CPU);
- ``projections``: the dense-matmul bound of one RWKV block: its seven projections (time mix k, v, r, output:
  4 C x C; channel mix key C -> 4C, value 4C -> C, receptance C x C; 12 C^2 MACs per token), forward + backward
  of ``F.linear`` on ``[T B, C]``.

Timed interleaved after one untimed round (medians; the reference fewer times: it is slow), as wall time and as the
process's CPU time
(``time.process_time``: with one thread, what the run costs whatever else the shared machine is doing; the load
averages before and after are recorded). The untimed first round's times are recorded apart (``first_call_ms``):
for ``chunked_compiled`` it includes compiling (in a fresh temporary inductor cache unless
``TORCHINDUCTOR_CACHE_DIR`` is set), which is not part of any ratio. Reported: reference / fast form (target
>= 10), fast form / projections and (projections + fast form) / projections, the whole block's cost relative to
its matmuls (target <= 1.5).
Outputs and gradients of the fast forms are checked against the reference each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from spikeseq.errors import ParameterError
from spikeseq.functional import wkv_chunked, wkv_scan
from spikeseq.kernels import wkv as wkv_dispatch
from spikeseq.kernels.wkv import compiled
from spikeseq.provenance import bench_command, git_commit, git_dirty


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench wkv`` options to ``parser``."""
    parser.add_argument("--T", type=int, default=1024)
    parser.add_argument("--B", type=int, default=8)
    parser.add_argument("--C", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=32, help="chunk length of the chunked form")
    parser.add_argument("--compiled-chunk", type=int, default=compiled.DEFAULT_CHUNK,
                        help="chunk length of the compiled chunked form")
    parser.add_argument("--reps", type=int, default=5,
                        help="repetitions of the fast forms (reference: every third, from the first)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON to this path")


def _write_json(path: Path, payload: dict) -> None:
    from spikeseq._atomic import write_text

    write_text(path, json.dumps(payload, indent=2))


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none): the machine is shared."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _inputs(T: int, B: int, C: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    k = (torch.randn(T, B, C, generator=g) * 2).requires_grad_()
    v = torch.randn(T, B, C, generator=g).requires_grad_()
    w = torch.exp(torch.randn(C, generator=g)).requires_grad_()
    u = torch.randn(C, generator=g).requires_grad_()
    return k, v, w, u, torch.randn(T, B, C, generator=g)


def _fwd_bwd(fn, k, v, w, u, gy):
    """One forward + backward; returns the output and the gradients (the tensors themselves: nothing copied inside
    the timed region)."""
    for t in (k, v, w, u):
        t.grad = None
    y, _ = fn(k, v, w=w, u=u)
    y.backward(gy)
    return y.detach(), [t.grad for t in (k, v, w, u)]


def _projections(T: int, B: int, C: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T * B, C, generator=g).requires_grad_()
    shapes = [(C, C)] * 4 + [(4 * C, C), (C, 4 * C), (C, C)]
    ws = [(torch.randn(*s, generator=g) / s[1] ** 0.5).requires_grad_() for s in shapes]
    h = torch.randn(T * B, 4 * C, generator=g).requires_grad_()

    def run() -> None:
        out = sum(F.linear(h if w_.shape[1] == 4 * C else x, w_).sum() for w_ in ws)
        out.backward()

    return run


def measure(T: int, B: int, C: int, chunk: int, reps: int, compiled_chunk: int = compiled.DEFAULT_CHUNK) -> dict:
    """Median fwd+bwd times (ms) of each form and the ratios described in the module docstring."""
    k, v, w, u, gy = _inputs(T, B, C)
    forms = {
        "chunked": lambda k, v, w, u: wkv_chunked(k, v, w=w, u=u, chunk=chunk),
        "chunked_compiled": lambda k, v, w, u: compiled.wkv(k, v, w=w, u=u, chunk=compiled_chunk),
        "cpu": lambda k, v, w, u: wkv_dispatch(k, v, w=w, u=u, backend="cpu"),
    }
    proj = _projections(T, B, C)
    names = ("reference", *forms, "projections")
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    first: dict[str, float] = {}
    ref_out = None
    ref_every = 3

    def timed(name: str, rep: int, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if rep:
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        else:
            first[name] = 1e3 * (time.perf_counter() - t0)
        return out

    for rep in range(reps + 1):  # the first round is a warm-up
        if rep == 0 or (rep - 1) % ref_every == 0:
            out = timed("reference", rep, lambda: _fwd_bwd(wkv_scan, k, v, w, u, gy))
            ref_out = ref_out or out
        for name, fn in forms.items():
            out = timed(name, rep, lambda fn=fn: _fwd_bwd(fn, k, v, w, u, gy))
            if rep == 0:
                errs = [float((a - b).abs().max() / max(1.0, float(b.abs().max())))
                        for a, b in zip([out[0], *out[1]], [ref_out[0], *ref_out[1]], strict=True)]
                if max(errs) > 1e-4:
                    raise RuntimeError(f"{name} disagrees with the reference (relative errors {errs})")
        timed("projections", rep, proj)
    ms = {n: 1e3 * statistics.median(ts) for n, ts in times.items()}
    cpu_ms = {n: 1e3 * statistics.median(ts) for n, ts in cpu.items()}
    ratios = {
        "reference_over_cpu": ms["reference"] / ms["cpu"],
        "reference_over_chunked": ms["reference"] / ms["chunked"],
        "reference_over_chunked_compiled": ms["reference"] / ms["chunked_compiled"],
        "cpu_over_projections": ms["cpu"] / ms["projections"],
        "chunked_over_projections": ms["chunked"] / ms["projections"],
        "block_over_projections_cpu": (ms["projections"] + ms["cpu"]) / ms["projections"],
        "block_over_projections_chunked": (ms["projections"] + ms["chunked"]) / ms["projections"],
        "block_over_projections_chunked_compiled": (ms["projections"] + ms["chunked_compiled"]) / ms["projections"],
        "process_time_reference_over_chunked": cpu_ms["reference"] / cpu_ms["chunked"],
        "process_time_reference_over_chunked_compiled": cpu_ms["reference"] / cpu_ms["chunked_compiled"],
        "process_time_reference_over_cpu": cpu_ms["reference"] / cpu_ms["cpu"],
    }
    return {"ms_fwd_bwd": ms, "process_ms_fwd_bwd": cpu_ms, "ratios": ratios,
            "first_call_ms": first, "compiled_status": compiled.status(),
            "samples": {n: len(ts) for n, ts in times.items()}}


def run(args: argparse.Namespace) -> int:
    """Measure, print, write the JSON."""
    for name in ("T", "B", "C", "chunk", "compiled_chunk", "reps", "threads"):
        if getattr(args, name) < 1:
            raise ParameterError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    given_cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    load_before = _load_average()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="spikeseq-inductor-") as tmp:
        if given_cache is None:  # compile from scratch: the first call's time is the whole compile
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = tmp
        try:
            res = measure(args.T, args.B, args.C, args.chunk, args.reps, args.compiled_chunk)
        finally:
            if given_cache is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    for name, v in res["ms_fwd_bwd"].items():
        print(f"{name:18s} {v:10.1f} ms fwd+bwd")
    for name, v in res["ratios"].items():
        print(f"{name:44s} {v:8.2f}")
    print(f"first call (untimed round) of chunked_compiled: {res['first_call_ms']['chunked_compiled'] / 1e3:.1f} s "
          f"({res['compiled_status']})")
    payload = {
        "command": bench_command("wkv"),
        "commit": git_commit(),
        "dirty": git_dirty(),
        "config": {"T": args.T, "B": args.B, "C": args.C, "chunk": args.chunk,
                   "compiled_chunk": args.compiled_chunk, "reps": args.reps,
                   "threads": args.threads, "dtype": "float32"},
        "inductor_cache": given_cache or "fresh temporary directory",
        "targets": {"reference_over_chunked": ">= 10", "block_over_projections_chunked": "<= 1.5",
                    "reference_over_chunked_compiled": ">= 10", "block_over_projections_chunked_compiled": "<= 1.5",
                    "reference_over_cpu": ">= 10", "block_over_projections_cpu": "<= 1.5"},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "load_average_before": load_before,
                    "load_average_after": _load_average()},
        "wall_s": round(time.time() - t0, 1),
        **res,
    }
    if args.json is not None:
        _write_json(args.json, payload)
        print(f"wrote {args.json}")
    return 0
