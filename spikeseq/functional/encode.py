"""Encoders: turn real values into time-first spike trains ``[T, B, ...]``.

rate (Poisson / Bernoulli):   z[t] ~ Bernoulli(clamp(x, 0, 1) * gain), independently per step
latency (time to first spike): one spike at t* = round((1 - x) * (T - 1))            method="linear"
                               t* = round(tau * ln(x / (x - threshold))), clipped    method="log" (RC charging,
                               snnTorch ``spikegen.latency``); no spike where x <= threshold
delta (threshold crossing, "step-forward" coding of Petro et al. 2020, IEEE TNNLS):
    r[0] = s[0];   up[t] = s[t] > r[t-1] + theta;   down[t] = s[t] < r[t-1] - theta
    r[t] = r[t-1] + theta * (up[t] - down[t])
    output channels: [up, down] (and the raw level s when ``with_level``)

The delta code drops the constant (DC) component, which for accelerometers carries gravity, i.e. posture;
``with_level=True`` keeps a level path (specs/har-reference-points.md measured 53% on HAPT without it).
"""

from __future__ import annotations

import torch

from spikeseq.checks import check_floating, check_positive, check_sequence
from spikeseq.errors import ParameterError, ShapeError


def rate_encode(x: torch.Tensor, steps: int, *, gain: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli spikes with probability ``clamp(gain * x, 0, 1)``; ``[B, ...] -> [steps, B, ...]``."""
    check_floating(x, "x")
    _check_steps(steps)
    p = (x * gain).clamp(0, 1).expand(steps, *x.shape)
    return torch.bernoulli(p, generator=generator)


def latency_encode(x: torch.Tensor, steps: int, *, method: str = "linear", tau: float = 5.0,
                   threshold: float = 0.01) -> torch.Tensor:
    """One spike per element, earlier for larger ``x`` in [0, 1]; ``[B, ...] -> [steps, B, ...]``."""
    check_floating(x, "x")
    _check_steps(steps)
    xc = x.clamp(0, 1)
    if method == "linear":
        t_spike = torch.round((1 - xc) * (steps - 1))
        fires = xc > threshold
    elif method == "log":
        check_positive(tau, "tau")
        safe = torch.where(xc > threshold, xc, torch.ones_like(xc))
        t_spike = torch.round(tau * torch.log(safe / (safe - threshold))).clamp(max=steps - 1)
        fires = xc > threshold
    else:
        raise ParameterError(f"unknown latency method {method!r}; expected 'linear' or 'log'")
    t = torch.arange(steps, device=x.device, dtype=x.dtype).view(steps, *([1] * x.dim()))
    return ((t == t_spike.unsqueeze(0)) & fires.unsqueeze(0)).to(x.dtype)


def delta_encode(s: torch.Tensor, theta: float | torch.Tensor, *, with_level: bool = False) -> torch.Tensor:
    """Threshold-crossing code of a real-valued stream ``s`` ``[T, B, C]`` -> ``[T, B, 2C]`` (``3C`` with level).

    Channel layout: ``[up_0..up_{C-1}, down_0..down_{C-1}(, s_0..s_{C-1})]``.
    """
    check_sequence(s, "s", min_rank=3)
    if isinstance(theta, torch.Tensor):
        if theta.numel() not in (1, s.shape[-1]):
            raise ShapeError(f"theta must be a scalar or have {s.shape[-1]} channels, got {tuple(theta.shape)}")
        check_positive(theta, "theta")
        th = theta.to(s)
    else:
        check_positive(theta, "theta")
        th = torch.tensor(float(theta), dtype=s.dtype, device=s.device)
    if not bool(torch.isfinite(s).all()):
        raise ParameterError("the sensor stream contains NaN or Inf: clean or interpolate the samples first")
    r = s[0].clone()
    ups, downs = [], []
    for t in range(s.shape[0]):
        up = (s[t] > r + th).to(s.dtype)
        down = (s[t] < r - th).to(s.dtype)
        r = r + th * (up - down)
        ups.append(up)
        downs.append(down)
    parts = [torch.stack(ups), torch.stack(downs)]
    if with_level:
        parts.append(s)
    return torch.cat(parts, dim=-1)


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ParameterError(f"steps must be a positive integer, got {steps!r}")


__all__ = ["delta_encode", "latency_encode", "rate_encode"]
