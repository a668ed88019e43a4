"""The RWKV-4 WKV operator (Peng et al. 2023, "RWKV: Reinventing RNNs for the Transformer Era", eq. 14; SpikeGPT's
SRWKV, Zhu et al. TMLR 2024, eq. 7), reference implementation.

Per channel ``c`` with decay rate ``w > 0`` (``w = exp(time_decay)``) and bonus ``u`` (``time_first``), on keys
``k[t]`` and values ``v[t]``:

    wkv[t] = ( sum_{i<t} e^{-(t-1-i) w + k[i]} v[i] + e^{u + k[t]} v[t] )
           / ( sum_{i<t} e^{-(t-1-i) w + k[i]}      + e^{u + k[t]}      )

As a recurrence over the true sums ``A[t] = sum_{i<=t} e^{-(t-i) w + k[i]} v[i]`` and ``B[t]`` (same, without
``v``): ``A[t] = e^{-w} A[t-1] + e^{k[t]} v[t]``, ``wkv[t] = (A[t-1] + e^{u+k[t]} v[t]) / (B[t-1] + e^{u+k[t]})``.
``A`` and ``B`` overflow, so the state is kept relative to a running maximum exponent ``p`` (the official RWKV-4
CUDA kernel's stabilisation): ``WKVState(a, b, p)`` with ``A = a e^p``, ``B = b e^p`` and one step

    q  = max(p, u + k);      y = (e^{p-q} a + e^{u+k-q} v) / (e^{p-q} b + e^{u+k-q})
    p' = max(p - w, k);      a' = e^{p-w-p'} a + e^{k-p'} v;      b' = e^{p-w-p'} b + e^{k-p'}

so every exponential is of a number <= 0. The initial state is ``a = b = 0``, ``p = -1e38`` (:func:`initial_p`:
float16, whose range ends at -65504, gets its most negative finite value instead; with ``a = b = 0`` any finite
``p`` below every key gives the same outputs and next state, since ``e^{p-q} <= 1`` only scales zeros and
``p' = max(p - w, k) = k``). ``p`` is the running
maximum ``max_i(k[i] - (t-i) w)``, the same in every form below, so final states agree field by field.

Three forms, all agreeing on outputs, final states and every gradient:

- :func:`wkv_step` / :func:`wkv_scan`: the step above and the reference loop over time (autograd through it);
- :func:`wkv_chunked`: the parallel form for training on the CPU, with its own backward (chunks of ``L`` steps,
  each a call of :func:`chunk_forward` / :func:`chunk_backward` (:mod:`spikeseq.kernels.wkv.phases` computes the
  same maths with every chunk at once, for ``torch.compile``); inside a chunk all exponentials, products and
  divisions are elementwise over the whole ``[L, B, C]`` block, relative to one reference per chunk and series,
  and the decay-weighted sums over the chunk are a first-order recurrence of fused multiply-adds, the rows of the
  per-channel ``L x L`` decay matrix; between chunks the ``(a, b, p)`` state is carried). It is exact (to
  rounding) whenever, inside each chunk, the spread of ``k`` plus ``|u|`` stays below ``tau`` = 60 (fp32) or 600
  (fp64): then each row's largest term is at least ``e^{-tau}`` of the chunk's reference and nothing that matters
  underflows. Channels of a sequence with a wider chunk are computed by the reference loop instead, so the result
  is exact for every input. No length limit (no ``T_MAX``).

Shapes are time-first: ``k, v`` ``[T, B, C]`` (the step form ``[B, C]``), ``w, u`` ``[C]``. Half-precision inputs
are computed in float32 and the outputs cast back.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import torch

from spikeseq.checks import check_floating, check_sequence
from spikeseq.errors import NonFiniteError, ParameterError, ShapeError

#: The "minus infinity" of the stabilised state (the RWKV-4 CUDA kernel uses -1e38): exp(P0 - x) == 0.
P0 = -1e38
#: Spread of ``k`` (plus |u|) inside one chunk up to which the chunked form is exact; see the module docstring.
SPREAD = {torch.float32: 60.0, torch.float64: 600.0}


class WKVState(NamedTuple):
    """Stabilised WKV state: true sums ``A = a e^p``, ``B = b e^p``; each field ``[B, C]``."""

    a: torch.Tensor
    b: torch.Tensor
    p: torch.Tensor


def initial_p(dtype: torch.dtype) -> float:
    """The ``p`` of an empty WKV history in a state of ``dtype``: :data:`P0` (``-1e38``) where ``dtype`` holds it
    (float32, float64, bfloat16: unchanged, so their results stay bit-identical), else the dtype's most negative
    finite value (float16: -65504; ``-1e38`` would overflow it). A finite value, not ``-inf``: every kernel computes
    ``p - q`` and ``p - w`` on it, and the fused paths never see an infinity."""
    lo = torch.finfo(dtype).min if dtype.is_floating_point else P0
    return P0 if lo <= P0 else float(lo)


def initial_wkv_state(batch: int, channels: int, *, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> WKVState:
    """The state before the first token: ``a = b = 0``, ``p = -1e38`` (:func:`initial_p`: -65504 in float16)."""
    z = torch.zeros(batch, channels, dtype=dtype, device=device)
    return WKVState(z, z.clone(), torch.full_like(z, initial_p(dtype)))


def wkv_compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype WKV accumulates in: float64 for float64 inputs, else float32 (bf16/fp16 inputs too)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_wkv_args(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor, u: torch.Tensor, state: WKVState | None,
                   step: bool) -> None:
    """Raise a ShapeError/ParameterError naming the argument when the WKV inputs do not fit (shared by kernels)."""
    if step:
        check_floating(k, "k")
        if k.dim() != 2:
            raise ShapeError(f"wkv_step takes k, v of shape [B, C], got {tuple(k.shape)}; use wkv_scan for [T, B, C]")
    else:
        check_sequence(k, "k", min_rank=3)
        if k.dim() != 3:
            raise ShapeError(f"k and v must be [T, B, C], got {tuple(k.shape)}")
    check_floating(v, "v")
    if v.shape != k.shape:
        raise ShapeError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    c = k.shape[-1]
    for name, t in (("w", w), ("u", u)):
        if not isinstance(t, torch.Tensor) or t.shape != (c,):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ShapeError(f"{name} must be a tensor of shape [C] = [{c}] (one value per channel), got {got}")
        if not bool(torch.isfinite(t.detach()).all()):
            raise NonFiniteError(f"WKV parameter {name} contains NaN or Inf")
    if bool((w.detach() < 0).any()):
        raise ParameterError("the WKV decay rate w must be >= 0 (w = exp(time_decay)); got a negative value")
    if state is not None:
        if not isinstance(state, WKVState):
            raise ShapeError(f"state must be a WKVState(a, b, p) or None, got {type(state).__name__}")
        bc = tuple(k.shape[-2:])
        for name, s in zip(WKVState._fields, state, strict=True):
            if tuple(s.shape) != bc:
                raise ShapeError(
                    f"WKV state field {name} has shape {tuple(s.shape)} but the input step is {bc}; pass state=None "
                    "to start from the beginning, or the state returned for the same batch and channels"
                )


def wkv_start_state(k: torch.Tensor, state: WKVState | None, dtype: torch.dtype) -> WKVState:
    """``state`` in ``dtype``, or the initial WKV state for ``k``'s batch and channels when it is ``None``."""
    if state is None:
        return initial_wkv_state(k.shape[-2], k.shape[-1], dtype=dtype, device=k.device)
    return WKVState(*(s.to(dtype) for s in state))


