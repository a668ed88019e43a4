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

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError

from .plugin import TaskData

EWC_MODES = ("separate", "online")


@dataclass
class EWCConfig:
    """Settings of :class:`EWC`."""

    lam: float = 100.0        #: penalty strength lambda
    mode: str = "separate"
    gamma: float = 1.0        #: decay of the online Fisher
    samples: int = 512        #: training samples of a task used for the Fisher estimate
    batch_size: int = 32


class EWC:
    """The EWC plug-in (see module docstring)."""

    name = "ewc"

    def __init__(self, model: nn.Module, config: EWCConfig | None = None) -> None:
        self.model = model
        self.config = cfg = config or EWCConfig()
        if cfg.mode not in EWC_MODES:
            raise ConfigError(f"EWC mode must be one of {EWC_MODES}, got {cfg.mode!r}")
        if not cfg.lam >= 0:
            raise ConfigError(f"EWC lam must be >= 0, got {cfg.lam}")
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
        fisher = {n: f / max(batches, 1) for n, f in fisher.items()}
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
        """Restore :meth:`state_dict` (resume)."""
        self.anchors = [(dict(f), dict(t)) for f, t in st["anchors"]]
        self.task, self.in_task = int(st["task"]), bool(st["in_task"])
        if self.in_task:
            self.in_task = False
            self.task -= 1
            self.begin_task(self.task + 1)
