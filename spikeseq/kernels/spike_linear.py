"""``spike_linear(z, weight, bias)``: ``torch.nn.functional.linear`` for spike inputs (0s and 1s), event-driven.

A linear layer after spiking neurons (or on input spikes) multiplies a mostly-zero 0/1 matrix. Two ways:

``"sparse"`` (event-driven, CPU): ``z`` is compressed to the columns of its spikes (:mod:`spikeseq.kernels.spmm`);
    the output is the bias plus the weight columns of every row's spikes and the weight gradient sums the rows of
    the output gradient per spike: ``nnz * O`` additions each instead of ``R * K * O`` multiply-adds. Saved for the
    backward: the compressed indices (4 bytes per spike plus 8 per row). Results equal ``F.linear`` up to the
    order of the float additions (the sums run in a fixed order, independent of the thread count).
``"dense"``: ``F.linear``, with the input saved as ``uint8`` (1 byte per entry instead of 4) for the weight gradient;
    outputs and gradients are exactly those of ``F.linear``. The only mode on GPUs and without the C++ library.

On the CPU the spikes are compressed first in every mode (one pass, which also checks the input and gives the
density); ``mode="auto"`` then takes the sparse way when the density is at most :func:`sparse_max_density` (0.15
with AVX-512 or AVX2 builds, 0.08 with SSE2/NEON) and the layer has at least :data:`SPARSE_MIN_OUT` outputs. The
input must hold only 0s and 1s: anything else raises :class:`~spikeseq.errors.ParameterError` (use ``F.linear``
for graded inputs). The gradient to ``z`` (for the surrogate of the neurons before) is the dense ``g @ weight``
either way.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from spikeseq.checks import check_floating
from spikeseq.errors import BackendUnavailableError, DTypeError, ParameterError, ShapeError
from spikeseq.kernels import spmm

SpikeLinearMode = Literal["auto", "sparse", "dense"]
MODES = ("auto", "sparse", "dense")
#: Largest spike density at which "auto" goes event-driven, by the vector width the library was built for.
#: Measured with ``spikeseq bench spmm --threads 2`` on the 2-core dev machine (float32, [3200, 256] -> 256, forward
#: + all gradients, dense time / event-driven time; the dense side is MKL with AVX-512 in every row):
#: AVX-512 build (64 bytes) 1.93 at density 0.01, 1.34 at 0.1, 0.95 at 0.2, 0.72 at 0.3; AVX2 build
#: (``SPIKESEQ_TARGET_FLAGS=-march=x86-64-v3``, 32 bytes) 1.58 at 0.05, 1.20 at 0.1, 1.04 at 0.15, 0.92 at 0.2;
#: portable build (``SPIKESEQ_TARGET_FLAGS=""``, SSE2, 16 bytes) 1.33 at 0.05, 0.99 at 0.1, 0.84 at 0.15.
SPARSE_MAX_DENSITY_BY_VECTOR = {64: 0.15, 32: 0.15, 16: 0.08}
#: Fewest outputs for which "auto" goes event-driven: the sums run over vectors of outputs, so narrow layers gain
#: less. Same bench at density 0.1: 32 outputs 1.19x faster event-driven, 20 outputs (a readout) 0.90x.
SPARSE_MIN_OUT = 32

_NOT_SPIKES = ("spike_linear needs an input of 0s and 1s (spikes); use torch.nn.functional.linear for graded "
               "inputs")


def _check_binary_torch(z: torch.Tensor) -> torch.Tensor:
    """``z`` as uint8, raising unless every entry is 0 or 1 (the path without the C++ library)."""
    zb = z.to(torch.uint8)
    if not torch.equal(zb.to(z.dtype), z):
        raise ParameterError(_NOT_SPIKES)
    return zb


def sparse_max_density() -> float:
    """The density up to which ``mode="auto"`` goes event-driven with the library built here."""
    return SPARSE_MAX_DENSITY_BY_VECTOR.get(spmm.vector_bytes(), min(SPARSE_MAX_DENSITY_BY_VECTOR.values()))


def _use_sparse(mode: str, density: float, out_features: int) -> bool:
    if mode == "sparse":
        return True
    return mode == "auto" and density <= sparse_max_density() and out_features >= SPARSE_MIN_OUT


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, weight, bias, mode):  # type: ignore[override]
        in_features, out_features = weight.shape[1], weight.shape[0]
        z2 = z.reshape(math.prod(z.shape[:-1]), in_features)  # (-1 is ambiguous for empty tensors)
        spikes, zb = None, None
        need_weight_grad = ctx.needs_input_grad[1]
        if spmm.supports(z2) and weight.device.type == "cpu":
            z2 = z2.contiguous()
            compressed, bad = spmm.compress(z2)
            if bad:
                raise ParameterError(_NOT_SPIKES)
            if _use_sparse(mode, compressed.nnz / max(z2.numel(), 1), out_features):
                spikes = compressed
                out2 = spmm.linear(spikes, weight, bias)
            else:
                out2 = F.linear(z2, weight, bias)
                zb = z2.to(torch.uint8) if need_weight_grad else None
        else:
            if mode == "sparse":
                where = "a CPU tensor" if z.device.type != "cpu" else "the C++ library (no compiler?)"
                raise BackendUnavailableError(f"spike_linear mode='sparse' needs {where}; use mode='auto' or 'dense'")
            zb = _check_binary_torch(z2)
            out2 = F.linear(z2, weight, bias)
            zb = zb if need_weight_grad else None
        if spikes is not None and need_weight_grad:
            ctx.save_for_backward(spikes.rowptr, spikes.idx, weight if ctx.needs_input_grad[0] else None)
            ctx.spike_shape = (spikes.rows, spikes.cols)
        else:
            ctx.save_for_backward(None, zb, weight if ctx.needs_input_grad[0] else None)
            ctx.spike_shape = None
        ctx.z_shape, ctx.has_bias = z.shape, bias is not None
        return out2.reshape(*z.shape[:-1], out_features)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        rowptr, saved, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        g2 = g.reshape(math.prod(g.shape[:-1]), g.shape[-1])
        gz = (g2 @ weight).reshape(ctx.z_shape) if need[0] else None
        gw = None
        if need[1]:
            if rowptr is not None:
                gw = spmm.weight_grad(spmm.SpikeRows(rowptr, saved, *ctx.spike_shape), g2)
            else:
                gw = g2.t() @ saved.to(g2.dtype)
        gb = g2.sum(0) if ctx.has_bias and need[2] else None
        return gz, gw, gb, None


def spike_linear(
    z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *, mode: SpikeLinearMode = "auto"
) -> torch.Tensor:
    """``z @ weight.T + bias`` for spikes ``z`` (0/1, any leading shape); see the module docstring for ``mode``."""
    check_floating(z, "z")
    if mode not in MODES:
        raise ParameterError(f"unknown spike_linear mode {mode!r}; expected one of {MODES}")
    if weight.dim() != 2 or z.shape[-1] != weight.shape[-1]:
        raise ShapeError(f"z has {z.shape[-1]} features but weight expects {weight.shape[-1]} (shape "
                         f"{tuple(weight.shape)}); weight must be [out_features, in_features]")
    if torch.is_autocast_enabled(z.device.type):
        # mixed precision (torch.autocast): the product runs as the dense F.linear, which autocast casts to the
        # low-precision dtype like every torch linear layer; the event-driven path is float32 / float64 only
        return F.linear(z, weight, bias)
    if weight.dtype != z.dtype or (bias is not None and bias.dtype != z.dtype):
        raise DTypeError(f"z is {z.dtype} but weight/bias are {weight.dtype}/{None if bias is None else bias.dtype}; "
                         "convert them to one floating dtype")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
    return _SpikeLinear.apply(z, weight, bias, mode)
