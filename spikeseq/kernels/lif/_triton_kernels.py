"""Triton kernels of the LIF family (LIF/IF, CuBa-LIF, ALIF, LI): one program per block of neurons, time inside.

Imported only on first use of the ``"triton"`` backend (importing it imports triton). The same loops as
``scan.cpp``, written for a GPU: forward writes spikes, ``v_pre`` (and the current trace for CuBa-LIF when a decay
needs a gradient); backward walks time in reverse, recomputes spikes from ``v_pre`` and consumes
``sg = surrogate.grad(v_pre - v_th)`` computed by the caller. Launched with ``enable_fp_fusion=False`` so that
``beta * v + x`` rounds like torch's separate multiply and add (spikes identical to the reference). Under
``TRITON_INTERPRET=1`` (set before this module is imported) the kernels run on CPU tensors, for tests.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 256
# ``last`` = (T - 1) * N, the offset of the final step, comes from the host as a Python int (64-bit when large).
OPTS = {"enable_fp_fusion": False}


@triton.jit
def _spike(p, th):
    return tl.where(p - th > 0, 1.0, 0.0).to(p.dtype)


@triton.jit
def _after_reset(p, th, zf, R: tl.constexpr):
    if R == 0:
        out = p - zf * th
    elif R == 1:
        out = p * (1.0 - zf)
    else:
        out = p
    return out


@triton.jit
def _step_bwd(p, th, g, gz, s, keep, R: tl.constexpr, BLOCK: tl.constexpr):
    """dL/dv_pre and this step's dL/dv_th from dL/dv[t] = g, dL/dz[t] = gz and sg = s (see scan.cpp)."""
    zf = _spike(p, th)
    if R == 0:
        gz = gz - keep * (th * g)
        gp = g
        gt = -zf * g
    elif R == 1:
        gz = gz - keep * (p * g)
        gp = g * (1.0 - zf)
        gt = tl.full([BLOCK], 0.0, g.dtype)
    else:
        gp = g
        gt = tl.full([BLOCK], 0.0, g.dtype)
    q = gz * s
    return gp + q, gt - q


@triton.jit
def _load_or_zero(ptr, offs, mask, PRESENT: tl.constexpr, like, BLOCK: tl.constexpr):
    """The block of an optional per-neuron input (a final-state gradient), zeros where it is absent."""
    if PRESENT:
        out = tl.load(ptr + offs, mask=mask, other=0.0)
    else:
        out = tl.full([BLOCK], 0.0, like.dtype)
    return out


