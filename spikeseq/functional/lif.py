"""Leaky integrate-and-fire (LIF) and integrate-and-fire (IF) neurons, reference implementation.

One step, for input current ``x[t]`` (already weighted), decay ``beta = exp(-dt/tau_mem)``:

    v_pre[t] = beta * v[t-1] + x[t]                 (no input scaling: the weights carry the gain)
    z[t]     = H(v_pre[t] - v_th)                   (strict: a spike iff v_pre > v_th)
    v[t]     = v_pre[t] - z[t] * v_th               reset="subtract"
             = v_pre[t] * (1 - z[t])                reset="zero"
             = v_pre[t]                             reset="none"

The reset is applied in the same step as the spike, and the state ``v`` is the membrane *after* reset (as in
Norse, SpikingJelly, Lava and NIR). snnTorch ``Leaky(reset_mechanism="zero")`` is the same model (its ``mem``
equals our ``v_pre``); snnTorch's ``"subtract"`` subtracts the threshold one step later and without decay, so it
differs from ours by a factor ``beta`` on the reset term. With ``detach_reset`` the reset term carries no
gradient. IF is LIF with ``beta = 1``. The surrogate gradient replaces dH/dx (see :mod:`spikeseq.surrogate`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeseq import surrogate as sg
from spikeseq.checks import check_finite_result, check_floating, check_sequence
from spikeseq.functional.neuron_args import apply_reset, as_param, check_neuron_args, initial
from spikeseq.types import ParamLike, ResetMode


class LIFState(NamedTuple):
    """LIF state: membrane ``v`` after reset, ``[B, ...]`` like one input step."""

    v: torch.Tensor


def lif_update(v, x, beta, v_th, reset, detach_reset, surrogate):
    """The update equation of the module docstring on tensors, without checks (shared by step and scan)."""
    v_pre = beta * v + x
    z = sg.spike(v_pre - v_th, surrogate)
    return z, apply_reset(v_pre, z, v_th, reset, detach_reset)


def lif_step(
    x: torch.Tensor,
    state: LIFState | None = None,
    *,
    beta: ParamLike,
    v_th: ParamLike = 1.0,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, LIFState]:
    """One LIF step on ``x`` of shape ``[B, ...]``; returns spikes ``z`` and the new state."""
    check_floating(x, "x")
    check_neuron_args(beta, v_th, reset)
    v = initial(None if state is None else state.v, x.shape, x, "v")
    b, th = as_param(beta, x, "beta"), as_param(v_th, x, "v_th")
    z, v = lif_update(v, x, b, th, reset, detach_reset, surrogate)
    return z, LIFState(v)


def lif_scan(
    x: torch.Tensor,
    state: LIFState | None = None,
    *,
    beta: ParamLike,
    v_th: ParamLike = 1.0,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, LIFState]:
    """LIF over a time-first sequence ``x`` of shape ``[T, B, ...]``; returns ``z`` ``[T, B, ...]`` and the final state.

    This is the reference every kernel is tested against: a plain loop of :func:`lif_step` under autograd.
    """
    check_sequence(x)
    check_neuron_args(beta, v_th, reset)
    v = initial(None if state is None else state.v, x.shape[1:], x, "v")
    b, th = as_param(beta, x, "beta"), as_param(v_th, x, "v_th")
    zs = []
    for x_t in x.unbind(0):  # unbind: the backward adds T slices, not T full-size zero gradients
        z, v = lif_update(v, x_t, b, th, reset, detach_reset, surrogate)
        zs.append(z)
    check_finite_result(v, "the final LIF membrane")
    return torch.stack(zs), LIFState(v)


def if_step(x, state=None, *, v_th=1.0, reset="subtract", detach_reset=False, surrogate=sg.DEFAULT):
    """Integrate-and-fire: :func:`lif_step` with ``beta = 1``."""
    return lif_step(x, state, beta=1.0, v_th=v_th, reset=reset, detach_reset=detach_reset, surrogate=surrogate)


def if_scan(x, state=None, *, v_th=1.0, reset="subtract", detach_reset=False, surrogate=sg.DEFAULT):
    """Integrate-and-fire over ``[T, B, ...]``: :func:`lif_scan` with ``beta = 1``."""
    return lif_scan(x, state, beta=1.0, v_th=v_th, reset=reset, detach_reset=detach_reset, surrogate=surrogate)
