"""Shared type aliases (torch / stdlib only)."""

from __future__ import annotations

from typing import Literal

import torch

Tensor = torch.Tensor
#: A per-population scalar or a per-neuron tensor broadcastable to the neuron shape.
ParamLike = float | torch.Tensor
ResetMode = Literal["subtract", "zero", "none"]
RESET_MODES: tuple[str, ...] = ("subtract", "zero", "none")
DecayMethod = Literal["exp", "euler"]
