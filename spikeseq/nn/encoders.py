"""Encoder modules wrapping :mod:`spikeseq.functional.encode` (see there for the equations)."""

from __future__ import annotations

import torch
from torch import nn

from spikeseq.functional.encode import delta_encode, latency_encode, rate_encode


class RateEncoder(nn.Module):
    """``[B, ...]`` intensities in [0, 1] -> Bernoulli spikes ``[steps, B, ...]``."""

    def __init__(self, steps: int, gain: float = 1.0) -> None:
        super().__init__()
        self.steps, self.gain = steps, gain

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode ``x [B, ...]`` as ``[steps, B, ...]`` spikes (``generator`` seeds the Bernoulli draws)."""
        return rate_encode(x, self.steps, gain=self.gain, generator=generator)


class LatencyEncoder(nn.Module):
    """``[B, ...]`` intensities in [0, 1] -> one spike per element ``[steps, B, ...]``, earlier for larger values."""

    def __init__(self, steps: int, method: str = "linear", tau: float = 5.0, threshold: float = 0.01) -> None:
        super().__init__()
        self.steps, self.method, self.tau, self.threshold = steps, method, tau, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x [B, ...]`` as ``[steps, B, ...]`` with at most one spike per element."""
        return latency_encode(x, self.steps, method=self.method, tau=self.tau, threshold=self.threshold)


class DeltaEncoder(nn.Module):
    """Threshold-crossing (up/down) spikes of a raw sensor stream ``[T, B, C]`` -> ``[T, B, 2C]`` (``3C`` with level).

    ``theta`` is per channel when given as a sequence; it is a buffer (not trained).
    """

    def __init__(self, theta: float | list[float] | torch.Tensor, with_level: bool = False) -> None:
        super().__init__()
        self.register_buffer("theta", torch.as_tensor(theta, dtype=torch.float32))
        self.with_level = with_level

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """Encode the stream ``s [T, B, C]`` as up/down (and level) spikes ``[T, B, 2C]`` (``[T, B, 3C]``)."""
        return delta_encode(s, self.theta, with_level=self.with_level)
