"""Argument handling shared by the neuron reference implementations and their kernels."""

from __future__ import annotations

import torch

from spikeseq.checks import check_finite_param, check_reset, check_state_shape, check_unit_interval
from spikeseq.dynamics import reset_membrane
from spikeseq.errors import ShapeError
from spikeseq.types import ParamLike


def as_param(p: ParamLike, like: torch.Tensor, name: str = "parameter") -> torch.Tensor:
    """A scalar or per-neuron parameter as a tensor on ``like``'s device and dtype (keeps autograd).

    A tensor must broadcast against ``like`` without changing its shape (a scalar, or one value per neuron of the
    trailing dimensions); anything else raises :class:`~spikeseq.errors.ShapeError`.
    """
    if isinstance(p, torch.Tensor):
        if p.dim() > like.dim() or any(a not in (1, b) for a, b in zip(reversed(p.shape), reversed(like.shape))):
            raise ShapeError(
                f"{name} has shape {tuple(p.shape)}, which does not fit the neurons of the input (shape "
                f"{tuple(like.shape)}); give a scalar or one value per neuron, shape [{like.shape[-1]}] (a module's "
                "size must equal the number of input features)")
        return p.to(device=like.device, dtype=like.dtype)
    return torch.tensor(p, device=like.device, dtype=like.dtype)


def check_neuron_args(beta: ParamLike, v_th: ParamLike, reset: str, beta_name: str = "beta") -> None:
    """A decay in [0, 1], a finite threshold and a known reset mode (the specific errors otherwise)."""
    check_unit_interval(beta, beta_name)
    check_finite_param(v_th, "v_th")
    check_reset(reset)


def initial(state_field: torch.Tensor | None, step_shape: torch.Size, like: torch.Tensor, name: str):
    """A state field, or zeros of ``step_shape`` like ``like`` when it is ``None`` (shape checked)."""
    if state_field is None:
        return torch.zeros(step_shape, device=like.device, dtype=like.dtype)
    check_state_shape(state_field, step_shape, name)
    return state_field


def apply_reset(v_pre: torch.Tensor, z: torch.Tensor, v_th: torch.Tensor, reset: str,
                detach_reset: bool) -> torch.Tensor:
    """Reset after a spike (:func:`reset_membrane`), with the spike detached from the graph when
    ``detach_reset``."""
    return reset_membrane(v_pre, z.detach() if detach_reset else z, v_th, reset)
