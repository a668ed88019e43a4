"""``WeightInput``: where a module that applies a weight functionally (not through an ``nn.Linear``) shows hooks the
input that weight multiplies.

A weight used as ``W [out, n] @ x [n]`` inside a fused kernel (e.g. the EGRU's ``weight_ih_l0`` and
``weight_hh_l0``) has no submodule whose forward hooks see ``x``. The module that owns the weight passes ``x``
through a ``WeightInput`` child named after the weight; anything that needs a weight's presynaptic input (the
continual-learning plug-ins of :mod:`spikeseq.continual`) registers a forward pre-hook on that child. A
``WeightInput`` holds no parameter and no state: the state dict and the computation are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class WeightInput(nn.Module):
    """Identity ``x -> x`` standing for the input ``x [..., n]`` of its parent's weight ``weight_name``."""

    def __init__(self, weight_name: str, n: int) -> None:
        super().__init__()
        self.weight_name, self.n = weight_name, int(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` itself (the hooks are the point)."""
        return x

    @property
    def hooked(self) -> bool:
        """Whether a forward hook would read the input: a parent skips building an input only hooks need (e.g. the
        EGRU's shifted ``y[t-1]`` sequence) when none is registered."""
        return bool(self._forward_pre_hooks) or bool(self._forward_hooks)

    def extra_repr(self) -> str:
        """The weight and its input width, for ``repr``."""
        return f"{self.weight_name}, n={self.n}"


def weight_inputs(model: nn.Module) -> dict[str, WeightInput]:
    """Every :class:`WeightInput` of ``model`` by the dotted name of the parameter it stands for
    (``"<parent>.<weight_name>"``; the parent is the module holding the ``WeightInput``'s container)."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, WeightInput):
            parts = name.split(".")
            parent = ".".join(parts[:-2])  # <parent>.<container>.<key>
            out[f"{parent}.{m.weight_name}" if parent else m.weight_name] = m
    return out
