"""The one place where physical time constants become per-step decay factors.

Modules store time constants ``tau`` in seconds and take the step ``dt`` in seconds. Two discretisations:

    exp:    beta = exp(-dt / tau)        (exact for a step-constant input; the default)
    euler:  beta = 1 - dt / tau          (forward Euler; snnTorch's NIR export/import and Norse's box cells)

and their inverses. Exporters read ``tau`` and ``dt`` directly and use the same functions.
"""

from __future__ import annotations

import math

import torch

from spikeseq.checks import check_positive
from spikeseq.errors import ParameterError
from spikeseq.types import DecayMethod, ParamLike


def decay_from_tau(tau: ParamLike, dt: float, method: DecayMethod = "exp") -> ParamLike:
    """beta = exp(-dt/tau) (``method="exp"``) or 1 - dt/tau (``method="euler"``)."""
    check_positive(tau, "tau")
    check_positive(dt, "dt")
    if method == "exp":
        return torch.exp(-dt / tau) if isinstance(tau, torch.Tensor) else math.exp(-dt / tau)
    if method == "euler":
        if (bool((tau < dt).any()) if isinstance(tau, torch.Tensor) else tau < dt):
            raise ParameterError(
                f"forward Euler needs tau >= dt (got tau={tau}, dt={dt}); use method='exp' or a smaller dt"
            )
        return 1 - dt / tau
    raise ParameterError(f"unknown discretisation {method!r}; expected 'exp' or 'euler'")


def tau_from_decay(beta: ParamLike, dt: float, method: DecayMethod = "exp") -> ParamLike:
    """Inverse of :func:`decay_from_tau`: tau = -dt / ln(beta) or dt / (1 - beta)."""
    check_positive(dt, "dt")
    b = beta if isinstance(beta, torch.Tensor) else torch.tensor(float(beta), dtype=torch.float64)
    if bool(((b <= 0) | (b >= 1)).any()):
        raise ParameterError(
            f"a decay factor must lie in (0, 1) to correspond to a finite positive tau, got {beta}"
        )
    tau = -dt / torch.log(b) if method == "exp" else dt / (1 - b)
    if method not in ("exp", "euler"):
        raise ParameterError(f"unknown discretisation {method!r}; expected 'exp' or 'euler'")
    return tau if isinstance(beta, torch.Tensor) else float(tau)
