"""Argument handling shared by the fast LIF-family backends (CPU and Triton).

The backends run exactly the checks of the reference (:mod:`spikeseq.functional`), so bad input raises the same
exceptions whichever backend runs. ``supports`` only turns away *valid* calls a backend cannot run (device, dtype,
parameter shapes); invalid calls pass through so that the checks raise their specific errors.
"""

from __future__ import annotations

import torch

from spikeseq.types import ParamLike

RESET_CODES = {"subtract": 0, "zero": 1, "none": 2}


def expand_param(p: torch.Tensor, step_shape: torch.Size) -> torch.Tensor:
    """A scalar or per-neuron parameter expanded to one value per state element, contiguous (no autograd)."""
    return p.detach().expand(step_shape).contiguous()


def reduce_grad(g: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
    """Sum a per-element gradient (step shape) back to the shape of the parameter it belongs to."""
    if g is None:
        return None
    return g.sum_to_size(shape) if len(shape) else g.sum()


def param_problem(p: ParamLike, name: str, step_shape: torch.Size, x: torch.Tensor) -> str | None:
    if not isinstance(p, torch.Tensor):
        return None
    if p.device != x.device:
        return f"{name} is on {p.device} but x on {x.device}"
    try:
        shape = torch.broadcast_shapes(p.shape, step_shape)
    except RuntimeError:
        return None  # the reference raises on this call too
    if shape != step_shape:
        return f"{name} of shape {tuple(p.shape)} does not broadcast to the step shape {tuple(step_shape)}"
    return None


def call_problem(x, state, params: dict, devices: tuple[str, ...], dtypes: tuple[torch.dtype, ...]) -> str | None:
    """Why a backend cannot run this (valid) call, or ``None``; invalid calls return ``None`` (checked later)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        return None
    if x.device.type not in devices:
        return f"x is on {x.device.type}, this backend runs on {'/'.join(devices)}"
    if x.dtype not in dtypes:
        return f"dtype {x.dtype} not supported (only {', '.join(str(d) for d in dtypes)})"
    step = x.shape[1:]
    for name, p in params.items():
        why = param_problem(p, name, step, x)
        if why:
            return why
    for s in state or ():
        if isinstance(s, torch.Tensor) and (s.device != x.device or s.dtype != x.dtype):
            return f"state on {s.device}/{s.dtype} differs from x on {x.device}/{x.dtype}"
    return None
