"""The chunked WKV form in phases that run every chunk at once: what :mod:`.compiled` hands to ``torch.compile``.

The chunked form (:class:`spikeseq.functional.wkv._ChunkedWKV`) walks the chunks one after the other, because each
needs its incoming state. Most of a chunk's work does not: with one reference ``r`` per chunk and series (the
chunk's largest key plus ``relu(u)``), the keys' weights ``x_s = e^{k_s - r}`` and the decayed sums
``S_s = e^{-w} S_{s-1} + x_s v_s``, ``Z_s = e^{-w} Z_{s-1} + x_s`` are the chunk's own. Only the state's share of
each output, ``g_s a`` and ``g_s b`` with ``g_s = e^{clamp(p - r - s w, floor, cap)}``, needs the incoming
``(a, b, p)``. So the forward is three phases:

1. :func:`chunk_summaries`, every chunk at once: ``r``, the end sums ``(S_{l-1}, Z_{l-1})``, the end-state
   candidate ``pe = max_s (k_s - (l-1-s) w)`` and the spread of ``k``;
2. :func:`carry_states`, a scan over the chunks on ``[B C]`` tensors (a few multiply-adds per chunk): each chunk's
   incoming state, through the end state ``p' = max(p - l w, pe)``,
   ``(a', b') = f1 (a, b) + fr (S_{l-1}, Z_{l-1})`` with ``f1 = e^{p - l w - p'}``, ``fr = e^{r - p'}``
   (:func:`end_factors`; the reference's end state, as in the chunked form);
3. :func:`chunk_outputs`, every chunk at once:
   ``y_s = (S_{s-1} + e^u x_s v_s + g_s a) / (Z_{s-1} + e^u x_s + g_s b)``.

The backward splits the same way. Within a chunk the adjoints of ``(S, -Z)`` run backwards,
``H_s = e^{-w} H_{s+1} + (alpha, alpha y)_{s+1}`` with ``alpha = dL/dy / den``, from ``H_{l-1} = (G_a, -G_b) fr``,
where ``(G_a, G_b)`` is the gradient of the chunk's end state. It comes from the later chunks through
``(dL/da, dL/db) = f1 (G_a, G_b) + (u0, -u1)`` of the incoming state, with ``u0 = sum_s alpha_s g_s`` and
``u1 = sum_s alpha_s y_s g_s``: sums that need only the forward and ``dL/dy``. So:

1. :func:`state_gradient_sums`, every chunk at once: ``u0``, ``u1``;
2. :func:`carry_gradients`, the chunks in reverse on ``[B C]`` tensors: each chunk's ``(G_a, G_b)``;
3. :func:`chunk_gradients`, every chunk at once, from its ``(G_a, G_b)``: ``dL/dk``, ``dL/dv`` and the chunk's
   terms of the gradients of ``w``, ``u`` and the incoming ``p``.

(The other order, gradients computed as if ``G = 0`` and the end state's share ``e^{-(l-1-s) w} (G_a, -G_b) fr``
added in a further pass over ``dL/dk`` and ``dL/dv``, profiled at 6-10 ms for that pass at T 1024, B 8, C 512,
chunk 8; the sums' pass, which reads the same four arrays and writes nothing, at about 4 ms.)

Each phase is one call whatever the number of chunks (the scans: one per :data:`CARRY_BLOCK` chunks), written step
by step over the chunk's ``l`` steps on ``[chunks, B C]`` tensors, so that inductor fuses a phase into one loop over
``(chunk, B C)`` that keeps the steps in registers. Where the chunk-by-chunk form calls two compiled bodies per
chunk (their Python wrappers cost as much as a third of the work at T 1024), this calls six per sequence. Run
eagerly they are the slower form (fwd+bwd 164-173 ms at T 1024, B 8, C 512, chunks of 16-64, against 97 ms for the
chunk-by-chunk torch ops), which is why :func:`spikeseq.functional.wkv_chunked` keeps its own bodies.

Everything else is the chunked form's: capped state weights carry no gradient through their exponent (here: where
``p - r - s w > cap``), the offsets ``p`` between chunks carry none (only the first chunk's ``p`` gradient is
returned), and the final ``p``'s maximum is routed to the maximising key or the initial ``p`` by
:func:`spikeseq.functional.wkv.route_final_max`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeseq.functional.wkv import STATE_CAP, STATE_FLOOR, route_final_max

#: Chunks per call of the two scans (:func:`carry_states`, :func:`carry_gradients`): they are unrolled when
#: compiled, so a long sequence runs them in blocks instead of compiling one body per sequence length.
CARRY_BLOCK = 32


def _flat(B: int, C: int, *ts: torch.Tensor) -> list[torch.Tensor]:
    """``[B, C]`` or ``[C]`` tensors as ``[B C]`` (per-channel ones broadcast over the batch)."""
    return [t.expand(B, C).reshape(B * C) for t in ts]


def chunk_summaries(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor, lam: torch.Tensor, ru: torch.Tensor):
    """Phase 1 of the forward on ``k, v`` ``[n, l, N]`` (``n`` chunks of ``l`` steps, ``N = B C``; ``w, lam, ru``
    ``[N]``: ``w``, ``e^-w``, ``relu(u)``): per chunk ``[n, N]`` the reference ``r``, the end sums ``S_{l-1}``,
    ``Z_{l-1}``, ``pe`` and the spread ``max k - min k``."""
    L = k.shape[1]
    kmax, kmin = k[:, 0], k[:, 0]
    for s in range(1, L):
        kmax, kmin = torch.maximum(kmax, k[:, s]), torch.minimum(kmin, k[:, s])
    r = kmax + ru
    S, Z = torch.zeros_like(r), torch.zeros_like(r)
    pe = k[:, 0] - (L - 1) * w
    for s in range(L):
        x = torch.exp(k[:, s] - r)
        S, Z = torch.addcmul(x * v[:, s], S, lam), torch.addcmul(x, Z, lam)
        if s:
            pe = torch.maximum(pe, k[:, s] - (L - 1 - s) * w)
    return r, S, Z, pe, kmax - kmin


def end_factors(p, pe, r, w, L: int):
    """``pd = p - L w``, and ``f1 = e^{pd - p'}``, ``fr = e^{r - p'}`` of the end state ``p' = max(pd, pe)`` of chunks
    with incoming ``p``, candidates ``pe`` and references ``r``."""
    pd = p - L * w
    q = torch.maximum(pd, pe)
    return pd, q, torch.exp(pd - q), torch.exp(r - q)


def carry_states(r, S, Z, pe, a, b, p, w, L: int):
    """Phase 2 of the forward: from the incoming state ``a, b, p`` ``[N]`` through chunks with summaries ``r, S, Z,
    pe`` ``[n, N]`` of ``L`` steps each. Returns each chunk's incoming ``a, b, p`` ``[n, N]`` and the state after the
    last chunk."""
    rows: list[list[torch.Tensor]] = [[], [], []]
    for c in range(r.shape[0]):
        for row, t in zip(rows, (a, b, p), strict=True):
            row.append(t)
        _, q, f1, fr = end_factors(p, pe[c], r[c], w, L)
        a, b, p = torch.addcmul(f1 * a, fr, S[c]), torch.addcmul(f1 * b, fr, Z[c]), q
    return (*(torch.stack(row) for row in rows), a, b, p)


def chunk_outputs(k, v, r, a, b, p, w, lam, eu, floor: float, cap: float) -> torch.Tensor:
    """Phase 3 of the forward: ``y`` ``[n, l, N]`` from ``k, v`` ``[n, l, N]``, the chunks' references ``r`` and
    incoming states ``a, b, p`` ``[n, N]`` (``w, lam, eu``: ``[N]``)."""
    L = k.shape[1]
    d0 = p - r
    S, Z = torch.zeros_like(r), torch.zeros_like(r)  # S_{s-1}, Z_{s-1}
    ys = []
    for s in range(L):
        x = torch.exp(k[:, s] - r)
        xv = x * v[:, s]
        g = torch.exp(torch.clamp(d0 - s * w, floor, cap))
        num = torch.addcmul(torch.addcmul(S, xv, eu), g, a)
        den = torch.addcmul(torch.addcmul(Z, x, eu), g, b)
        ys.append(num / den)
        S, Z = torch.addcmul(xv, S, lam), torch.addcmul(x, Z, lam)
    return torch.stack(ys, 1)


def _adjoint_drives(gy, k, v, y, r, a, b, p, w, lam, eu, floor: float, cap: float, s: int, S, Z, d0):
    """One step's ``x``, ``x v``, ``g``, ``d = p - r - s w``, ``alpha = dL/dy / den`` and ``alpha y`` (the forward
    sweep of both backward phases)."""
    x = torch.exp(k[:, s] - r)
    d = d0 - s * w
    g = torch.exp(torch.clamp(d, floor, cap))
    den = torch.addcmul(torch.addcmul(Z, x, eu), g, b)
    al = gy[:, s] / den
    return x, x * v[:, s], g, d, al, al * y[:, s]


def state_gradient_sums(gy, k, v, y, r, a, b, p, w, lam, eu, floor: float, cap: float):
    """Phase 1 of the backward: per chunk ``[n, N]`` the sums ``u0 = sum_s alpha_s g_s`` and
    ``u1 = sum_s alpha_s y_s g_s``, through which the gradient of a chunk's incoming state depends on its outputs
    (inputs as :func:`chunk_gradients`)."""
    L = k.shape[1]
    d0 = p - r
    S, Z = torch.zeros_like(r), torch.zeros_like(r)
    u0, u1 = S, Z
    for s in range(L):
        x, xv, g, _, al, be = _adjoint_drives(gy, k, v, y, r, a, b, p, w, lam, eu, floor, cap, s, S, Z, d0)
        u0, u1 = torch.addcmul(u0, al, g), torch.addcmul(u1, be, g)
        S, Z = torch.addcmul(xv, S, lam), torch.addcmul(x, Z, lam)
    return u0, u1


def carry_gradients(g_a, g_b, p, pe, r, w, u0, u1, L: int):
    """Phase 2 of the backward: the chunks in reverse from the gradient ``g_a, g_b`` ``[N]`` of the last chunk's end
    state, through ``(dL/da, dL/db) = f1 (G_a, G_b) + (u0, -u1)`` (per chunk ``[n, N]``: the incoming ``p``,
    ``pe``, ``r`` of :func:`end_factors`, and ``u0, u1``). Returns each chunk's end-state gradient ``G_a, G_b``
    ``[n, N]`` and the gradient of the first chunk's incoming ``a, b``."""
    ga, gb = [], []
    for c in range(p.shape[0] - 1, -1, -1):
        ga.append(g_a)
        gb.append(g_b)
        f1 = end_factors(p[c], pe[c], r[c], w, L)[2]
        g_a, g_b = torch.addcmul(u0[c], g_a, f1), g_b * f1 - u1[c]
    return torch.stack(ga[::-1]), torch.stack(gb[::-1]), g_a, g_b


