"""``spike_linear(z, weight, bias)``: ``torch.nn.functional.linear`` for spike inputs, saving them as ``uint8``.

A linear layer after spiking neurons saves its input for the weight gradient. ``nn.Linear`` keeps it in the input's
float dtype (4 bytes per spike in float32); here it is kept as ``uint8`` (1 byte) and converted back in the backward.
Outputs and gradients are those of ``F.linear`` exactly (0 and 1 convert without rounding). The input must hold
only 0s and 1s: this is checked when the weight needs a gradient, and anything else raises
:class:`~spikeseq.errors.ParameterError` (use ``F.linear`` for graded inputs). On the CPU the conversion and the
check are one pass of the C++ library of :mod:`spikeseq.kernels.lif` (when it can be built), else torch ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from spikeseq.checks import check_floating
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.kernels.lif import _build


def _to_u8(z: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``z`` as uint8 and whether every entry was 0 or 1."""
    if z.device.type == "cpu" and z.dtype in (torch.float32, torch.float64):
        lib = _build.library()
        if lib is not None:
            zc = z.contiguous()
            out = torch.empty(zc.shape, dtype=torch.uint8)
            fn = lib.spikes_to_u8_f32 if z.dtype == torch.float32 else lib.spikes_to_u8_f64
            return out, fn(zc.data_ptr(), out.data_ptr(), zc.numel()) == 0
    zb = z.to(torch.uint8)
    return zb, torch.equal(zb.to(z.dtype), z)


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, weight, bias):  # type: ignore[override]
        out = F.linear(z, weight, bias)
        zb = None
        if ctx.needs_input_grad[1]:
            zb, binary = _to_u8(z)
            if not binary:
                raise ParameterError(
                    "spike_linear needs an input of 0s and 1s (spikes); use torch.nn.functional.linear for graded "
                    "inputs"
                )
        ctx.save_for_backward(zb, weight if ctx.needs_input_grad[0] else None)
        ctx.dtype, ctx.has_bias = z.dtype, bias is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        zb, weight = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        gz = (g @ weight) if ctx.needs_input_grad[0] else None
        gw = g2.t() @ zb.reshape(-1, zb.shape[-1]).to(ctx.dtype) if ctx.needs_input_grad[1] else None
        gb = g2.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gz, gw, gb


def spike_linear(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``z @ weight.T + bias`` for spikes ``z`` (0/1, any leading shape), saving ``z`` as uint8 for the backward."""
    check_floating(z, "z")
    if z.shape[-1] != weight.shape[-1]:
        raise ShapeError(f"z has {z.shape[-1]} features but weight expects {weight.shape[-1]} (shape "
                             f"{tuple(weight.shape)})")
    return _SpikeLinear.apply(z, weight, bias)
