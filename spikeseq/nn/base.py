"""Base class of stateful spikeseq modules and the time-constant parameterisation they share."""

from __future__ import annotations

import math

import torch
from torch import nn

from spikeseq.checks import check_positive
from spikeseq.dynamics import decay_factor
from spikeseq.errors import ParameterError
from spikeseq.functional.discretize import decay_from_tau, tau_from_decay


class StatefulModule(nn.Module):
    """A module called as ``y, state = m(x, state=None)`` on ``[T, B, ...]`` and ``m.step(x, state)`` on ``[B, ...]``.

    Modules own parameters, never hidden state: the state is passed in and returned.
    """

    def step(self, x: torch.Tensor, state=None):
        """One time step: runs :meth:`forward` on a length-1 sequence."""
        y, state = self.forward(x.unsqueeze(0), state)
        return y[0], state


class TimeConstants(nn.Module):
    """Decay factors from physical time constants: ``beta = exp(-dt / tau)``.

    Each named time constant is stored either as ``tau_<name>`` in seconds (a buffer, or a parameter when
    ``learn="tau"``) or as a raw decay ``beta_<name>`` parameter clamped to [0, 1] (``learn="beta"``, as in
    snnTorch and L2MU). ``size`` gives per-neuron constants of shape ``[size]``; ``None`` one per population.
    """

    def __init__(self, dt: float) -> None:
        super().__init__()
        check_positive(dt, "dt")
        self.dt = float(dt)
        self._kinds: dict[str, str] = {}

    def add(self, name: str, *, tau: float | None, beta: float | None, learn: str, size: int | None) -> None:
        """Register time constant ``name`` from ``tau`` (seconds) or ``beta`` (decay per step), exactly one of them.

        ``learn`` is ``"none"`` (a buffer), ``"tau"`` (trainable ``tau_<name>``) or ``"beta"`` (trainable
        ``beta_<name>``); ``size`` makes it per neuron (``[size]``). Raises ``ParameterError`` for a bad combination.
        """
        if (tau is None) == (beta is None):
            raise ParameterError(
                f"give exactly one of tau_{name} (seconds) or a decay factor for {name!r}, got tau={tau}, beta={beta}"
            )
        if learn not in ("none", "tau", "beta"):
            raise ParameterError(f"learn must be 'none', 'tau' or 'beta', got {learn!r}")
        if tau is None:
            tau = float(tau_from_decay(float(beta), self.dt))
        check_positive(tau, f"tau_{name}")
        shape = () if size is None else (size,)
        if learn == "beta":
            b = float(decay_from_tau(float(tau), self.dt))
            self.register_parameter(f"beta_{name}", nn.Parameter(torch.full(shape, b)))
        else:
            t = torch.full(shape, float(tau))
            if learn == "tau":
                self.register_parameter(f"tau_{name}", nn.Parameter(t))
            else:
                self.register_buffer(f"tau_{name}", t)
        self._kinds[name] = learn

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp every trainable raw decay ``beta_<name>`` into [0, 1] in place (trainable ``tau_<name>`` to
        >= 1e-12 s). The forward pass clamps anyway, but a raw value outside the range gets no gradient through the
        clamp and stays there (a decay stuck at 1 makes an integrator); called after an optimizer step it is
        projected gradient descent."""
        for name, kind in self._kinds.items():
            if kind == "beta":
                getattr(self, f"beta_{name}").clamp_(0.0, 1.0)
            elif kind == "tau":
                getattr(self, f"tau_{name}").clamp_(min=1e-12)

    def decay(self, name: str) -> torch.Tensor:
        """Decay factor per step of ``name``: ``exp(-dt / tau)``, or the stored ``beta`` clamped to [0, 1]."""
        if self._kinds[name] == "beta":
            return getattr(self, f"beta_{name}").clamp(0, 1)
        tau = getattr(self, f"tau_{name}")
        return decay_factor(tau.clamp_min(1e-12), self.dt)

    def tau(self, name: str) -> torch.Tensor:
        """The time constant in seconds (derived from beta when beta is the stored parameter)."""
        if self._kinds[name] == "beta":
            b = getattr(self, f"beta_{name}").detach().clamp(1e-12, 1 - 1e-7)
            return tau_from_decay(b, self.dt)
        return getattr(self, f"tau_{name}").detach()


def threshold_parameter(v_th: float, learn: bool, size: int | None) -> torch.Tensor:
    """The firing threshold as a tensor of shape ``[size]`` (or ``[]``), a parameter when ``learn``.

    A neuron spikes iff ``v > v_th``; with ``v_th <= 0`` a neuron at rest (``v = 0``) would spike or sit on the
    threshold, so it is refused, as are NaN and Inf.
    """
    if isinstance(v_th, bool) or not isinstance(v_th, int | float) or not math.isfinite(v_th) or v_th <= 0:
        raise ParameterError(f"v_th must be a finite number > 0 (a neuron spikes when v > v_th, v starts at 0), "
                             f"got {v_th!r}")
    shape = () if size is None else (size,)
    t = torch.full(shape, float(v_th))
    return nn.Parameter(t) if learn else t
