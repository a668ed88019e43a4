"""Adaptive-threshold LIF (ALIF; Bellec et al. 2018, "Long short-term memory and learning-to-learn in networks of
spiking neurons"), reference implementation.

    theta[t] = v_th + adapt * a[t-1]                  effective threshold
    v_pre[t] = beta * v[t-1] + x[t]
    z[t]     = H(v_pre[t] - theta[t])
    v[t]     = v_pre[t] - z[t] * theta[t]  | v_pre[t] * (1 - z[t])  | v_pre[t]     (reset subtract | zero | none)
    a[t]     = rho * a[t-1] + z[t]                    rho = exp(-dt/tau_adapt)

``adapt`` (Bellec's beta, renamed to avoid a clash with the membrane decay) scales the threshold increase per
recent spike; the adaptation trace ``a`` carries the surrogate gradient through ``z``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeseq import surrogate as sg
from spikeseq.checks import check_finite_param, check_finite_result, check_floating, check_sequence, check_unit_interval
from spikeseq.functional.neuron_args import apply_reset, as_param, check_neuron_args, initial
from spikeseq.types import ParamLike, ResetMode


class ALIFState(NamedTuple):
    """ALIF state: membrane ``v`` and adaptation trace ``a``, each ``[B, ...]`` like one input step."""

    v: torch.Tensor
    a: torch.Tensor


def _alif_update(v, a, x, beta, rho, v_th, adapt, reset, detach_reset, surrogate):
    theta = v_th + adapt * a
    v_pre = beta * v + x
    z = sg.spike(v_pre - theta, surrogate)
    v = apply_reset(v_pre, z, theta, reset, detach_reset)
    return z, v, rho * a + z


def check_alif_args(beta, rho, v_th, adapt, reset) -> None:
    """The parameter checks of ``alif_step`` / ``alif_scan`` (shared with the fast kernels)."""
    check_neuron_args(beta, v_th, reset)
    check_unit_interval(rho, "rho")
    check_finite_param(adapt, "adapt")


def alif_step(
    x: torch.Tensor,
    state: ALIFState | None = None,
    *,
    beta: ParamLike,
    rho: ParamLike,
    v_th: ParamLike = 1.0,
    adapt: ParamLike = 1.8,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, ALIFState]:
    """One ALIF step on ``[B, ...]``. ``adapt = 1.8`` is the LSNN default of Bellec et al. (2018)."""
    check_floating(x, "x")
    check_alif_args(beta, rho, v_th, adapt, reset)
    v = initial(None if state is None else state.v, x.shape, x, "v")
    a = initial(None if state is None else state.a, x.shape, x, "a")
    p = [as_param(q, x) for q in (beta, rho, v_th, adapt)]
    z, v, a = _alif_update(v, a, x, *p, reset, detach_reset, surrogate)
    return z, ALIFState(v, a)


def alif_scan(
    x: torch.Tensor,
    state: ALIFState | None = None,
    *,
    beta: ParamLike,
    rho: ParamLike,
    v_th: ParamLike = 1.0,
    adapt: ParamLike = 1.8,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, ALIFState]:
    """ALIF over ``[T, B, ...]``."""
    check_sequence(x)
    check_alif_args(beta, rho, v_th, adapt, reset)
    v = initial(None if state is None else state.v, x.shape[1:], x, "v")
    a = initial(None if state is None else state.a, x.shape[1:], x, "a")
    p = [as_param(q, x) for q in (beta, rho, v_th, adapt)]
    zs = []
    for x_t in x.unbind(0):  # unbind: the backward adds T slices, not T full-size zero gradients
        z, v, a = _alif_update(v, a, x_t, *p, reset, detach_reset, surrogate)
        zs.append(z)
    check_finite_result(v, "the final ALIF membrane")
    return torch.stack(zs), ALIFState(v, a)