def chunk_gradients(gy, k, v, y, r, a, b, p, pe, g_a, g_b, w, lam, eu, floor: float, cap: float):
    """Phase 3 of the backward, every chunk at once: ``dL/dk``, ``dL/dv`` ``[n, l, N]`` and per chunk ``[n, N]``
    the gradient of its incoming ``p`` and its terms of the gradients of ``w`` (direct, and through ``e^-w``: the
    adjoints' sums with ``S`` and ``-Z``) and of ``e^u``. Inputs: ``gy, k, v, y`` ``[n, l, N]``; per chunk ``r``,
    the incoming ``a, b, p``, ``pe`` and the end-state gradient ``g_a, g_b``; ``w, lam, eu`` ``[N]``."""
    L = k.shape[1]
    d0 = p - r
    _, _, f1, fr = end_factors(p, pe, r, w, L)
    zero = torch.zeros_like(r)
    S, Z = zero, zero
    c0, c1, c0s, c1s, geu = (zero,) * 5
    xs, ss, zs, als, bes = [], [], [], [], []
    for s in range(L):
        x, xv, g, d, al, be = _adjoint_drives(gy, k, v, y, r, a, b, p, w, lam, eu, floor, cap, s, S, Z, d0)
        free = d <= cap  # a capped weight carries no gradient through its exponent
        alg, beg = torch.where(free, al * g, 0.0), torch.where(free, be * g, 0.0)
        c0, c1, c0s, c1s = c0 + alg, c1 + beg, c0s + s * alg, c1s + s * beg
        geu = geu + (al * v[:, s] - be) * x
        xs.append(x)
        ss.append(S)
        zs.append(Z)
        als.append(al)
        bes.append(be)
        S, Z = torch.addcmul(xv, S, lam), torch.addcmul(x, Z, lam)
    # end state a' = f1 a + fr S_{l-1} (b' alike), f1 = e^{p - l w - p'}, fr = e^{r - p'}, p' fixed
    t1 = (g_a * a + g_b * b) * f1
    gp = t1 + a * c0 - b * c1
    gw = -L * t1 - (a * c0s - b * c1s)
    h0, h1 = g_a * fr, g_b * -fr  # adjoints of (S, -Z)
    gl0, gl1 = zero, zero
    gks, gvs = [zero] * L, [zero] * L
    for s in range(L - 1, -1, -1):
        gl0, gl1 = gl0 + h0 * ss[s], gl1 + h1 * zs[s]
        gv = torch.addcmul(h0, als[s], eu) * xs[s]
        gks[s] = gv * v[:, s] - xs[s] * torch.addcmul(h1, bes[s], eu)
        gvs[s] = gv
        h0, h1 = torch.addcmul(als[s], h0, lam), torch.addcmul(bes[s], h1, lam)
    return torch.stack(gks, 1), torch.stack(gvs, 1), gp, gw, gl0 - gl1, geu


