"""Tasks: what a model is trained and evaluated for (loss, metrics, evaluation, what reports show).

``spikeseq.train`` dispatches on the task of a run, never on a model's name. The task of a recipe is its top-level
``task = "..."`` key, by default the model's first task (its family's ``model_tasks`` entry, else the family's
``tasks``: ``spikeseq.models.registry.tasks_of``); a task the model does not solve is a
:class:`~spikeseq.errors.ConfigError` listing the model's tasks.

A task module registers itself with :func:`register_task`; the in-tree task modules are listed once in
:data:`TASK_MODULES` and imported on first use. Adding a task: write ``spikeseq/train/tasks/<name>.py`` that calls
``register_task(Task(...))`` and add it to :data:`TASK_MODULES` (its name must be one of
``spikeseq.models.registry.TASKS``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from spikeseq.errors import ConfigError, PluginError
from spikeseq.models.registry import TASKS, family_of, tasks_of

#: In-tree task modules (each calls :func:`register_task` on import).
TASK_MODULES: tuple[str, ...] = ("spikeseq.train.tasks.classification", "spikeseq.train.tasks.language_modelling",
                                 "spikeseq.train.tasks.continual")


@dataclass(frozen=True)
class BatchResult:
    """One training batch: ``loss_sum`` (differentiable, summed over the batch), ``metric_sum`` (the task's
    training metric summed over the batch, e.g. correct predictions) and ``count`` (samples, or tokens)."""

    loss_sum: torch.Tensor
    metric_sum: float
    count: int


@dataclass(frozen=True)
class Task:
    """A task: how a batch's loss is computed and how a split is evaluated.

    - ``batch(output, y, cfg) -> BatchResult``: ``output`` is what the model returned for a time-first batch
      (``y, state`` or ``y``), ``y`` the batch's targets, ``cfg`` the run's :class:`~spikeseq.train.config.RunConfig`.
    - ``evaluate(model, split, cfg, device, n_classes, desc) -> dict``: at least ``"n"``, ``"loss"`` and the
      ``metric`` key (``None`` values for an empty split).
    - ``metric``: the key of ``evaluate``'s result that picks the best checkpoint (higher is better);
      ``train_metric``: the name the training-batch metric is reported under.
    - ``report``: the keys of ``evaluate``'s result that reports show.
    - ``record``: pairs ``(key of evaluate's result, metric name)`` that a result artifact
      (:func:`spikeseq.train.results.record`) adds to its ``metrics`` from the test evaluation, beside
      ``test_acc`` and ``test_n`` (e.g. ``("bpc", "test_bpc")``).
    """

    name: str
    batch: Callable[..., BatchResult]
    evaluate: Callable[..., dict[str, Any]]
    metric: str = "acc"
    train_metric: str = "acc"
    report: tuple[str, ...] = ("acc", "loss")
    record: tuple[tuple[str, str], ...] = ()
    description: str = ""


_TASKS: dict[str, Task] = {}
_loaded = False


def register_task(task: Task) -> Task:
    """Register ``task`` under ``task.name`` (one of ``spikeseq.models.registry.TASKS``; once)."""
    if not isinstance(task, Task):
        raise PluginError(f"register_task expects a spikeseq.train.tasks.Task, got {type(task).__name__}")
    if task.name not in TASKS:
        raise PluginError(f"task {task.name!r} is not one of the known tasks {', '.join(TASKS)}")
    if task.name in _TASKS:
        raise PluginError(f"task {task.name!r} is already registered; registered tasks: {', '.join(sorted(_TASKS))}")
    _TASKS[task.name] = task
    return task


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for mod in TASK_MODULES:
        importlib.import_module(mod)
    _loaded = True


def tasks() -> dict[str, Task]:
    """The registered tasks by name."""
    _load()
    return dict(sorted(_TASKS.items()))


def get_task(name: str) -> Task:
    """The task called ``name``; :class:`~spikeseq.errors.ConfigError` listing the registered tasks otherwise."""
    _load()
    if name not in _TASKS:
        raise ConfigError(f"unknown task {name!r}; registered tasks: {', '.join(sorted(_TASKS)) or '(none)'}")
    return _TASKS[name]


def task_name_for(model: str, requested: str | None) -> str:
    """The task of a recipe for model ``model``: ``requested`` (a recipe's ``task``) or the model's first task
    (:func:`spikeseq.models.registry.tasks_of`); :class:`~spikeseq.errors.ConfigError` when the model does not solve
    ``requested``."""
    fam = family_of(model)
    solved = tasks_of(model)
    if requested is None:
        return solved[0]
    if requested not in solved:
        raise ConfigError(f"task {requested!r} is not solved by model {model!r} (family {fam.name!r}); the model's "
                          f"tasks: {', '.join(solved)}")
    return requested


def task_for(cfg: Any) -> Task:
    """The :class:`Task` of a run config (its ``task`` key, or its model's first task)."""
    return get_task(task_name_for(cfg.model.name, cfg.task))


__all__ = ["TASK_MODULES", "BatchResult", "Task", "get_task", "register_task", "task_for", "task_name_for", "tasks"]
