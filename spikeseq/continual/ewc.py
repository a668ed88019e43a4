"""EWC: elastic weight consolidation (Kirkpatrick et al., PNAS 2017), a regularisation baseline for HLOP.

After task ``t`` the diagonal Fisher information ``F_t`` of every trainable parameter is estimated from squared
minibatch gradients of the task loss (the estimate Avalanche's ``EWCPlugin`` uses), and the parameters
``theta*_t`` are stored. Training later tasks adds ``lambda / 2 * sum_t sum_i F_t,i (theta_i - theta*_t,i)^2`` to
the loss; here its gradient ``lambda * sum_t F_t (theta - theta*_t)`` is added to each parameter's gradient by
:meth:`EWC.before_step`, which the training loop calls once per optimizer step (after the backward passes of an
accumulation window and the data-parallel gradient average, before clipping), so the penalty counts once per step
whatever the accumulation and process counts. ``mode="online"`` keeps one running Fisher ``F = gamma F +
F_t`` and the latest ``theta*`` (Schwarz et al., ICML 2018).

Memory: two tensors per parameter per task (``separate``) or two per parameter (``online``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError, ContinualError

from .plugin import TaskData, check_state_keys, check_task_position

EWC_MODES = ("separate", "online")
STATE_KEYS = ("task", "in_task", "anchors")  #: what :meth:`EWC.load_state_dict` needs


@dataclass
class EWCConfig:
    """Settings of :class:`EWC`."""

    lam: float = 100.0        #: penalty strength lambda
    mode: str = "separate"
    gamma: float = 1.0        #: decay of the online Fisher
    samples: int = 512        #: training samples of a task used for the Fisher estimate
    batch_size: int = 32

    def check(self) -> None:
        """Raise :class:`~spikeseq.errors.ConfigError` naming the first option of the wrong type or out of range."""
        if self.mode not in EWC_MODES:
            raise ConfigError(f"EWC mode must be one of {EWC_MODES}, got {self.mode!r}")
        if not _real(self.lam) or not (math.isfinite(self.lam) and self.lam >= 0):
            raise ConfigError(f"EWC lam must be a finite number >= 0 (the penalty strength), got {self.lam!r}")
        if not _real(self.gamma) or not 0 <= self.gamma <= 1:
            raise ConfigError(f"EWC gamma must be a number in [0, 1] (the decay of the online Fisher), got "
                              f"{self.gamma!r}")
        for name in ("samples", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"EWC {name} must be a whole number >= 1, got {v!r}")


def _real(v: Any) -> bool:
    """Whether ``v`` is a real number (int or float, not bool)."""
    return not isinstance(v, bool) and isinstance(v, int | float)


class EWC:
    """The EWC plug-in (see module docstring)."""

    name = "ewc"

    def __init__(self, model: nn.Module, config: EWCConfig | None = None) -> None:
        self.model = model
        self.config = cfg = config or EWCConfig()
        cfg.check()
        self.params = dict(model.named_parameters())
        self.anchors: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (fisher, theta*)
        self.task, self.in_task = -1, False

    def begin_task(self, task: int) -> None:
        """Start task ``task`` (0, 1, ...): from now on :meth:`before_step` adds the penalty gradient."""
        if task != self.task + 1 or self.in_task:
            raise ConfigError(f"EWC tasks must run in order 0, 1, ...; got begin_task({task}) after task {self.task}")
        self.task, self.in_task = task, True

    def before_step(self) -> None:
        """Add ``lambda * sum_t F_t (theta - theta*_t)`` to the gradient of every anchored parameter that has one
        (call it once per optimizer step, after the backward passes, before ``opt.step()``)."""
        if not (self.in_task and self.anchors):
            return
        with torch.no_grad():
            for name, p in self.params.items():
                if p.grad is None or not p.requires_grad:
                    continue
                extra = None
                for fisher, theta in self.anchors:
                    if name in fisher:
                        term = fisher[name] * (p - theta[name])
                        extra = term if extra is None else extra + term
                if extra is not None:
                    p.grad = p.grad + self.config.lam * extra

    def end_task(self, data: TaskData | None = None) -> None:
        """Estimate this task's Fisher diagonal from ``data`` and anchor the current parameters."""
        if data is None:
            raise ConfigError("EWC.end_task needs the task's data (TaskData) to estimate the Fisher information")
        cfg = self.config
        fisher = {n: torch.zeros_like(p) for n, p in self.params.items() if p.requires_grad}
        batches = 0
        was_training = self.model.training
        self.model.train()
        seen = 0
        for x, y in data.batches(cfg.batch_size):
            self.model.zero_grad(set_to_none=True)
            data.loss(x, y).backward()
            for n, f in fisher.items():
                g = self.params[n].grad
                if g is not None:
                    f += g.detach() ** 2
            batches += 1
            seen += x.shape[1]
            if seen >= cfg.samples:
                break
        self.model.zero_grad(set_to_none=True)
        self.model.train(was_training)
        if batches == 0:
            raise ContinualError(f"EWC.end_task: task {self.task}'s data gave no batches, so there is no Fisher "
                                 "information to estimate; pass the task's training data (TaskData.batches must "
                                 "yield at least one batch)")
        fisher = {n: f / batches for n, f in fisher.items()}
        theta = {n: self.params[n].detach().clone() for n in fisher}
        if cfg.mode == "online" and self.anchors:
            old, _ = self.anchors[0]
            fisher = {n: cfg.gamma * old.get(n, 0) + f for n, f in fisher.items()}
            self.anchors = [(fisher, theta)]
        else:
            self.anchors.append((fisher, theta))
        self.in_task = False

    def detach(self) -> None:
        """EWC attaches no hook (the penalty is :meth:`before_step`); here for the plug-in protocol."""

    def memory(self) -> dict[str, int]:
        """Stored floats (Fisher diagonals and anchors), the memory compared with HLOP / GPM."""
        return {"floats": sum(2 * f.numel() for fisher, _ in self.anchors for f in fisher.values())}

    def state_dict(self) -> dict[str, Any]:
        """Fisher diagonals and anchor parameters of the tasks so far (for checkpoints)."""
        return {"task": self.task, "in_task": self.in_task,
                "anchors": [({k: v.clone() for k, v in f.items()}, {k: v.clone() for k, v in t.items()})
                            for f, t in self.anchors]}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (resume); ConfigError, before anything changes, when the state is not an EWC
        state, its parameters do not fit this model (names, shapes) or its number of anchors is not what ``mode``
        keeps at its task (one per finished task ``separate``, at most one ``online``)."""
        check_state_keys(st, STATE_KEYS, "an EWC")
        task, in_task = check_task_position(st, "EWC")
        if not isinstance(st["anchors"], list | tuple):
            raise ConfigError(f"checkpoint EWC anchors must be a list of (fisher, theta) pairs, got "
                              f"{type(st['anchors']).__name__}")
        for anchor in st["anchors"]:
            self._check_anchor(anchor)
        self._check_anchor_count(len(st["anchors"]), task, in_task)
        self.anchors = [(dict(f), dict(t)) for f, t in st["anchors"]]
        self.task, self.in_task = task, in_task
        if self.in_task:
            self.in_task = False
            self.task -= 1
            self.begin_task(self.task + 1)

    def _check_anchor_count(self, n: int, task: int, in_task: bool) -> None:
        """:class:`ConfigError` naming both counts and ``mode`` unless a checkpoint's ``n`` anchors are what this
        configuration keeps at its task: one per finished task (``separate``), at most one (``online``). Another
        count is a checkpoint of the other mode (an online EWC given separate anchors penalised with all of them,
        then kept only the first at its next task's end) or a corrupt state."""
        finished = task if in_task else task + 1
        mode = self.config.mode
        want = finished if mode == "separate" else min(finished, 1)
        if n != want:
            state = f"inside task {task}" if in_task else f"after task {task}"
            raise ConfigError(f"checkpoint EWC holds {n} anchors (Fisher, theta), but {state} ({finished} finished "
                              f"tasks) EWC mode = {mode!r} keeps {want}: a checkpoint taken with another mode, or a "
                              "corrupt state; build the EWC with the checkpoint's mode (or start the stream over)")

    def _check_anchor(self, anchor: Any) -> None:
        """:class:`ConfigError` naming the parameter and both shapes unless ``anchor`` is a ``(fisher, theta)`` pair
        of this model's parameters."""
        if not (isinstance(anchor, tuple | list) and len(anchor) == 2 and all(isinstance(d, dict) for d in anchor)):
            raise ConfigError("checkpoint EWC anchors must be (fisher, theta) pairs of {parameter name: tensor}")
        fisher, theta = anchor
        if set(fisher) != set(theta):
            raise ConfigError(f"checkpoint EWC anchor: Fisher and theta name different parameters "
                              f"({sorted(set(fisher) ^ set(theta))})")
        for name, f in fisher.items():
            p = self.params.get(name)
            if p is None:
                names = list(self.params)
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                raise ConfigError(f"checkpoint EWC anchor names parameter {name!r}, which this model does not have "
                                  f"(its parameters: {shown})")
            for what, v in (("Fisher", f), ("theta", theta[name])):
                if not isinstance(v, torch.Tensor) or v.shape != p.shape:
                    shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                    raise ConfigError(f"checkpoint EWC {what} of parameter {name!r} has shape {shape}, the model's "
                                      f"parameter has {tuple(p.shape)}: a checkpoint of another model")