class Phases(NamedTuple):
    """The six phase functions (plain or compiled; same signatures and results)."""

    summaries: object = chunk_summaries
    carry: object = carry_states
    outputs: object = chunk_outputs
    state_sums: object = state_gradient_sums
    carry_back: object = carry_gradients
    gradients: object = chunk_gradients


def _blocks(n: int) -> list[tuple[int, int]]:
    return [(c0, min(c0 + CARRY_BLOCK, n)) for c0 in range(0, n, CARRY_BLOCK)]


class PhasedWKV(torch.autograd.Function):
    """The WKV over whole chunks (``T`` a multiple of ``L``), forward and backward in the phases of the module
    docstring; inputs checked, in the compute dtype, contiguous. Returns ``y, a, b, p`` and the spread of ``k``
    over each chunk, maximised over the chunks ``[B, C]``, like :class:`spikeseq.functional.wkv._ChunkedWKV`."""

    @staticmethod
    def forward(ctx, k, v, w, u, a, b, p, L, fns):  # type: ignore[override]
        """Phases 1-3 of the forward (``fns``: :class:`Phases`, plain or compiled)."""
        T, B, C = k.shape
        n, N = T // L, B * C
        dt = k.dtype
        lam, eu, ru = torch.exp(-w), torch.exp(u), torch.relu(u)
        kc, vc = k.view(n, L, N), v.view(n, L, N)
        wN, lamN, euN, ruN = _flat(B, C, w, lam, eu, ru)
        r, S, Z, pe, spread = fns.summaries(kc, vc, wN, lamN, ruN)
        per_chunk = []
        a1, b1, p1 = _flat(B, C, a, b, p)
        for c0, c1 in _blocks(n):
            *rows, a1, b1, p1 = fns.carry(r[c0:c1], S[c0:c1], Z[c0:c1], pe[c0:c1], a1, b1, p1, wN, L)
            per_chunk.append(rows)
        ca, cb, cp = (torch.cat(col) if len(per_chunk) > 1 else col[0] for col in zip(*per_chunk))
        y = fns.outputs(kc, vc, r, ca, cb, cp, wN, lamN, euN, STATE_FLOOR[dt], STATE_CAP[dt])
        ctx.L, ctx.fns = L, fns
        ctx.save_for_backward(k, v, w, u, y, a1, b1, r, ca, cb, cp, pe)
        spread = spread.amax(0).view(B, C)
        ctx.mark_non_differentiable(spread)
        return y.view(T, B, C), a1.view(B, C), b1.view(B, C), p1.view(B, C), spread

    @staticmethod
    def backward(ctx, gy, g_a, g_b, g_p, _):  # type: ignore[override]
        """Phases 1-3 of the backward, then the final ``p``'s maximum routed (where its gradient is not 0)."""
        k, v, w, u, y, a_T, b_T, r, ca, cb, cp, pe = ctx.saved_tensors
        L, fns = ctx.L, ctx.fns
        T, B, C = k.shape
        n, N = T // L, B * C
        dt = k.dtype
        lam, eu = torch.exp(-w), torch.exp(u)
        wN, lamN, euN = _flat(B, C, w, lam, eu)
        kc, vc = k.view(n, L, N), v.view(n, L, N)
        gy = gy.contiguous().view(n, L, N)
        floor, cap = STATE_FLOOR[dt], STATE_CAP[dt]
        u0, u1 = fns.state_sums(gy, kc, vc, y, r, ca, cb, cp, wN, lamN, euN, floor, cap)
        G_a, G_b = g_a.reshape(N), g_b.reshape(N)
        ends = []
        for c0, c1 in _blocks(n)[::-1]:
            *end, G_a, G_b = fns.carry_back(G_a, G_b, *(t[c0:c1] for t in (cp, pe, r)), wN, u0[c0:c1], u1[c0:c1], L)
            ends.append(end)
        ga_end, gb_end = (torch.cat(col[::-1]) if len(ends) > 1 else col[0] for col in zip(*ends))
        gk, gv, gp, gw, gl, geu = fns.gradients(gy, kc, vc, y, r, ca, cb, cp, pe, ga_end, gb_end, wN, lamN,
                                                 euN, floor, cap)
        gk, gv = gk.view(T, B, C), gv.view(T, B, C)
        gw, gl, geu = (t.sum(0).view(B, C).sum(0) for t in (gw, gl, geu))
        gw = gw - lam * gl
        g_p0 = gp[0].view(B, C)  # the offsets p between chunks carry no gradient: only the first chunk's
        gm = g_p - g_a * a_T.view(B, C) - g_b * b_T.view(B, C)  # dL/dM at fixed true sums
        if bool(gm.any()):
            pd = cp.view(n, B, C) - L * w  # each chunk's p - L w, as end_factors computes it
            gm, gw_max = route_final_max(gm, k, w, pd, L, gk)
            g_p0, gw = g_p0 + gm, gw + gw_max
        return gk, gv, gw, geu * eu, G_a.view(B, C), G_b.view(B, C), g_p0, None, None
