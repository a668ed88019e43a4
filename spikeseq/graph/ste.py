"""The straight-through estimator of target mode: the exact (quantised) value forward, a proxy's gradient backward."""

from __future__ import annotations

import torch

__all__ = ["straight_through"]


class _Straight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, exact: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return exact.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, grad


def straight_through(exact: torch.Tensor, proxy: torch.Tensor | None) -> torch.Tensor:
    """``exact`` in the forward pass, the gradient of ``proxy`` (same shape) in the backward pass."""
    if proxy is None or not proxy.requires_grad:
        return exact
    return _Straight.apply(exact.detach(), proxy)