@triton.jit
def _lif_fwd(x_ptr, v0_ptr, be_ptr, te_ptr, z_ptr, vpre_ptr, v_ptr, T, N, R: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    te = tl.load(te_ptr + offs, mask=mask, other=0.0)
    xp, zp, pp = x_ptr + offs, z_ptr + offs, vpre_ptr + offs
    for _t in range(T):
        p = be * v + tl.load(xp, mask=mask, other=0.0)
        zf = _spike(p, te)
        tl.store(zp, zf, mask=mask)
        tl.store(pp, p, mask=mask)
        v = _after_reset(p, te, zf, R)
        xp += N
        zp += N
        pp += N
    tl.store(v_ptr + offs, v, mask=mask)


@triton.jit
def _lif_bwd(gz_ptr, vpre_ptr, sg_ptr, v0_ptr, be_ptr, te_ptr, gvT_ptr, gx_ptr, gv_ptr, gb_ptr, gt_ptr, T, N, last,
             keep, R: tl.constexpr, HAS_GVT: tl.constexpr, GB: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    te = tl.load(te_ptr + offs, mask=mask, other=0.0)
    g = _load_or_zero(gvT_ptr, offs, mask, HAS_GVT, be, BLOCK)
    gt = tl.full([BLOCK], 0.0, be.dtype)
    gb = tl.full([BLOCK], 0.0, be.dtype)
    if GB:
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    pp, sp, gzp, gxp = vpre_ptr + last + offs, sg_ptr + last + offs, gz_ptr + last + offs, gx_ptr + last + offs
    for i in range(T):
        p = tl.load(pp, mask=mask, other=0.0)
        gp, gtl = _step_bwd(p, te, g, tl.load(gzp, mask=mask, other=0.0), tl.load(sp, mask=mask, other=0.0), keep,
                            R, BLOCK)
        tl.store(gxp, gp, mask=mask)
        gt += gtl
        if GB:
            has_prev = (tl.full([BLOCK], 0, tl.int32) + i) < T - 1  # a vector: valid as a load mask
            q = tl.load(pp - N, mask=mask & has_prev, other=0.0)
            gb += gp * tl.where(has_prev, _after_reset(q, te, _spike(q, te), R), v0)
        g = gp * be
        pp -= N
        sp -= N
        gzp -= N
        gxp -= N
    tl.store(gv_ptr + offs, g, mask=mask)
    tl.store(gt_ptr + offs, gt, mask=mask)
    if GB:
        tl.store(gb_ptr + offs, gb, mask=mask)


@triton.jit
def _cuba_fwd(x_ptr, i0_ptr, v0_ptr, ae_ptr, be_ptr, te_ptr, z_ptr, vpre_ptr, isave_ptr, i_ptr, v_ptr, T, N,
              R: tl.constexpr, SAVE_I: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cur = tl.load(i0_ptr + offs, mask=mask, other=0.0)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    ae = tl.load(ae_ptr + offs, mask=mask, other=0.0)
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    te = tl.load(te_ptr + offs, mask=mask, other=0.0)
    xp, zp, pp, ip = x_ptr + offs, z_ptr + offs, vpre_ptr + offs, isave_ptr + offs
    for _t in range(T):
        cur = ae * cur + tl.load(xp, mask=mask, other=0.0)
        p = be * v + cur
        zf = _spike(p, te)
        tl.store(zp, zf, mask=mask)
        tl.store(pp, p, mask=mask)
        if SAVE_I:
            tl.store(ip, cur, mask=mask)
        v = _after_reset(p, te, zf, R)
        xp += N
        zp += N
        pp += N
        ip += N
    tl.store(i_ptr + offs, cur, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)


@triton.jit
def _cuba_bwd(gz_ptr, vpre_ptr, sg_ptr, isave_ptr, i0_ptr, v0_ptr, ae_ptr, be_ptr, te_ptr, giT_ptr, gvT_ptr, gx_ptr,
              gi_ptr, gv_ptr, ga_ptr, gb_ptr, gt_ptr, T, N, last, keep, R: tl.constexpr, HAS_GIT: tl.constexpr,
              HAS_GVT: tl.constexpr, GD: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    ae = tl.load(ae_ptr + offs, mask=mask, other=0.0)
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    te = tl.load(te_ptr + offs, mask=mask, other=0.0)
    hi = _load_or_zero(giT_ptr, offs, mask, HAS_GIT, be, BLOCK)
    hv = _load_or_zero(gvT_ptr, offs, mask, HAS_GVT, be, BLOCK)
    gt = tl.full([BLOCK], 0.0, be.dtype)
    ga = tl.full([BLOCK], 0.0, be.dtype)
    gb = tl.full([BLOCK], 0.0, be.dtype)
    if GD:
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0)
        i0 = tl.load(i0_ptr + offs, mask=mask, other=0.0)
    pp, sp, gzp, gxp = vpre_ptr + last + offs, sg_ptr + last + offs, gz_ptr + last + offs, gx_ptr + last + offs
    ip = isave_ptr + last + offs
    for i in range(T):
        p = tl.load(pp, mask=mask, other=0.0)
        gp, gtl = _step_bwd(p, te, hv, tl.load(gzp, mask=mask, other=0.0), tl.load(sp, mask=mask, other=0.0), keep,
                            R, BLOCK)
        gI = hi + gp
        tl.store(gxp, gI, mask=mask)
        gt += gtl
        if GD:
            has_prev = (tl.full([BLOCK], 0, tl.int32) + i) < T - 1  # a vector: valid as a load mask
            q = tl.load(pp - N, mask=mask & has_prev, other=0.0)
            gb += gp * tl.where(has_prev, _after_reset(q, te, _spike(q, te), R), v0)
            ga += gI * tl.where(has_prev, tl.load(ip - N, mask=mask & has_prev, other=0.0), i0)
        hi = gI * ae
        hv = gp * be
        pp -= N
        sp -= N
        gzp -= N
        gxp -= N
        ip -= N
    tl.store(gi_ptr + offs, hi, mask=mask)
    tl.store(gv_ptr + offs, hv, mask=mask)
    tl.store(gt_ptr + offs, gt, mask=mask)
    if GD:
        tl.store(ga_ptr + offs, ga, mask=mask)
        tl.store(gb_ptr + offs, gb, mask=mask)


@triton.jit
def _alif_fwd(x_ptr, v0_ptr, a0_ptr, be_ptr, rh_ptr, te_ptr, ad_ptr, z_ptr, vpre_ptr, asave_ptr, v_ptr, a_ptr, T, N,
              R: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    a = tl.load(a0_ptr + offs, mask=mask, other=0.0)
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    rh = tl.load(rh_ptr + offs, mask=mask, other=0.0)
    te = tl.load(te_ptr + offs, mask=mask, other=0.0)
    ad = tl.load(ad_ptr + offs, mask=mask, other=0.0)
    xp, zp, pp, ap = x_ptr + offs, z_ptr + offs, vpre_ptr + offs, asave_ptr + offs
    for _t in range(T):
        th = te + ad * a
        p = be * v + tl.load(xp, mask=mask, other=0.0)
        zf = _spike(p, th)
        tl.store(zp, zf, mask=mask)
        tl.store(pp, p, mask=mask)
        v = _after_reset(p, th, zf, R)
        a = rh * a + zf
        tl.store(ap, a, mask=mask)
        xp += N
        zp += N
        pp += N
        ap += N
    tl.store(v_ptr + offs, v, mask=mask)
    tl.store(a_ptr + offs, a, mask=mask)


@triton.jit
def _alif_bwd(gz_ptr, vpre_ptr, sg_ptr, asave_ptr, v0_ptr, a0_ptr, be_ptr, rh_ptr, te_ptr, ad_ptr, gvT_ptr, gaT_ptr,
              gx_ptr, gv_ptr, ga_ptr, gb_ptr, gr_ptr, gt_ptr, gd_ptr, T, N, last, keep, R: tl.constexpr,
              HAS_GVT: tl.constexpr, HAS_GAT: tl.constexpr, GB: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    rh = tl.load(rh_ptr + offs, mask=mask, other=0.0)
    te = tl.load(te_ptr + offs, mask=mask, other=0.0)
    ad = tl.load(ad_ptr + offs, mask=mask, other=0.0)
    a0 = tl.load(a0_ptr + offs, mask=mask, other=0.0)
    g = _load_or_zero(gvT_ptr, offs, mask, HAS_GVT, be, BLOCK)
    gA = _load_or_zero(gaT_ptr, offs, mask, HAS_GAT, be, BLOCK)
    gr = tl.full([BLOCK], 0.0, be.dtype)
    gt = tl.full([BLOCK], 0.0, be.dtype)
    gd = tl.full([BLOCK], 0.0, be.dtype)
    gb = tl.full([BLOCK], 0.0, be.dtype)
    if GB:
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    pp, sp, gzp, gxp = vpre_ptr + last + offs, sg_ptr + last + offs, gz_ptr + last + offs, gx_ptr + last + offs
    ap = asave_ptr + last + offs
    for i in range(T):
        has_prev = (tl.full([BLOCK], 0, tl.int32) + i) < T - 1  # step t - 1 exists
        has_prev2 = (tl.full([BLOCK], 0, tl.int32) + i) < T - 2  # step t - 2 exists
        aprev = tl.where(has_prev, tl.load(ap - N, mask=mask & has_prev, other=0.0), a0)
        th = te + ad * aprev
        p = tl.load(pp, mask=mask, other=0.0)
        gzt = tl.load(gzp, mask=mask, other=0.0) + gA
        gr += gA * aprev
        gp, gth = _step_bwd(p, th, g, gzt, tl.load(sp, mask=mask, other=0.0), keep, R, BLOCK)
        tl.store(gxp, gp, mask=mask)
        gt += gth
        gd += gth * aprev
        if GB:
            q = tl.load(pp - N, mask=mask & has_prev, other=0.0)
            th2 = te + ad * tl.where(has_prev2, tl.load(ap - 2 * N, mask=mask & has_prev2, other=0.0), a0)
            gb += gp * tl.where(has_prev, _after_reset(q, th2, _spike(q, th2), R), v0)
        gA = gA * rh + gth * ad
        g = gp * be
        pp -= N
        sp -= N
        gzp -= N
        gxp -= N
        ap -= N
    tl.store(gv_ptr + offs, g, mask=mask)
    tl.store(ga_ptr + offs, gA, mask=mask)
    tl.store(gr_ptr + offs, gr, mask=mask)
    tl.store(gt_ptr + offs, gt, mask=mask)
    tl.store(gd_ptr + offs, gd, mask=mask)
    if GB:
        tl.store(gb_ptr + offs, gb, mask=mask)


@triton.jit
def _li_fwd(x_ptr, v0_ptr, be_ptr, y_ptr, T, N, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    xp, yp = x_ptr + offs, y_ptr + offs
    for _t in range(T):
        v = be * v + tl.load(xp, mask=mask, other=0.0)
        tl.store(yp, v, mask=mask)
        xp += N
        yp += N


@triton.jit
def _li_bwd(gy_ptr, y_ptr, v0_ptr, be_ptr, gx_ptr, gv_ptr, gb_ptr, T, N, last, GB: tl.constexpr,
            BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    be = tl.load(be_ptr + offs, mask=mask, other=0.0)
    g = tl.full([BLOCK], 0.0, be.dtype)
    gb = tl.full([BLOCK], 0.0, be.dtype)
    if GB:
        v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    gyp, yp, gxp = gy_ptr + last + offs, y_ptr + last + offs, gx_ptr + last + offs
    for i in range(T):
        h = g + tl.load(gyp, mask=mask, other=0.0)
        tl.store(gxp, h, mask=mask)
        if GB:
            has_prev = (tl.full([BLOCK], 0, tl.int32) + i) < T - 1  # a vector: valid as a load mask
            gb += h * tl.where(has_prev, tl.load(yp - N, mask=mask & has_prev, other=0.0), v0)
        g = h * be
        gyp -= N
        yp -= N
        gxp -= N
    tl.store(gv_ptr + offs, g, mask=mask)
    if GB:
        tl.store(gb_ptr + offs, gb, mask=mask)


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def _or(t: torch.Tensor | None, dummy: torch.Tensor) -> torch.Tensor:
    return dummy if t is None else t


class Launcher:
    """Tensors in, kernels launched: the launcher interface of :mod:`._autograd`."""

    @staticmethod
    def lif_fwd(reset, x, v0, be, te, z, vpre, v):
        n = v.numel()
        _lif_fwd[_grid(n)](x, v0, be, te, z, vpre, v, x.shape[0], n, R=reset, BLOCK=BLOCK, **OPTS)

    @staticmethod
    def lif_bwd(reset, detach, gz, vpre, sg, v0, be, te, gvT, gx, gv, gb, gt):
        n = gv.numel()
        t = vpre.shape[0]
        _lif_bwd[_grid(n)](gz, vpre, sg, _or(v0, be), be, te, _or(gvT, be), gx, gv, _or(gb, gt), gt, t, n,
                           (t - 1) * n, 0.0 if detach else 1.0, R=reset, HAS_GVT=gvT is not None,
                           GB=gb is not None, BLOCK=BLOCK, **OPTS)

    @staticmethod
    def cuba_fwd(reset, x, i0, v0, ae, be, te, z, vpre, isave, i, v):
        n = v.numel()
        _cuba_fwd[_grid(n)](x, i0, v0, ae, be, te, z, vpre, _or(isave, vpre), i, v, x.shape[0], n, R=reset,
                            SAVE_I=isave is not None, BLOCK=BLOCK, **OPTS)

    @staticmethod
    def cuba_bwd(reset, detach, gz, vpre, sg, isave, i0, v0, ae, be, te, giT, gvT, gx, gi, gv, ga, gb, gt):
        n = gv.numel()
        t = vpre.shape[0]
        _cuba_bwd[_grid(n)](gz, vpre, sg, _or(isave, vpre), _or(i0, be), _or(v0, be), ae, be, te, _or(giT, be),
                            _or(gvT, be), gx, gi, gv, _or(ga, gt), _or(gb, gt), gt, t, n, (t - 1) * n,
                            0.0 if detach else 1.0, R=reset, HAS_GIT=giT is not None,
                            HAS_GVT=gvT is not None, GD=ga is not None, BLOCK=BLOCK, **OPTS)

    @staticmethod
    def alif_fwd(reset, x, v0, a0, be, rh, te, ad, z, vpre, asave, v, a):
        n = v.numel()
        _alif_fwd[_grid(n)](x, v0, a0, be, rh, te, ad, z, vpre, asave, v, a, x.shape[0], n, R=reset, BLOCK=BLOCK,
                            **OPTS)

    @staticmethod
    def alif_bwd(reset, detach, gz, vpre, sg, asave, v0, a0, be, rh, te, ad, gvT, gaT, gx, gv, ga, gb, gr, gt, gd):
        n, t = gv.numel(), vpre.shape[0]
        _alif_bwd[_grid(n)](gz, vpre, sg, asave, _or(v0, be), a0, be, rh, te, ad, _or(gvT, be), _or(gaT, be), gx, gv,
                            ga, _or(gb, gt), gr, gt, gd, t, n, (t - 1) * n, 0.0 if detach else 1.0, R=reset,
                            HAS_GVT=gvT is not None, HAS_GAT=gaT is not None, GB=gb is not None, BLOCK=BLOCK,
                            **OPTS)

    @staticmethod
    def li_fwd(x, v0, be, y):
        n = be.numel()
        _li_fwd[_grid(n)](x, v0, be, y, x.shape[0], n, BLOCK=BLOCK, **OPTS)

    @staticmethod
    def li_bwd(gy, y, v0, be, gx, gv, gb):
        n = be.numel()
        _li_bwd[_grid(n)](gy, _or(y, gy), _or(v0, be), be, gx, gv, _or(gb, gv), gy.shape[0], n,
                          (gy.shape[0] - 1) * n, GB=gb is not None,
                          BLOCK=BLOCK, **OPTS)