def wkv_update(k, v, a, b, p, w, u):
    """One stabilised step on tensors (the equations of the module docstring), without checks."""
    ww = u + k
    q = torch.maximum(p, ww)
    e1, e2 = torch.exp(p - q), torch.exp(ww - q)
    y = (e1 * a + e2 * v) / (e1 * b + e2)
    ww = p - w
    q = torch.maximum(ww, k)
    e1, e2 = torch.exp(ww - q), torch.exp(k - q)
    return y, e1 * a + e2 * v, e1 * b + e2, q


def wkv_step(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor,
             u: torch.Tensor) -> tuple[torch.Tensor, WKVState]:
    """One token (RNN mode, generation): ``k, v`` ``[B, C]``; returns ``wkv`` ``[B, C]`` and the new state."""
    check_wkv_args(k, v, w, u, state, step=True)
    dt = wkv_compute_dtype(k)
    st = wkv_start_state(k, state, dt)
    y, a, b, p = wkv_update(k.to(dt), v.to(dt), *st, w.to(dt), u.to(dt))
    return y.to(k.dtype), WKVState(a, b, p)


def wkv_scan(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor,
             u: torch.Tensor) -> tuple[torch.Tensor, WKVState]:
    """The reference: a loop of :func:`wkv_step` over ``[T, B, C]`` under autograd; returns ``wkv`` and the state."""
    check_wkv_args(k, v, w, u, state, step=False)
    dt = wkv_compute_dtype(k)
    a, b, p = wkv_start_state(k, state, dt)
    wd, ud = w.to(dt), u.to(dt)
    ys = []
    for k_t, v_t in zip(k.to(dt).unbind(0), v.to(dt).unbind(0), strict=True):
        y, a, b, p = wkv_update(k_t, v_t, a, b, p, wd, ud)
        ys.append(y)
    return torch.stack(ys).to(k.dtype), WKVState(a, b, p)


