"""The protocol every continual-learning plug-in follows, and the task data handed to it at a task's end.

The training path calls, per task ``t``: ``plugin.begin_task(t)``; trains (the plug-in acts only through hooks it
attached: forward hooks read layer inputs, gradient hooks change weight gradients); ``plugin.end_task(data)``;
and stores ``plugin.state_dict()`` in checkpoints (``load_state_dict`` on resume). ``detach()`` removes every
hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass
class TaskData:
    """A finished task's training data, for plug-ins that summarise it (EWC's Fisher, GPM's bases).

    ``batches(size)`` yields time-first inputs ``[T, B, ...]`` and global labels ``[B]``; ``loss(x, y)`` runs the
    model and returns the task's mean loss (outputs of other tasks masked out).
    """

    task: int
    batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ContinualPlugin(Protocol):
    """What the training path needs from a plug-in (HLOP, GPM, EWC)."""

    name: str

    def begin_task(self, task: int) -> None: ...

    def end_task(self, data: TaskData | None = None) -> None: ...

    def detach(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
