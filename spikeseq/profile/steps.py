"""Per-step count tensors: every counter returns ``[T]`` float64 tensors (one entry per time step)."""

from __future__ import annotations

import torch

#: dtype of every count (exact integers up to 2**53)
F64 = torch.float64


def full_steps(t: int, value: float) -> torch.Tensor:
    """``[t]`` float64 tensor holding ``value`` at every step (a per-step count that does not vary)."""
    return torch.full((t,), float(value), dtype=F64)


__all__ = ["F64", "full_steps"]
