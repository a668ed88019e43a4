"""The one place where physical time constants become per-step decay factors.

Modules store time constants ``tau`` in seconds and take the step ``dt`` in seconds. Two discretisations:

    exp:    beta = exp(-dt / tau)        (exact for a step-constant input; the default)
    euler:  beta = 1 - dt / tau          (forward Euler; snnTorch's NIR export/import and Norse's box cells)

and their inverses, with argument checks; the formulas themselves are :mod:`spikeseq.dynamics` (shared with the
torch-free IR). Exporters read ``tau`` and ``dt`` directly and use the same functions.
"""

from __future__ import annotations

import numpy as np
import torch

from spikeseq.checks import check_positive
from spikeseq.dynamics import decay_factor, tau_of_decay
from spikeseq.errors import ParameterError
from spikeseq.types import DecayMethod, ParamLike


def decay_from_tau(tau: ParamLike | np.ndarray, dt: float, method: DecayMethod = "exp"):
    """beta = exp(-dt/tau) (``method="exp"``) or 1 - dt/tau (``method="euler"``), after checking that ``tau`` and
    ``dt`` are positive (and ``tau >= dt`` for Euler). Floats, tensors and numpy arrays."""
    t = torch.from_numpy(np.array(tau, dtype=np.float64)) if isinstance(tau, np.ndarray) else tau
    check_positive(t, "tau")
    check_positive(dt, "dt")
    if method == "euler" and (bool((t < dt).any()) if isinstance(t, torch.Tensor) else t < dt):
        raise ParameterError(
            f"forward Euler needs tau >= dt (got tau={tau}, dt={dt}); use method='exp' or a smaller dt"
        )
    return decay_factor(tau, dt, method)


def tau_from_decay(beta: ParamLike | np.ndarray, dt: float, method: DecayMethod = "exp"):
    """Inverse of :func:`decay_from_tau`: tau = -dt / ln(beta) or dt / (1 - beta) (floats, tensors, numpy arrays)."""
    if isinstance(beta, np.ndarray):
        return tau_from_decay(torch.from_numpy(np.array(beta, dtype=np.float64)), dt, method).numpy()
    check_positive(dt, "dt")
    b = beta if isinstance(beta, torch.Tensor) else torch.tensor(float(beta), dtype=torch.float64)
    if bool(((b <= 0) | (b >= 1)).any()):
        raise ParameterError(
            f"a decay factor must lie in (0, 1) to correspond to a finite positive tau, got {beta}"
        )
    tau = tau_of_decay(b, dt, method)
    return tau if isinstance(beta, torch.Tensor) else float(tau)
