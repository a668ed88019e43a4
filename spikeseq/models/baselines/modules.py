"""Non-spiking baselines for the HAR recipes: a GRU and a plain (ReLU) LMU classifier.

Same interface as the spiking HAR models: ``y, state = model(x [T, B, C])`` with ``y [T, B, classes]``, where
``y[t]`` is the linear readout of the hidden state after ``x[0..t]`` (``y[-1]`` classifies the window).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from spikeseq.checks import check_window
from spikeseq.errors import ParameterError
from spikeseq.nn import LMU, StatefulModule


def _check_sizes(**sizes: int) -> None:
    for name, v in sizes.items():
        if not isinstance(v, int) or v < 1:
            raise ParameterError(f"{name} must be an integer >= 1, got {v!r}")


class GRUState(NamedTuple):
    """State of :class:`GRUClassifier`: the GRU hidden state ``h [layers, B, hidden]``."""

    h: torch.Tensor  #: ``[layers, B, hidden]``


class GRUClassifier(StatefulModule):
    """``torch.nn.GRU`` over time plus a linear readout at every step."""

    def __init__(self, input_size: int, n_classes: int, *, hidden_size: int = 128, layers: int = 1) -> None:
        super().__init__()
        _check_sizes(input_size=input_size, n_classes=n_classes, hidden_size=hidden_size, layers=layers)
        self.input_size = input_size
        self.gru = nn.GRU(input_size, hidden_size, num_layers=layers)
        self.out = nn.Linear(hidden_size, n_classes)

    def forward(self, x: torch.Tensor, state: GRUState | None = None):
        """``y [T, B, classes], state = model(x [T, B, input_size], state)``; ``y[t]`` reads out step ``t``."""
        check_window(x, self.input_size, "GRUClassifier")
        h, hn = self.gru(x, None if state is None else state.h)
        return self.out(h), GRUState(hn)


class LMUClassifier(StatefulModule):
    """Non-spiking parallel LMU cell (:class:`spikeseq.nn.LMU`, ReLU) plus a linear readout at every step."""

    def __init__(self, input_size: int, n_classes: int, *, hidden_size: int = 128, order: int = 32,
                 theta: float = 128.0, n_u: int = 4) -> None:
        super().__init__()
        _check_sizes(input_size=input_size, n_classes=n_classes)
        self.input_size = input_size
        self.lmu = LMU(input_size, hidden_size, order, theta, n_u=n_u, spiking=False)
        self.out = nn.Linear(hidden_size, n_classes)

    def forward(self, x: torch.Tensor, state=None):
        """``y [T, B, classes], state = model(x [T, B, input_size], state)``; ``y[t]`` reads out step ``t``."""
        check_window(x, self.input_size, "LMUClassifier")
        h, s = self.lmu(x, state)
        return self.out(h), s


def build_gru_baseline(input_size: int = 6, n_classes: int = 6, **cfg) -> GRUClassifier:
    """Registry builder of :class:`GRUClassifier` (``cfg``: ``hidden_size``, ``layers``)."""
    return GRUClassifier(input_size, n_classes, **cfg)


def build_lmu_baseline(input_size: int = 6, n_classes: int = 6, **cfg) -> LMUClassifier:
    """Registry builder of :class:`LMUClassifier` (``cfg``: its keyword arguments)."""
    return LMUClassifier(input_size, n_classes, **cfg)
