"""Triton forward kernel of the EGRU: one launch per time step, one program per (batch row, block of units).

Imported only on first use of the ``"triton"`` backend (importing it imports triton). A program sums the
recurrent product ``h = b_h + R y[t-1]`` for its units over blocks of ``BLOCK_K`` presynaptic units and **skips every
block in which no unit sent an event** (``y[t-1]`` all zero there): on a GPU, activity sparsity saves whole weight
tiles. Then the gate equations of :mod:`spikeseq.functional.egru`, writing what the backward needs (the same
arrays as ``egru.cpp``). Launched with ``enable_fp_fusion=False``. Under ``TRITON_INTERPRET=1`` (set before this
module is imported) the kernel runs on CPU tensors, for tests.
"""

from __future__ import annotations

import triton
import triton.language as tl

OPTS = {"enable_fp_fusion": False}


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _colsum(x):
    """Sum over axis 0 with tl.reduce and a local combine function (triton.language's own ``sum`` is decorated when
    triton is imported, so it escapes a TRITON_INTERPRET set later, as in the tests)."""
    return tl.reduce(x, 0, _add)


@triton.jit
def _egru_step(a_ptr, rt_ptr, bh_ptr, th_ptr, m_ptr, cp_ptr, yp_ptr, y_ptr, e_ptr, r_ptr, z_ptr, n_ptr, hn_ptr,
               ct_ptr, c_ptr, H, HAS_M: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr):
    b = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    mask = offs < H
    G = 3 * H
    acc_r = tl.load(bh_ptr + offs, mask=mask, other=0.0)
    acc_z = tl.load(bh_ptr + H + offs, mask=mask, other=0.0)
    acc_n = tl.load(bh_ptr + 2 * H + offs, mask=mask, other=0.0)
    for k0 in range(0, H, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        km = ks < H
        yk = tl.load(yp_ptr + b * H + ks, mask=km, other=0.0)
        if _colsum(tl.abs(yk)) > 0:  # a block of units without events costs no weight loads
            wm = km[:, None] & mask[None, :]
            rows = rt_ptr + ks[:, None] * G + offs[None, :]
            acc_r += _colsum(yk[:, None] * tl.load(rows, mask=wm, other=0.0))
            acc_z += _colsum(yk[:, None] * tl.load(rows + H, mask=wm, other=0.0))
            acc_n += _colsum(yk[:, None] * tl.load(rows + 2 * H, mask=wm, other=0.0))
    ab = a_ptr + b * G
    r = 1.0 / (1.0 + tl.exp(-(tl.load(ab + offs, mask=mask, other=0.0) + acc_r)))
    z = 1.0 / (1.0 + tl.exp(-(tl.load(ab + H + offs, mask=mask, other=0.0) + acc_z)))
    pn = tl.load(ab + 2 * H + offs, mask=mask, other=0.0) + r * acc_n
    n = 1.0 - 2.0 / (tl.exp(pn + pn) + 1.0)
    o = b * H + offs
    cp = tl.load(cp_ptr + o, mask=mask, other=0.0)
    th = tl.load(th_ptr + offs, mask=mask, other=0.0)
    ct = z * cp + (1.0 - z) * n
    ev = tl.where(ct - th > 0, 1.0, 0.0).to(ct.dtype)
    c = ct - ev * th
    if HAS_M:
        m = tl.load(m_ptr + o, mask=mask, other=0.0)
        c = m * cp + (1.0 - m) * c
    tl.store(y_ptr + o, ev * ct, mask=mask)
    tl.store(e_ptr + o, ev, mask=mask)
    tl.store(r_ptr + o, r, mask=mask)
    tl.store(z_ptr + o, z, mask=mask)
    tl.store(n_ptr + o, n, mask=mask)
    tl.store(hn_ptr + o, acc_n, mask=mask)
    tl.store(ct_ptr + o, ct, mask=mask)
    tl.store(c_ptr + o, c, mask=mask)


def forward(a, rt, bh, th, m, c0, y0, block_h: int = 64, block_k: int = 32):
    """All steps: ``(y, e, r, z, n, hn, ct, c)`` each ``[T, B, H]`` from pre-activations ``a [T, B, 3H]``."""
    t_len, b, g = a.shape
    h = g // 3
    outs = [a.new_empty(t_len, b, h) for _ in range(8)]
    y, e, r, z, n, hn, ct, c = outs
    grid = (b, triton.cdiv(h, block_h))
    for t in range(t_len):
        yp = y[t - 1] if t else y0
        cp = c[t - 1] if t else c0
        mt = m[t] if m is not None else cp  # unused when HAS_M is False
        _egru_step[grid](a[t], rt, bh, th, mt, cp, yp, y[t], e[t], r[t], z[t], n[t], hn[t], ct[t], c[t], h,
                         HAS_M=m is not None, BLOCK_H=block_h, BLOCK_K=block_k, **OPTS)
    return outs


__all__ = ["forward"]