#: Cap on the exponent of the incoming state's weight relative to a chunk's reference (see :class:`_ChunkedWKV`):
#: at the cap the state's terms outweigh the chunk's own (at most ``L + 1`` of them, each <= 1) by ``e^cap``, so
#: what the cap drops is below rounding (``e^-30`` in float32, ``e^-60`` in float64).
STATE_CAP = {torch.float32: 30.0, torch.float64: 60.0}
#: Floor of that exponent: ``e^floor`` is the smallest normal number's order (float32 1.2e-38, float64 2.2e-308), so
#: no exponential underflows into the (slow) subnormal range. What it adds, at most ``e^floor`` times the state's
#: ``(a, b)``, is at most ``e^-27 b`` (float32; ``e^-100 b`` float64) relative to the chunk's own terms, which are at
#: least ``e^-SPREAD``: below float32 rounding while ``b < 3e4`` (``b <= T``; about ``1 / (1 - e^-w)`` for keys of
#: similar size, 150 at RWKV-4's smallest initial decay ``w = e^-5``).
STATE_FLOOR = {torch.float32: -87.0, torch.float64: -700.0}


def _max_grad(g: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of ``torch.maximum(a, b)`` split to ``a`` and ``b`` as autograd does (half each at ties)."""
    share = (a > b).to(g.dtype) + 0.5 * (a == b).to(g.dtype)
    return g * share, g * (1 - share)


def _scratch(ws: dict | None, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised buffer: ``ws[name]`` when the workspace ``ws`` holds one of that shape (reused from chunk
    to chunk: it stays in cache and costs no allocation), else a new one (kept in ``ws``)."""
    t = None if ws is None else ws.get(name)
    if t is None or tuple(t.shape) != tuple(shape):
        t = torch.empty(shape, dtype=like.dtype, device=like.device)
        if ws is not None:
            ws[name] = t
    return t


def _recurrence(drive: torch.Tensor, lam: torch.Tensor, h0: torch.Tensor, reverse: bool,
                buf: torch.Tensor) -> torch.Tensor | None:
    """``h_s = lam h_{s-1} + drive_{s-1}`` from ``h_0 = h0`` over the steps of ``drive`` ``[2, l, B, C]``, written
    into ``buf`` ``[l, 2, B, C]`` (each step contiguous; with ``reverse``: ``h_s = lam h_{s+1} + drive_{s+1}`` from
    ``h_{l-1} = h0``), one fused multiply-add per step; returns the step past the end (``lam h_{l-1} +
    drive_{l-1}``; ``None`` with ``reverse``)."""
    n = drive.shape[1]
    order = list(range(n - 1, -1, -1) if reverse else range(n))
    hs = buf.unbind(0)
    hs[order[0]].copy_(h0)
    for prev, i in itertools.pairwise(order):
        torch.addcmul(drive[:, prev], hs[prev], lam, out=hs[i])
    return None if reverse else torch.addcmul(drive[:, n - 1], hs[n - 1], lam)


def _step_sums(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``[2, 2, B, C]``: the sums of ``x`` ``[2, l, B, C]`` over its steps weighted by the rows of ``weights``
    ``[2, l]`` (``1`` and ``s``): one matmul."""
    n, B, C = x.shape[1:]
    return torch.matmul(weights, x.view(2, n, B * C)).view(2, 2, B, C)


def chunk_forward(kc, vc, a, b, p, w, lam, eu, ru, sw, lag, floor: float, cap: float, y_out, xg_out, ws=None):
    """The forward of one chunk of :class:`_ChunkedWKV` (``kc, vc`` ``[l, B, C]``, incoming state ``a, b, p``;
    ``sw`` and ``lag`` ``[l, 1, C]`` are ``s w`` and ``(l-1-s) w``): writes ``y`` into ``y_out`` ``[l, B, C]`` and
    returns the end state ``a', b', p'``, the chunk's reference ``r``, what the backward needs of the end state
    (``pe, pd, f1, fr``), ``max(p - r)`` (compared with the cap outside) and the spread of ``k`` over the chunk
    ``[B, C]``. ``x`` and ``g`` are kept in ``xg_out`` (``[2, l, B, C]``) for the backward; ``ws``: a dict of
    scratch buffers reused from chunk to chunk (or ``None``)."""
    n, B, C = kc.shape
    kmax = kc.amax(0)
    r = kmax + ru
    xc = _scratch(ws, "xc", (2, n, B, C), kc)  # (x v, x)
    x = torch.sub(kc, r, out=xc[1]).exp_()
    torch.mul(x, vc, out=xc[0])
    sbuf = _scratch(ws, "sn", (n, 2, B, C), kc)
    send = _recurrence(xc, lam, torch.zeros_like(xc[:, 0]), False, sbuf)  # (S_{l-1}, Z_{l-1})
    sn = sbuf.transpose(0, 1)  # (S_{s-1}, Z_{s-1})
    d0 = p - r
    xg_out[0].copy_(x)
    g = torch.sub(d0, sw, out=xg_out[1])
    g.clamp_(floor, cap).exp_()
    num = torch.addcmul(sn[0], xc[0], eu, out=_scratch(ws, "num", (n, B, C), kc)).addcmul_(g, a)
    den = torch.addcmul(sn[1], x, eu, out=_scratch(ws, "den", (n, B, C), kc)).addcmul_(g, b)
    torch.div(num, den, out=y_out)
    pe = torch.sub(kc, lag, out=num).amax(0)
    pd = p - n * w
    q = torch.maximum(pd, pe)
    f1, fr = torch.exp(pd - q), torch.exp(r - q)
    a1, b1 = torch.addcmul(f1 * a, fr, send[0]), torch.addcmul(f1 * b, fr, send[1])
    return a1, b1, q, r, pe, pd, f1, fr, d0.amax(), kmax - kc.amin(0)


def chunk_backward(gy, kc, vc, y, a, b, p, r, f1, fr, g_a, g_b, w, lam, eu, sw, weights, floor: float, cap: float,
                   capped: bool, gk_out, gv_out, xg, ws=None):
    """The backward of one chunk of :class:`_ChunkedWKV` (everything but the routing of the final ``p``'s maximum,
    which stays outside: it needs a data-dependent test). ``g_a, g_b`` are the gradients of the chunk's end state,
    ``weights`` ``[2, l]`` the rows ``1`` and ``s``. Writes ``dL/dk`` (without the routed maximum) and ``dL/dv``
    into ``gk_out, gv_out`` ``[l, B, C]``; returns the gradients of the incoming state ``(a, b, p)`` and the chunk's
    contributions to ``dL/dw`` (direct), to ``dL/d lam`` ``[2, C]`` (through ``S`` and ``Z``) and to ``dL/d e^u``.
    ``xg``: ``x`` and ``g`` kept by the forward; ``ws`` as in :func:`chunk_forward`."""
    n, B, C = kc.shape
    xc = _scratch(ws, "xc", (2, n, B, C), kc)
    x, g = xg[0], xg[1]
    xc[1].copy_(x)
    torch.mul(x, vc, out=xc[0])
    # the chunk's sums and denominators again (cheaper than keeping them: they stay in cache)
    sbuf = _scratch(ws, "sn", (n, 2, B, C), kc)
    _recurrence(xc, lam, torch.zeros_like(xc[:, 0]), False, sbuf)
    dc = torch.addcmul(sbuf[:, 1], x, eu, out=_scratch(ws, "den", (n, B, C), kc)).addcmul_(g, b)
    # end state a' = f1 a + fr S_{l-1} (b' alike), f1 = e^{p - l w - p'}, fr = e^{r - p'}, p' fixed
    t_1 = (g_a * a + g_b * b) * f1
    ga_in, gb_in = g_a * f1, g_b * f1
    gw = t_1.sum(0) * -n
    abc = _scratch(ws, "abc", (2, n, B, C), kc)  # (alpha, alpha y) = (alpha, -beta), alpha = dL/dy / den
    al, be = torch.div(gy, dc, out=abc[0]), abc[1]
    torch.mul(al, y, out=be)
    abg = torch.mul(abc, g, out=_scratch(ws, "abg", (2, n, B, C), kc))
    red = _step_sums(abg, weights)  # [ab, sum / s-sum]
    ga_in = ga_in + red[0, 0]
    gb_in = gb_in - red[1, 0]
    if capped:  # capped weights: no gradient through the exponent
        red = _step_sums(abg.mul_(g < math.exp(cap)), weights)
    # g_s = e^{p - r - s w}: d/dp sum_s g_s (alpha_s a + beta_s b), d/dw -sum_s s (...)
    gp_in = t_1 + a * red[0, 0] - b * red[1, 0]
    gw = gw - (a * red[0, 1] - b * red[1, 1]).sum(0)
    # adjoint recurrences of (S, -Z), driven by (alpha, alpha y): H_s = e^{-w} H_{s+1} + (alpha, alpha y)_{s+1}
    hbuf = _scratch(ws, "hh", (n, 2, B, C), kc)
    _recurrence(abc, lam, torch.stack((g_a * fr, g_b * -fr)), True, hbuf)
    glam = torch.mul(hbuf, sbuf, out=_scratch(ws, "hs", (n, 2, B, C), kc)).sum(0).sum(1)
    tmp = _scratch(ws, "num", (n, B, C), kc)
    geu = torch.mul(al, vc, out=tmp).sub_(be).mul_(x).sum((0, 1))
    gv = torch.mul(torch.addcmul(hbuf[:, 0], al, eu, out=tmp), x, out=gv_out)  # dL/d(x v) x
    tz = torch.addcmul(hbuf[:, 1], be, eu, out=tmp)  # -dL/dx through Z and the bonus
    torch.mul(gv, vc, out=gk_out).addcmul_(x, tz, value=-1)
    return ga_in, gb_in, gp_in, gw, glam, geu


def route_final_max(gm: torch.Tensor, k: torch.Tensor, w: torch.Tensor, pd, L: int,
                    gk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Route ``gm = dL/dM`` ``[B, C]``, the gradient of the final ``p`` (the running maximum ``M``) at fixed true
    sums, back through the chunks' maxima ``p' = max(p - l w, pe)``: ``pd[j] = p - l w`` ``[B, C]`` of chunk ``j``
    (chunks of ``L`` steps of ``k`` ``[T, B, C]``, the last one possibly shorter) and
    ``pe = max_s (k_s - (l-1-s) w)``, computed here again (so that the maximising keys are found in the same
    rounding whatever computed the forward), split like ``torch.maximum`` / ``amax`` at ties. Adds the maximising
    keys' share to ``gk`` in place; returns the initial ``p``'s share and the ``w`` gradient of the routing
    ``[C]``."""
    T = k.shape[0]
    gw = torch.zeros_like(w)
    for j in range(len(pd) - 1, -1, -1):
        t0 = j * L
        t1 = min(t0 + L, T)
        n = t1 - t0
        back = torch.arange(n - 1, -1, -1, dtype=k.dtype, device=k.device)[:, None, None]  # l-1-s
        cand = k[t0:t1] - back * w
        pe = cand.amax(0)
        gm, gpe = _max_grad(gm, pd[j], pe)
        gw -= n * gm.sum(0)
        if bool(gpe.any()):  # to the maximising steps, split evenly at ties (as amax)
            at = cand == pe
            share = gpe / at.sum(0)
            gk[t0:t1].addcmul_(at, share)
            gw -= ((at * back).sum(0) * share).sum(0)
    return gm, gw


class _ChunkedWKV(torch.autograd.Function):
    """The chunked form with its own backward; inputs already checked, in the compute dtype, contiguous.

    Per chunk of ``l <= L`` steps with incoming state ``(a, b, p)`` and reference ``r = max_s k_s + relu(u)``
    (per series; no output depends on it, so it carries no gradient): ``x_s = e^{k_s - r} <= 1``, the decayed
    prefix sums ``S_s = e^{-w} S_{s-1} + x_s v_s`` and ``Z_s = e^{-w} Z_{s-1} + x_s`` (one fused multiply-add per
    step on ``[2, B, C]``; no exponential, nothing above ``L``), the state's weight ``g_s = e^{clamp(p - r - s w,
    floor, cap)}`` and

        y_s = (S_{s-1} + e^u x_s v_s + g_s a) / (Z_{s-1} + e^u x_s + g_s b),

    every other operation elementwise over the whole chunk (:func:`chunk_forward`). The end state is the
    reference's: ``p' = max(p - l w, pe)`` with ``pe = max_s (k_s - (l-1-s) w)`` and ``(a', b') = e^{p - l w - p'}
    (a, b) + e^{r - p'} (S_{l-1}, Z_{l-1})``. Data stay in the ``[T, B, C]`` layout (no transposes); a chunk's
    working set stays in cache.

    Kept for the backward: ``y``, ``x`` and ``g`` and, per chunk, the states and references ``r`` (``[B, C]``);
    the chunk sums and denominators are recomputed there (:func:`chunk_backward`). Backward, chunks in reverse:
    ``alpha = dL/dy / den``, ``beta = -alpha y`` and the adjoint recurrences
    ``H_s = e^{-w} H_{s+1} + (alpha, beta)_{s+1}``. The offsets ``p`` between chunks carry no gradient (the true
    sums ``a e^p`` do not depend on them); the final ``p`` is the running maximum ``M`` of the reference, and
    ``dL/dM = dL/dp - a dL/da - b dL/db`` (at the final state) is routed to the maximising step or the initial
    ``p`` through the chunks' maxima, split like ``torch.maximum`` / ``amax`` at ties.
    """

    @staticmethod
    def forward(ctx, k, v, w, u, a, b, p, L):  # type: ignore[override]
        T = k.shape[0]
        dt = k.dtype
        cap, floor = STATE_CAP[dt], STATE_FLOOR[dt]
        lam, eu, ru = torch.exp(-w), torch.exp(u), torch.relu(u)
        sw = torch.arange(L, dtype=dt, device=k.device)[:, None, None] * w  # [L, 1, C]: s w
        lag = sw.flip(0)  # (L-1-s) w
        y = torch.empty_like(k)
        xg = torch.empty((2, *k.shape), dtype=dt, device=k.device)  # x and g, kept for the backward
        saved, dmaxes, spreads = [], [], []
        ws: dict = {}  # scratch buffers, reused from chunk to chunk
        for t0 in range(0, T, L):
            t1 = min(t0 + L, T)
            n = t1 - t0
            a1, b1, q, r, pe, pd, f1, fr, dmax, sp = chunk_forward(
                k[t0:t1], v[t0:t1], a, b, p, w, lam, eu, ru, sw[:n], lag[L - n:], floor, cap, y[t0:t1], xg[:, t0:t1],
                ws)
            saved.append((a, b, p, r, pe, pd, f1, fr))
            dmaxes.append(dmax)
            spreads.append(sp)
            a, b, p = a1, b1, q
        ctx.L = L
        ctx.save_for_backward(k, v, w, u, y, a, b, xg)
        ctx.chunks = saved
        ctx.capped = (torch.stack(dmaxes) > cap).tolist()  # per chunk: is a state weight capped
        spread = torch.stack(spreads).amax(0)
        ctx.mark_non_differentiable(spread)
        return y, a, b, p, spread

    @staticmethod
    def backward(ctx, gy, g_a, g_b, g_p, _):  # type: ignore[override]
        k, v, w, u, y, a_T, b_T, xg = ctx.saved_tensors
        L = ctx.L
        T = v.shape[0]
        dt = v.dtype
        cap, floor = STATE_CAP[dt], STATE_FLOOR[dt]
        lam, eu = torch.exp(-w), torch.exp(u)
        sidx = torch.arange(L, dtype=dt, device=v.device)
        sw = sidx[:, None, None] * w  # the forward's s w, bit for bit
        weights = torch.stack((torch.ones_like(sidx), sidx))  # [2, L]: sums and s-weighted sums over a chunk
        gk, gv = torch.empty_like(k), torch.empty_like(v)
        gws, glams, geus = [], [], []  # the chunks' contributions, summed at the end
        gw = torch.zeros_like(w)
        gm = g_p - g_a * a_T - g_b * b_T  # dL/dM at fixed true sums
        gy = gy.contiguous()
        ws: dict = {}
        for j in range(len(ctx.chunks) - 1, -1, -1):
            t0 = j * L
            t1 = min(t0 + L, T)
            n = t1 - t0
            a, b, p, r, _, _, f1, fr = ctx.chunks[j]
            ga_in, gb_in, gp_in, gw_c, glam_c, geu_c = chunk_backward(
                gy[t0:t1], k[t0:t1], v[t0:t1], y[t0:t1], a, b, p, r, f1, fr, g_a, g_b, w, lam, eu, sw[:n],
                weights[:, :n], floor, cap, ctx.capped[j], gk[t0:t1], gv[t0:t1], xg[:, t0:t1], ws)
            gws.append(gw_c)
            glams.append(glam_c)
            geus.append(geu_c)
            g_a, g_b, g_p = ga_in, gb_in, gp_in
        if bool(gm.any()):
            gm, gw = route_final_max(gm, k, w, [ch[5] for ch in ctx.chunks], L, gk)
            g_p = g_p + gm
        glam = torch.stack(glams).sum(0)
        gw += torch.stack(gws).sum(0) - lam * (glam[0] - glam[1])
        return gk, gv, gw, torch.stack(geus).sum(0) * eu, g_a, g_b, g_p, None


def eager_chunked(k, v, a, b, p, w, u, L):
    """The chunked form on checked inputs in the compute dtype: ``y, a, b, p`` and the spread of ``k`` ``[B, C]``
    (the chunks' largest), the chunk bodies run eagerly (:class:`_ChunkedWKV`)."""
    return _ChunkedWKV.apply(k.contiguous(), v.contiguous(), w, u, a, b, p, L)


def wkv_chunked(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor,
                u: torch.Tensor, chunk: int = 32) -> tuple[torch.Tensor, WKVState]:
    """The chunked parallel form of :func:`wkv_scan` (same signature plus the chunk length; see module docstring)."""
    return chunked_wkv(k, v, state, w=w, u=u, chunk=chunk)


def chunked_wkv(k: torch.Tensor, v: torch.Tensor, state: WKVState | None, *, w: torch.Tensor, u: torch.Tensor,
                chunk: int, core=eager_chunked) -> tuple[torch.Tensor, WKVState]:
    """:func:`wkv_chunked` with its core given: a function with :func:`eager_chunked`'s arguments and results
    (:mod:`spikeseq.kernels.wkv.compiled` gives one that runs compiled phases). Checks the arguments, and computes
    the series whose keys spread too widely inside a chunk with the reference loop."""
    check_wkv_args(k, v, w, u, state, step=False)
    if not isinstance(chunk, int) or chunk < 1:
        raise ParameterError(f"chunk must be a positive int, got {chunk!r}")
    dt = wkv_compute_dtype(k)
    st = wkv_start_state(k, state, dt)
    kd, vd, wd, ud = k.to(dt).contiguous(), v.to(dt).contiguous(), w.to(dt), u.to(dt)
    y, a, b, p, spread = core(kd, vd, *st, wd, ud, chunk)
    wide = spread + ud.abs() > SPREAD[dt]  # series with a chunk whose k spread plus |u| exceeds SPREAD
    if not bool(wide.any()):
        return y.to(k.dtype), WKVState(a, b, p)
    # those series (their results above are dropped): the reference loop; the rest: the chunked form again, with
    # harmless keys in their place, and a harmless bonus in the channels whose |u| alone exceeds SPREAD (wide in
    # every row: e^u overflows there from u = 88.7 in float32, 709.8 in float64, and its inf times the zero weight
    # the dropped results get made NaN gradients of u and v)
    safe_u = torch.where(ud.abs() > SPREAD[dt], 0.0, ud)
    y, a, b, p, _ = core(torch.where(wide, 0.0, kd), vd, *st, wd, safe_u, chunk)
    B, C = wide.shape
    wb, ub = wd.expand(B, C)[wide], ud.expand(B, C)[wide]
    ref_state = WKVState(*(s[wide][None] for s in st))
    yr, (ar, br, pr) = wkv_scan(kd[:, wide][:, None], vd[:, wide][:, None], ref_state, w=wb, u=ub)
    y = y.clone()
    y[:, wide] = yr[:, 0]
    a, b, p = a.clone(), b.clone(), p.clone()
    a[wide], b[wide], p[wide] = ar[0], br[0], pr[0]
    return y.to(k.dtype), WKVState(a, b, p)
