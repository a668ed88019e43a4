"""Leaky integrator (LI) readout, reference implementation.

    v[t] = beta * v[t-1] + x[t]          beta = exp(-dt/tau_mem); output y[t] = v[t], no spikes, no reset

A non-spiking readout (snnTorch ``Leaky`` with an unreachable threshold, Norse ``LICell`` without the synaptic
current, NIR ``LI`` with r = tau/dt).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeseq.checks import check_finite_result, check_floating, check_sequence, check_unit_interval
from spikeseq.functional.neuron_args import as_param, initial
from spikeseq.types import ParamLike


class LIState(NamedTuple):
    """LI state: membrane ``v``, ``[B, ...]`` like one input step."""

    v: torch.Tensor


def li_step(x: torch.Tensor, state: LIState | None = None, *, beta: ParamLike) -> tuple[torch.Tensor, LIState]:
    """One LI step on ``[B, ...]``; returns the membrane as output and as state."""
    check_floating(x, "x")
    check_unit_interval(beta, "beta")
    v = initial(None if state is None else state.v, x.shape, x, "v")
    v = as_param(beta, x, "beta") * v + x
    return v, LIState(v)


def li_scan(x: torch.Tensor, state: LIState | None = None, *, beta: ParamLike) -> tuple[torch.Tensor, LIState]:
    """LI over ``[T, B, ...]``; returns the membrane trace ``[T, B, ...]`` and the final state."""
    check_sequence(x)
    check_unit_interval(beta, "beta")
    v = initial(None if state is None else state.v, x.shape[1:], x, "v")
    b = as_param(beta, x, "beta")
    vs = []
    for x_t in x.unbind(0):  # unbind: the backward adds T slices, not T full-size zero gradients
        v = b * v + x_t
        vs.append(v)
    check_finite_result(v, "the final LI membrane")
    return torch.stack(vs), LIState(v)
