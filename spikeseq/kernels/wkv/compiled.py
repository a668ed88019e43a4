"""Backend ``"chunked_compiled"`` of ``wkv``: :func:`spikeseq.functional.wkv_chunked` with its per-chunk forward and
backward bodies compiled by ``torch.compile`` (inductor; on the CPU it generates C++ and builds it with the system
compiler).

What is compiled are :func:`chunk_forward_steps` and :func:`chunk_backward_steps`: the same chunk maths as the
eager bodies (:func:`~spikeseq.functional.wkv.chunk_forward`, :func:`~spikeseq.functional.wkv.chunk_backward`:
one reference per chunk and series, sums relative to it, capped state weights, the same arguments and results),
written step by step on flat ``[B C]`` tensors so that inductor fuses a chunk into one loop over ``(B, C)`` that
keeps the chunk's steps in registers (the eager bodies' parallel form, compiled, materialises every ``[L, B, C]``
intermediate and was slower). The chunking, the carried state, the checks, the reference-loop fallback for
too-wide keys and the routing of the final ``p``'s maximum are the eager form's code.

Nothing compiles at import: a body compiles on its first call (tens of seconds; again per shape, dtype, chunk
length and capped / not capped, ``dynamic=False``; a shorter last chunk runs the eager bodies) and inductor caches
the result on disk. Where ``torch.compile`` is unavailable or fails (no C++ compiler, an unsupported platform, a
compile error), the eager bodies run instead, with one warning; :func:`status` says which ran. Past dynamo's
recompile limit (8 shapes per body) dynamo itself runs the step bodies uncompiled: correct, slow.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch

from spikeseq.functional.wkv import EAGER_BODIES, WKVState, chunked_wkv

__all__ = ["EAGER_BODIES", "chunked_wkv", "status", "supports", "wkv"]

_state: dict[str, Any] = {"bodies": None, "failed": None, "ran": False}
#: Inductor's cap on the nodes of one fused loop (default 64) raised so that a chunk's steps fuse into one loop.
_OPTIONS: dict[str, Any] = {"max_fusion_size": 4096}


def _flat(B: int, C: int, *ts: torch.Tensor) -> list[torch.Tensor]:
    """``[B, C]`` or ``[C]`` tensors as ``[B C]`` (per-channel ones broadcast): one flat domain for every tensor of a
    step body, so that inductor fuses the whole chunk into one loop."""
    return [t.expand(B, C).reshape(B * C) for t in ts]


def chunk_forward_steps(kc, vc, a, b, p, w, lam, eu, ru, sw, lag, floor: float, cap: float, y_out, xg_out=None):
    """:func:`~spikeseq.functional.wkv.chunk_forward` (same arguments, same results to rounding) written step by
    step over the chunk on flat ``[B C]`` tensors, for ``torch.compile``: inductor fuses the chunk into a loop over
    ``(B, C)`` whose body runs the ``l`` steps, so nothing ``[l, B, C]`` but the output is written. The maths is
    the chunked form's (reference ``r`` per chunk, sums relative to it, capped state weights; ``sw`` and ``lag``
    are recomputed as ``s w`` and ``(l-1-s) w``, bit for bit); only the order of the loops differs. Eagerly it
    would be a slow loop of small ops: it is only ever compiled. ``xg_out`` is always ``None`` here (nothing is
    kept: the backward recomputes ``x`` and ``g``)."""
    n, B, C = kc.shape
    shape = kc.shape[1:]
    kc, vc = kc.reshape(n, B * C), vc.reshape(n, B * C)
    a, b, p, w, lam, eu, ru = _flat(B, C, a, b, p, w, lam, eu, ru)
    kmax, kmin = kc[0], kc[0]
    for i in range(1, n):
        kmax, kmin = torch.maximum(kmax, kc[i]), torch.minimum(kmin, kc[i])
    r = kmax + ru
    d0 = p - r
    s_, z_ = torch.zeros_like(a), torch.zeros_like(a)  # S_{s-1}, Z_{s-1}
    pe = kc[0] - (n - 1) * w  # max_s (k_s - (l-1-s) w)
    ys = []
    for i in range(n):
        x = torch.exp(kc[i] - r)
        xv = x * vc[i]
        g = torch.exp(torch.clamp(d0 - i * w, floor, cap))
        num = torch.addcmul(torch.addcmul(s_, xv, eu), g, a)
        den = torch.addcmul(torch.addcmul(z_, x, eu), g, b)
        ys.append(num / den)
        s_, z_ = torch.addcmul(xv, s_, lam), torch.addcmul(x, z_, lam)
        if i:
            pe = torch.maximum(pe, kc[i] - (n - 1 - i) * w)
    y_out.copy_(torch.stack(ys).view(n, *shape))
    pd = p - n * w
    q = torch.maximum(pd, pe)
    f1, fr = torch.exp(pd - q), torch.exp(r - q)
    a1, b1 = torch.addcmul(f1 * a, fr, s_), torch.addcmul(f1 * b, fr, z_)
    return (*(t.view(shape) for t in (a1, b1, q, r, pe, pd, f1, fr)), d0.amax(), (kmax - kmin).view(shape))


def chunk_backward_steps(gy, kc, vc, y, a, b, p, r, f1, fr, g_a, g_b, w, lam, eu, sw, weights, floor: float,
                         cap: float, capped: bool, gk_out, gv_out, xg=None):
    """:func:`~spikeseq.functional.wkv.chunk_backward` step by step, like :func:`chunk_forward_steps`: a forward
    sweep over the chunk (``x``, ``g``, the sums, ``alpha`` and ``alpha y`` again, and the sums over the steps that
    the state's gradients need), then the reverse sweep of the adjoint recurrences writing ``dL/dk`` and ``dL/dv``.
    ``sw`` and ``weights`` are not used (``s w`` is recomputed bit for bit; the step weights are the loop index),
    nor ``xg`` (always ``None`` here)."""
    n, B, C = kc.shape
    shape = kc.shape[1:]
    gy, kc, vc, y = (t.reshape(n, B * C) for t in (gy, kc, vc, y))
    a, b, p, r, f1, fr, g_a, g_b, w, lam, eu = _flat(B, C, a, b, p, r, f1, fr, g_a, g_b, w, lam, eu)
    d0 = p - r
    gcap = math.exp(cap)
    zero = torch.zeros_like(a)
    s_, z_ = zero, zero
    u0, u1, c0, c1, c0s, c1s, geu = zero, zero, zero, zero, zero, zero, zero
    xs, ss, zs, als, bes = [], [], [], [], []
    for i in range(n):
        x = torch.exp(kc[i] - r)
        xv = x * vc[i]
        g = torch.exp(torch.clamp(d0 - i * w, floor, cap))
        den = torch.addcmul(torch.addcmul(z_, x, eu), g, b)
        al = gy[i] / den
        be = al * y[i]
        alg, beg = al * g, be * g
        u0, u1 = u0 + alg, u1 + beg
        if capped:  # capped weights: no gradient through the exponent
            m = g < gcap
            alg, beg = alg * m, beg * m
        c0, c1, c0s, c1s = c0 + alg, c1 + beg, c0s + i * alg, c1s + i * beg
        geu = geu + (al * vc[i] - be) * x
        xs.append(x)
        ss.append(s_)
        zs.append(z_)
        als.append(al)
        bes.append(be)
        s_, z_ = torch.addcmul(xv, s_, lam), torch.addcmul(x, z_, lam)
    t_1 = (g_a * a + g_b * b) * f1
    ga_in, gb_in = g_a * f1 + u0, g_b * f1 - u1
    gp_in = t_1 + a * c0 - b * c1
    gw = t_1 * -n - (a * c0s - b * c1s)
    h0, h1 = g_a * fr, g_b * -fr  # adjoints of (S, -Z)
    gl0, gl1 = zero, zero
    gks, gvs = [zero] * n, [zero] * n
    for i in range(n - 1, -1, -1):
        gl0, gl1 = gl0 + h0 * ss[i], gl1 + h1 * zs[i]
        gv = torch.addcmul(h0, als[i], eu) * xs[i]
        gks[i] = gv * vc[i] - xs[i] * torch.addcmul(h1, bes[i], eu)
        gvs[i] = gv
        h0, h1 = torch.addcmul(als[i], h0, lam), torch.addcmul(bes[i], h1, lam)
    gk_out.copy_(torch.stack(gks).view(n, *shape))
    gv_out.copy_(torch.stack(gvs).view(n, *shape))
    per_c = [t.view(shape).sum(0) for t in (gw, gl0, gl1, geu)]
    return (*(t.view(shape) for t in (ga_in, gb_in, gp_in)), per_c[0], torch.stack(per_c[1:3]), per_c[3])


#: What is compiled: the step-by-step bodies; where compiling fails, the eager (parallel) bodies run instead.
STEP_BODIES = (chunk_forward_steps, chunk_backward_steps)


def _compile(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=False, fullgraph=True, options=_OPTIONS)


class _Fallback:
    """Call the compiled body; on the first failure warn once, remember why and use the eager body from then on."""

    def __init__(self, compiled: Callable, eager: Callable) -> None:
        self.compiled, self.eager = compiled, eager

    def __call__(self, *args: Any) -> Any:
        if _state["failed"] is None:
            try:
                out = self.compiled(*args)
                _state["ran"] = True
                return out
            except Exception as e:  # any compile failure means: run eager
                _state["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                warnings.warn(f"torch.compile of the WKV chunk bodies failed ({_state['failed']}); running them "
                              "eagerly", RuntimeWarning, stacklevel=2)
        return self.eager(*args)


def _bodies() -> tuple[Callable, Callable]:
    if _state["bodies"] is None:
        try:
            compiled = [_compile(fn) for fn in STEP_BODIES]
        except Exception as e:  # torch.compile itself unavailable
            _state["failed"] = f"{type(e).__name__}: {e}"
            compiled = list(EAGER_BODIES)
        _state["bodies"] = tuple(_Fallback(c, e) for c, e in zip(compiled, EAGER_BODIES, strict=True))
    return _state["bodies"]


def status() -> str:
    """``"compiled"`` (a compiled body has run), ``"not compiled yet"`` (no full chunk has run: shorter last
    chunks always run eagerly) or ``"eager fallback: <why>"``."""
    if _state["failed"] is not None:
        return f"eager fallback: {_state['failed']}"
    return "compiled" if _state["ran"] else "not compiled yet"


def wkv(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor, u: torch.Tensor,
        chunk: int = 32) -> tuple[torch.Tensor, WKVState]:
    """:func:`spikeseq.functional.wkv_chunked` with compiled chunk bodies (same signature and results)."""
    return chunked_wkv(k, v, state, w=w, u=u, chunk=chunk, bodies=_bodies())


def supports(k, v=None, state=None, **_: object) -> str | None:
    """CPU tensors only (on a GPU inductor would generate Triton: not tested here)."""
    if isinstance(k, torch.Tensor) and k.device.type != "cpu":
        return f"the compiled chunked WKV runs CPU tensors, got {k.device}"
    return None
