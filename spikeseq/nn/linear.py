"""``SpikeLinear``: ``torch.nn.Linear`` for spike inputs, event-driven where that pays (:func:`kernels.spike_linear`).

Same parameters, initialisation and state dict as ``nn.Linear`` (it is one, so tracing and export see a Linear);
only the product differs: spikes are compressed to their columns and the weight columns of every spike are summed,
forward and weight gradient (``mode="auto"`` picks this below a measured density, else the dense matmul with the
input saved as uint8). The input must hold only 0s and 1s (the output of spiking neurons).
"""

from __future__ import annotations

import torch
from torch import nn

from spikeseq.errors import ParameterError
from spikeseq.kernels.spike_linear import MODES, SpikeLinearMode, spike_linear


class SpikeLinear(nn.Linear):
    """``nn.Linear`` on 0/1 spike inputs ``z [..., in]``, event-driven where that is faster (see module docstring).

    ``mode`` is one of ``MODES`` (``"auto"`` picks by spike density); anything else raises ``ParameterError``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, mode: SpikeLinearMode = "auto",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        if mode not in MODES:
            raise ParameterError(f"unknown SpikeLinear mode {mode!r}; expected one of {MODES}")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.mode = mode

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z @ W.T + b`` for spikes ``z [..., in]`` (only 0s and 1s), computed by :func:`kernels.spike_linear`."""
        return spike_linear(z, self.weight, self.bias, mode=self.mode)

    def extra_repr(self) -> str:
        """``nn.Linear``'s ``repr`` plus the product ``mode``."""
        return f"{super().extra_repr()}, mode={self.mode}"
