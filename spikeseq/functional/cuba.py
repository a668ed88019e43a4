"""Current-based LIF (CuBa-LIF), reference implementation.

Current first, then voltage (the update order of snnTorch ``Synaptic``, Lava CUBA and NIR CubaLIF):

    i[t]     = alpha * i[t-1] + x[t]                alpha = exp(-dt/tau_syn)
    v_pre[t] = beta * v[t-1] + i[t]                 beta  = exp(-dt/tau_mem)
    z[t]     = H(v_pre[t] - v_th)
    v[t]     = reset(v_pre[t], z[t])                as in :mod:`spikeseq.functional.lif`; i is never reset

``i[t]`` is the *new* current, so an input reaches ``v`` in the same step (snnTorch's choice; the NIR reference
implementation uses the previous current, one step later). snnTorch ``Synaptic(reset_mechanism="zero")`` is the
same model (its ``mem`` is our ``v_pre``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeseq import surrogate as sg
from spikeseq.checks import check_finite_result, check_floating, check_sequence, check_unit_interval
from spikeseq.functional.lif import lif_update
from spikeseq.functional.neuron_args import as_param, check_neuron_args, initial
from spikeseq.types import ParamLike, ResetMode


class CubaLIFState(NamedTuple):
    """CuBa-LIF state: synaptic current ``i`` and membrane ``v``, each ``[B, ...]`` like one input step."""

    i: torch.Tensor
    v: torch.Tensor


def cuba_lif_step(
    x: torch.Tensor,
    state: CubaLIFState | None = None,
    *,
    alpha: ParamLike,
    beta: ParamLike,
    v_th: ParamLike = 1.0,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, CubaLIFState]:
    """One CuBa-LIF step on ``x`` of shape ``[B, ...]``."""
    check_floating(x, "x")
    check_unit_interval(alpha, "alpha")
    check_neuron_args(beta, v_th, reset)
    i = initial(None if state is None else state.i, x.shape, x, "i")
    v = initial(None if state is None else state.v, x.shape, x, "v")
    a = as_param(alpha, x, "alpha")
    i = a * i + x
    z, v = lif_update(v, i, as_param(beta, x, "beta"), as_param(v_th, x, "v_th"), reset, detach_reset, surrogate)
    return z, CubaLIFState(i, v)


def cuba_lif_scan(
    x: torch.Tensor,
    state: CubaLIFState | None = None,
    *,
    alpha: ParamLike,
    beta: ParamLike,
    v_th: ParamLike = 1.0,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, CubaLIFState]:
    """CuBa-LIF over ``[T, B, ...]``; returns spikes ``[T, B, ...]`` and the final state."""
    check_sequence(x)
    check_unit_interval(alpha, "alpha")
    check_neuron_args(beta, v_th, reset)
    i = initial(None if state is None else state.i, x.shape[1:], x, "i")
    v = initial(None if state is None else state.v, x.shape[1:], x, "v")
    a, b, th = as_param(alpha, x, "alpha"), as_param(beta, x, "beta"), as_param(v_th, x, "v_th")
    zs = []
    for x_t in x.unbind(0):  # unbind: the backward adds T slices, not T full-size zero gradients
        i = a * i + x_t
        z, v = lif_update(v, i, b, th, reset, detach_reset, surrogate)
        zs.append(z)
    check_finite_result(v, "the final CuBa-LIF membrane")
    return torch.stack(zs), CubaLIFState(i, v)
