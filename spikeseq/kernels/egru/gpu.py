"""Triton backend ``"triton"`` of ``egru_scan``: the forward in a Triton kernel (:mod:`._triton_kernels`: weight
tiles of presynaptic blocks without events are skipped), the backward as PyTorch operations on the device from the
saved gate values (per step: the element-wise gate gradients, then dense products ``gh R`` and ``y[t-1]^T gh``;
the gradient to ``y[t-1]`` is masked to units that fired or lie inside the pseudo-derivative's support, exactly as
the C++ sparse BPTT, so both backends compute the same numbers).

Available when triton is installed and either a CUDA device exists (CUDA tensors) or ``TRITON_INTERPRET=1`` is set
(CPU tensors through Triton's interpreter: slow, for tests only; set it before the first call).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spikeseq.functional.egru import EGRUOutput, EGRUState, check_final_state, into_events_out, prepare_egru
from spikeseq.kernels.dispatch import triton_available, triton_devices
from spikeseq.kernels.egru._common import call_problem

#: this backend's ``available()`` (the one :func:`~spikeseq.kernels.dispatch.register_triton` registers)
available = triton_available


def backward_steps(saved, rt, width, damp, gy_out, ge_out, gcT, gyT):
    """The sparse-BPTT recurrences of ``egru.cpp`` in PyTorch operations (any device)."""
    th, m, c0, y0, y, r, z, n, hn, ct, cs = saved
    t_len, _, h = y.shape
    gyr = torch.zeros_like(y0) if gyT is None else gyT.clone()
    gc = torch.zeros_like(c0) if gcT is None else gcT.clone()
    ga = y.new_empty(t_len, y.shape[1], 3 * h)
    grt = y.new_zeros(h, 3 * h)
    gbh = y.new_zeros(3 * h)
    gth = y.new_zeros(h)
    for t in range(t_len - 1, -1, -1):
        cp = cs[t - 1] if t else c0
        yp = y[t - 1] if t else y0
        x = ct[t] - th
        ev = (x > 0).to(y.dtype)
        pd = (x.abs() / -width + 1).clamp(min=0) * damp
        gy = gyr if gy_out is None else gy_out[t] + gyr
        mm = 0.0 if m is None else m[t]
        gcn = (1 - mm) * gc
        get = gy * ct[t] - gcn * th if ge_out is None else ge_out[t] + gy * ct[t] - gcn * th
        gct = gcn + gy * ev + get * pd
        gth -= (ev * gcn + get * pd).sum(0)
        gz = gct * (cp - n[t])
        gc = gct * z[t] + mm * gc
        gpn = gct * (1 - z[t]) * (1 - n[t] * n[t])
        gpr = gpn * hn[t] * r[t] * (1 - r[t])
        gpz = gz * z[t] * (1 - z[t])
        ga[t] = torch.cat([gpr, gpz, gpn], dim=1)
        gh = torch.cat([gpr, gpz, gpn * r[t]], dim=1)
        gbh += gh.sum(0)
        grt += yp.t() @ gh
        gyr = gh @ rt.t()
        if t:
            xp = ct[t - 1] - th
            gyr = gyr * ((xp > 0) | (xp.abs() / width < 1)).to(y.dtype)
    return ga, gc, gyr, grt, gbh, gth


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, c0, y0, weight_hh, bias_hh, theta, mask, width, damp):  # type: ignore[override]
        from spikeseq.kernels.egru import _triton_kernels as tk

        h = a.shape[2] // 3
        a = a.contiguous()
        rt = weight_hh.detach().t().contiguous()
        bh = (a.new_zeros(3 * h) if bias_hh is None else bias_hh.detach()).contiguous()
        th = theta.detach().expand(h).contiguous()
        c0, y0 = c0.detach().contiguous(), y0.detach().contiguous()
        m = None if mask is None else mask.contiguous()
        y, e, r, z, n, hn, ct, cs = tk.forward(a, rt, bh, th, m, c0, y0)
        ctx.save_for_backward(th, m, c0, y0, y, r, z, n, hn, ct, cs, rt)
        ctx.width, ctx.damp, ctx.theta_shape, ctx.has_bias = width, damp, theta.shape, bias_hh is not None
        return y, e, cs[-1].clone(), y[-1].clone()

    @staticmethod
    def backward(ctx, gy, ge, gcT, gyT):  # type: ignore[override]
        *saved, rt = ctx.saved_tensors
        ga, gc0, gy0, grt, gbh, gth = backward_steps(saved, rt, ctx.width, ctx.damp, gy, ge, gcT, gyT)
        g_theta = gth.sum() if len(ctx.theta_shape) == 0 else gth
        return ga, gc0, gy0, grt.t(), gbh if ctx.has_bias else None, g_theta, None, None, None


def egru_scan(x: torch.Tensor, state: EGRUState | None = None, **params) -> tuple[EGRUOutput, EGRUState]:
    """:func:`spikeseq.functional.egru_scan` with the Triton forward (same arguments, same results)."""
    events_out = params.pop("events_out", None)
    p = prepare_egru(x, state, **params)
    a = F.linear(x, p.weight_ih, p.bias_ih)
    y, e, c, y_last = _Scan.apply(a, p.state.c, p.state.y, p.weight_hh, p.bias_hh, p.threshold, p.mask,
                                  p.surrogate.width, p.surrogate.dampening)
    check_final_state(c)
    return EGRUOutput(y, into_events_out(e, events_out)), EGRUState(c, y_last)


def supports(x, state=None, *, weight_ih=None, weight_hh=None, bias_ih=None, bias_hh=None, threshold=None,
             **_: object) -> str | None:
    """Why this backend cannot run a valid call (device, dtype), or ``None``; a malformed ``state`` (e.g. a bare
    tensor) is taken, and :func:`~spikeseq.functional.egru.prepare_egru` refuses it with the reference's
    :class:`~spikeseq.errors.ShapeError` (:func:`~spikeseq.kernels.egru._common.call_problem`)."""
    devices = triton_devices()
    return call_problem(x, state, (weight_ih, weight_hh, bias_ih, bias_hh, threshold), devices, "the Triton kernel")
