"""The protocol every continual-learning plug-in follows, and the task data handed to it at a task's end.

The training path (:mod:`spikeseq.train.tasks.continual` through :func:`spikeseq.train.loop.fit`) calls, per task
``t``: ``plugin.begin_task(t)``; trains (the plug-in acts through hooks it attached: forward hooks read layer
inputs, gradient hooks change weight gradients; and, when it has one, ``plugin.before_step()`` once per optimizer
step, after the backward passes and before clipping: EWC's penalty gradient); ``plugin.end_task(data)``; and
stores ``plugin.state_dict()`` in every checkpoint (``load_state_dict`` on resume, mid-task included).
``detach()`` removes every hook.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from spikeseq.errors import ConfigError


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

    def begin_task(self, task: int) -> None:
        """Start task ``task`` (tasks run in order 0, 1, ...)."""

    def end_task(self, data: TaskData | None = None) -> None:
        """Finish the current task (``data``: its training data, for plug-ins that summarise it)."""

    def detach(self) -> None:
        """Remove every hook the plug-in attached."""

    def state_dict(self) -> dict[str, Any]:
        """The plug-in's state for a checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (resume)."""


def check_state_keys(st: Any, keys: tuple[str, ...], method: str) -> None:
    """:class:`ConfigError` unless ``st`` is a dict holding ``keys``: the ``state_dict()`` of the ``method`` plug-in
    (``"an HLOP"``, ``"a GPM"``, ``"an EWC"``), not that of another plug-in or of the model."""
    missing = [k for k in keys if k not in st] if isinstance(st, dict) else list(keys)
    if missing:
        got = sorted(st) if isinstance(st, dict) else type(st).__name__
        raise ConfigError(f"not {method} state: missing {missing} (got {got}); load the state_dict() of {method} "
                          "plug-in, not that of another plug-in or of the model")


def check_task_position(st: dict[str, Any], method: str) -> tuple[int, bool]:
    """``(task, in_task)`` of a plug-in state; :class:`ConfigError` unless the task is a whole number >= -1 (-1: none
    started) and ``in_task`` a bool (a corrupt or foreign state). ``method`` names the plug-in (``"HLOP"``)."""
    task, in_task = st["task"], st["in_task"]
    try:
        whole = not isinstance(task, bool) and operator.index(task) >= -1
    except TypeError:
        whole = False
    if not whole or not isinstance(in_task, bool):
        raise ConfigError(f"checkpoint {method} task = {task!r}, in_task = {in_task!r}: the task must be a whole "
                          "number >= -1 (-1: none started) and in_task true or false; a corrupt or foreign state")
    return int(task), in_task
