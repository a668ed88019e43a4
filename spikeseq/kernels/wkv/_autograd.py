"""The autograd function shared by the fused WKV backends (C++ on the CPU, Triton on the GPU).

A backend supplies a *launcher* with ``fwd`` and ``bwd`` (the fused loops); the checks, the dtype policy (half
precision computed in float32), what is saved and the batch reduction of the parameter gradients are here, once.

Forward: the stabilised step of :mod:`spikeseq.functional.wkv` over time; when a gradient is needed the state
before each step, ``(a, b, p)`` ``[T, N]``, is saved with ``y``. Backward (time reversed), in terms of the true sums
``A = a e^p``, ``B = b e^p`` and their adjoints scaled by the running maximum, ``ga = e^{p_t} dL/dA_t``,
``gb = e^{p_t} dL/dB_t`` (bounded by the sum of ``|dL/dy|``; every exponential below is of a number <= 0):

    d      = e^{p-q} b + e^{u+k-q}                  (the forward's denominator, q = max(p_{t-1}, u + k_t))
    dk_t   = gy e^{u+k-q} (v - y) / d + e^{k - p_t} (ga v + gb)       du += gy e^{u+k-q} (v - y) / d
    dv_t   = gy e^{u+k-q} / d     + e^{k - p_t} ga
    dw    -= e^{p_{t-1} - w - p_t} (ga a_{t-1} + gb b_{t-1})
    ga    <- e^{p_{t-1} - w - p_t} ga + gy e^{p-q} / d,     gb <- e^{p_{t-1} - w - p_t} gb - gy y e^{p-q} / d

starting from the final state's gradients ``ga = dL/da_T``, ``gb = dL/db_T``. The running maximum ``p`` itself is a
piecewise-linear function of ``k`` and ``w``; the gradient reaching it, ``dL/dp_T - ga a_T - gb b_T``, is passed down
its argmax chain (to ``k_t`` where ``p_t = k_t``, else to ``-w`` and ``p_{t-1}``), ties split as ``torch.maximum``
splits them. At the start: ``dL/da_0 = ga``, ``dL/db_0 = gb``, ``dL/dp_0 = ga a_0 + gb b_0 + chain``.
Double backward is not supported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from spikeseq.functional.wkv import WKVState, check_wkv_args, wkv_compute_dtype, wkv_start_state


def _zeros_or(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if g is None else g.contiguous()


def make_wkv(launcher: Any, name: str) -> Callable[..., tuple[torch.Tensor, WKVState]]:
    """The checked ``wkv(k, v, state=None, *, w, u)`` entry point of a backend whose fused loops are ``launcher``."""

    class _WKV(torch.autograd.Function):
        @staticmethod
        def forward(ctx, k, v, w, u, a0, b0, p0):  # type: ignore[override]
            save = any(ctx.needs_input_grad)
            y = torch.empty_like(k)
            a1, b1, p1 = torch.empty_like(a0), torch.empty_like(a0), torch.empty_like(a0)
            sa, sb, sp = (torch.empty_like(k) for _ in range(3)) if save else (None, None, None)
            launcher.fwd(k, v, w, u, a0, b0, p0, y, a1, b1, p1, sa, sb, sp)
            if save:
                ctx.save_for_backward(k, v, y, sa, sb, sp, w, u, a1, b1, p1)
            return y, a1, b1, p1

        @staticmethod
        @once_differentiable
        def backward(ctx, gy, ga, gb, gp):  # type: ignore[override]
            k, v, y, sa, sb, sp, w, u, a1, b1, p1 = ctx.saved_tensors
            gk, gv = torch.empty_like(k), torch.empty_like(k)
            gw, gu, ga0, gb0, gp0 = (torch.empty_like(a1) for _ in range(5))
            launcher.bwd(_zeros_or(gy, y), k, v, y, sa, sb, sp, w, u, a1, b1, p1, _zeros_or(ga, a1),
                         _zeros_or(gb, a1), _zeros_or(gp, a1), gk, gv, gw, gu, ga0, gb0, gp0)
            return gk, gv, gw, gu, ga0, gb0, gp0

    def wkv(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor,
            u: torch.Tensor) -> tuple[torch.Tensor, WKVState]:
        check_wkv_args(k, v, w, u, state, step=False)
        T, B, C = k.shape
        dt = wkv_compute_dtype(k)
        st = wkv_start_state(k, state, dt)
        N = B * C
        args = [k.to(dt).reshape(T, N).contiguous(), v.to(dt).reshape(T, N).contiguous(),
                w.to(dt).expand(B, C).reshape(N).contiguous(), u.to(dt).expand(B, C).reshape(N).contiguous()]
        args += [s.reshape(N).contiguous() for s in st]
        y, a, b, p = _WKV.apply(*args)
        return y.reshape(T, B, C).to(k.dtype), WKVState(a.reshape(B, C), b.reshape(B, C), p.reshape(B, C))

    wkv.__doc__ = f":func:`spikeseq.functional.wkv_scan` as fused {name} loops (forward and backward)."
    return wkv
