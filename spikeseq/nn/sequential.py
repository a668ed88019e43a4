"""``Sequential`` that threads the states of its stateful members.

Stateful members (:class:`~spikeseq.nn.base.StatefulModule`) are called as ``y, s = m(x, s)``; any other module
(``nn.Linear``, ``nn.Conv2d``, ``nn.Dropout``, ...) is applied to every time step at once by folding time into
the batch: ``[T, B, ...] -> [T*B, ...] -> m -> [T, B, ...]``. The state is a tuple with one entry per member
(``None`` for stateless ones).
"""

from __future__ import annotations

import torch
from torch import nn

from spikeseq.checks import check_sequence
from spikeseq.errors import ShapeError
from spikeseq.nn.base import StatefulModule


def time_distributed(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a per-sample module to ``[T, B, ...]`` by folding time into batch."""
    t, b = x.shape[:2]
    y = module(x.reshape(t * b, *x.shape[2:]))
    return y.reshape(t, b, *y.shape[1:])


class Sequential(StatefulModule):
    """Chain of modules on ``[T, B, ...]`` whose state is a tuple with one entry per member (see module docstring)."""

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(modules)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> nn.Module:
        return self.layers[i]

    def forward(self, x: torch.Tensor, state: tuple | None = None):
        """``y, state = seq(x [T, B, ...], state)``; ``ShapeError`` when ``state`` has the wrong length."""
        check_sequence(x)
        if state is None:
            state = (None,) * len(self.layers)
        elif len(state) != len(self.layers):
            raise ShapeError(
                f"Sequential has {len(self.layers)} members but the state has {len(state)} entries; pass "
                "state=None or the state returned by this Sequential"
            )
        new_state = []
        for m, s in zip(self.layers, state):
            if isinstance(m, StatefulModule):
                x, s = m(x, s)
            else:
                x = time_distributed(m, x)
            new_state.append(s)
        return x, tuple(new_state)
