"""The neuron equations shared by every implementation, written once, for floats, torch tensors and numpy arrays.

- :func:`decay_factor` / :func:`tau_of_decay`: a time constant ``tau`` (seconds) at step ``dt`` (seconds) as a
  per-step decay, and back::

      exp:    beta = exp(-dt / tau)        tau = -dt / ln(beta)
      euler:  beta = 1 - dt / tau          tau = dt / (1 - beta)

- :func:`reset_membrane`: the reset after a spike (``z`` = 0/1)::

      "subtract":  v = v_pre - z * v_th
      "zero":      v = v_pre * (1 - z) + z * v_reset
      "none":      v = v_pre

Users: :mod:`spikeseq.functional` (the reference, with argument checks: ``decay_from_tau``, ``tau_from_decay``), the
neuron modules, the graph IR and its interpreter (numpy), the profiler's re-runs. No checks here (hot paths call
these with known-good values); no torch import (the IR and the exporters stay torch-free).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spikeseq.errors import ParameterError

__all__ = ["METHODS", "RESETS", "decay_factor", "reset_membrane", "tau_of_decay"]

METHODS: tuple[str, ...] = ("exp", "euler")
RESETS: tuple[str, ...] = ("subtract", "zero", "none")


def _exp(x: Any) -> Any:
    if isinstance(x, np.ndarray | np.generic):
        return np.exp(x)
    return x.exp() if hasattr(x, "exp") else math.exp(x)


def _log(x: Any) -> Any:
    if isinstance(x, np.ndarray | np.generic):
        return np.log(x)
    return x.log() if hasattr(x, "log") else math.log(x)


def decay_factor(tau: Any, dt: float, method: str = "exp") -> Any:
    """Per-step decay of time constant ``tau`` at step ``dt``: ``exp(-dt/tau)`` (``"exp"``) or ``1 - dt/tau``
    (``"euler"``); autograd flows through tensors."""
    if method == "exp":
        return _exp(-dt / tau)
    if method == "euler":
        return 1 - dt / tau
    raise ParameterError(f"unknown discretisation {method!r}; expected one of {', '.join(METHODS)}")


def tau_of_decay(beta: Any, dt: float, method: str = "exp") -> Any:
    """Inverse of :func:`decay_factor`: ``-dt / ln(beta)`` (``"exp"``) or ``dt / (1 - beta)`` (``"euler"``)."""
    if method == "exp":
        return -dt / _log(beta)
    if method == "euler":
        return dt / (1 - beta)
    raise ParameterError(f"unknown discretisation {method!r}; expected one of {', '.join(METHODS)}")


def reset_membrane(v_pre: Any, z: Any, v_th: Any, reset: str, v_reset: Any = 0.0) -> Any:
    """The membrane after the reset rule (module docstring); ``z`` holds 0/1 values of ``v_pre``'s dtype."""
    if reset == "subtract":
        return v_pre - z * v_th
    if reset == "zero":
        kept = v_pre * (1 - z)
        return kept if isinstance(v_reset, int | float) and v_reset == 0 else kept + z * v_reset
    if reset == "none":
        return v_pre
    raise ParameterError(f"unknown reset mode {reset!r}; expected one of {', '.join(RESETS)}")
