"""Triton kernels of the WKV operator: one program per block of ``N = B x C`` elements, time inside; the same loops
as ``wkv.cpp`` (forward; time-reversed backward, derived in :mod:`._autograd`).

Imported only on first use of the ``"triton"`` backend. Under ``TRITON_INTERPRET=1`` (set before this module is
imported) they run on CPU tensors, for tests.
"""

from __future__ import annotations

import triton
import triton.language as tl

BLOCK = 128


@triton.jit
def _wkv_fwd(k_ptr, v_ptr, w_ptr, u_ptr, a0_ptr, b0_ptr, p0_ptr, y_ptr, a1_ptr, b1_ptr, p1_ptr, sa_ptr, sb_ptr,
             sp_ptr, T, N, SAVE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    w = tl.load(w_ptr + offs, mask=mask, other=0.0)
    u = tl.load(u_ptr + offs, mask=mask, other=0.0)
    a = tl.load(a0_ptr + offs, mask=mask, other=0.0)
    b = tl.load(b0_ptr + offs, mask=mask, other=0.0)
    p = tl.load(p0_ptr + offs, mask=mask, other=0.0)
    for t in range(T):
        o = t * N + offs
        kk = tl.load(k_ptr + o, mask=mask, other=0.0)
        vv = tl.load(v_ptr + o, mask=mask, other=0.0)
        if SAVE:
            tl.store(sa_ptr + o, a, mask=mask)
            tl.store(sb_ptr + o, b, mask=mask)
            tl.store(sp_ptr + o, p, mask=mask)
        ww = u + kk
        q = tl.maximum(p, ww)
        e1 = tl.exp(p - q)
        e2 = tl.exp(ww - q)
        tl.store(y_ptr + o, (e1 * a + e2 * vv) / (e1 * b + e2), mask=mask)
        ww = p - w
        q = tl.maximum(ww, kk)
        e1 = tl.exp(ww - q)
        e2 = tl.exp(kk - q)
        a = e1 * a + e2 * vv
        b = e1 * b + e2
        p = q
    tl.store(a1_ptr + offs, a, mask=mask)
    tl.store(b1_ptr + offs, b, mask=mask)
    tl.store(p1_ptr + offs, p, mask=mask)


@triton.jit
def _wkv_bwd(gy_ptr, k_ptr, v_ptr, y_ptr, sa_ptr, sb_ptr, sp_ptr, w_ptr, u_ptr, a1_ptr, b1_ptr, p1_ptr, gaT_ptr,
             gbT_ptr, gpT_ptr, gk_ptr, gv_ptr, gw_ptr, gu_ptr, ga0_ptr, gb0_ptr, gp0_ptr, T, N,
             BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    w = tl.load(w_ptr + offs, mask=mask, other=0.0)
    u = tl.load(u_ptr + offs, mask=mask, other=0.0)
    ga = tl.load(gaT_ptr + offs, mask=mask, other=0.0)
    gb = tl.load(gbT_ptr + offs, mask=mask, other=0.0)
    gc = (tl.load(gpT_ptr + offs, mask=mask, other=0.0) - ga * tl.load(a1_ptr + offs, mask=mask, other=0.0)
          - gb * tl.load(b1_ptr + offs, mask=mask, other=0.0))
    pc = tl.load(p1_ptr + offs, mask=mask, other=0.0)
    gw = tl.full([BLOCK], 0.0, w.dtype)
    gu = tl.full([BLOCK], 0.0, w.dtype)
    aa = gw
    bb = gw
    for i in range(T):
        o = (T - 1 - i) * N + offs
        aa = tl.load(sa_ptr + o, mask=mask, other=0.0)
        bb = tl.load(sb_ptr + o, mask=mask, other=0.0)
        pp = tl.load(sp_ptr + o, mask=mask, other=0.0)
        kk = tl.load(k_ptr + o, mask=mask, other=0.0)
        vv = tl.load(v_ptr + o, mask=mask, other=0.0)
        yy = tl.load(y_ptr + o, mask=mask, other=0.0)
        g = tl.load(gy_ptr + o, mask=mask, other=0.0)
        ww = u + kk
        q = tl.maximum(pp, ww)
        e1 = tl.exp(pp - q)
        e2 = tl.exp(ww - q)
        gd = g / (e1 * bb + e2)
        gdiag = gd * e2
        gkk = gdiag * (vv - yy)
        gvv = gdiag
        gu += gkk
        f = tl.exp(kk - pc)
        gkk += f * (ga * vv + gb)
        gvv += f * ga
        pd = pp - w
        r = tl.exp(pd - pc)
        gww = -r * (ga * aa + gb * bb)
        to_k = tl.where(kk > pd, 1.0, tl.where(kk < pd, 0.0, 0.5)).to(w.dtype)
        gkk += to_k * gc
        gc -= to_k * gc
        gww -= gc
        gw += gww
        ga = r * ga + gd * e1
        gb = r * gb - gd * e1 * yy
        pc = pp
        tl.store(gk_ptr + o, gkk, mask=mask)
        tl.store(gv_ptr + o, gvv, mask=mask)
    tl.store(ga0_ptr + offs, ga, mask=mask)
    tl.store(gb0_ptr + offs, gb, mask=mask)
    tl.store(gp0_ptr + offs, ga * aa + gb * bb + gc, mask=mask)
    tl.store(gw_ptr + offs, gw, mask=mask)
    tl.store(gu_ptr + offs, gu, mask=mask)


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


class Launcher:
    """The kernels on contiguous ``[T, N]`` / ``[N]`` tensors (the launcher interface of :mod:`._autograd`)."""

    @staticmethod
    def fwd(k, v, w, u, a0, b0, p0, y, a1, b1, p1, sa, sb, sp):
        T, N = k.shape
        save = sa is not None
        dummy = y if not save else None
        _wkv_fwd[_grid(N)](k, v, w, u, a0, b0, p0, y, a1, b1, p1, sa if save else dummy, sb if save else dummy,
                           sp if save else dummy, T, N, SAVE=save, BLOCK=BLOCK)

    @staticmethod
    def bwd(gy, k, v, y, sa, sb, sp, w, u, a1, b1, p1, gaT, gbT, gpT, gk, gv, gw, gu, ga0, gb0, gp0):
        T, N = k.shape
        _wkv_bwd[_grid(N)](gy, k, v, y, sa, sb, sp, w, u, a1, b1, p1, gaT, gbT, gpT, gk, gv, gw, gu, ga0, gb0,
                           gp0, T, N, BLOCK=BLOCK)
