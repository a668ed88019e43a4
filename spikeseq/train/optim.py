"""Optimiser, parameter groups and learning-rate schedules of the training loop, all from ``[train]``.

Parameter groups
    A model may name groups of its parameters with a method ``param_groups() -> dict[str, list[Parameter]]``
    (e.g. weights and delay positions, trained with different learning rates); every parameter it does not name is
    in the group ``"default"``. ``[train.groups.<name>]`` overrides ``lr``, ``weight_decay`` and ``scheduler``
    for one group; an override for a group the model does not name is an error that lists the groups.

Weight decay
    With ``weight_decay_on = "weights"`` (the default) decay applies only to weight matrices and kernels: biases,
    parameters of normalisation layers and neuron parameters (time constants, decays, thresholds: every parameter
    of one dimension or less, and any parameter whose name contains ``tau``, ``beta``, ``alpha``, ``decay`` or
    ``v_th``) are put in a copy of their group with ``weight_decay = 0``. ``"all"`` decays every parameter.

Schedules (the multiplier of a group's ``lr`` at optimizer step ``s``, ``E`` epochs of ``S`` steps)
    - ``none``: 1;
    - ``cosine``: ``(1 + cos(pi * e / E)) / 2`` with ``e = s // S`` the epoch (per-epoch cosine annealing to 0,
      Loshchilov & Hutter 2017, SGDR, without restarts);
    - ``step``: ``gamma ** (e // step_size)``;
    - ``onecycle``: Smith & Topin 2019 ("Super-convergence"), in the parametrisation of
      ``torch.optim.lr_scheduler.OneCycleLR`` with its defaults: cosine from ``lr / 25`` up to ``lr`` over the
      first ``pct_start * E * S - 1`` steps, then cosine down to ``lr / 25 / 1e4`` at the last step; Adam's beta1
      (SGD's momentum) moves the other way between 0.95 and 0.85.

The multiplier is a pure function of the step counter, so a resumed run sets exactly the values an uninterrupted
run had (no scheduler state to save).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError

#: name fragments of neuron parameters that are never decayed (time constants, decays, thresholds)
NO_DECAY_NAMES = ("tau", "beta", "alpha", "decay", "v_th", "threshold")
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
#: OneCycleLR's defaults (torch.optim.lr_scheduler.OneCycleLR: div_factor, final_div_factor, momentum range)
DIV_FACTOR, FINAL_DIV_FACTOR, MOMENTUM_RANGE = 25.0, 1e4, (0.85, 0.95)


def _decays(module: nn.Module, name: str, p: nn.Parameter) -> bool:
    if isinstance(module, _NORMS) or p.ndim <= 1:
        return False
    return not any(k in name.lower() for k in NO_DECAY_NAMES)


def named_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The model's own groups (``param_groups()``, if it has one) plus ``"default"`` for the rest."""
    own = getattr(model, "param_groups", None)
    groups: dict[str, list[nn.Parameter]] = {}
    if callable(own):
        groups = {str(k): list(v) for k, v in own().items()}
    named = {id(p) for ps in groups.values() for p in ps}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in named]
    if rest or not groups:
        groups = {"default": rest, **{k: v for k, v in groups.items() if k != "default"}}
    return groups


@dataclass
class GroupSpec:
    """One optimiser parameter group as configured: its name, schedule and the base values."""

    name: str
    scheduler: str
    lr: float
    weight_decay: float


def param_groups(model: nn.Module, t: Any) -> tuple[list[dict[str, Any]], list[GroupSpec]]:
    """Optimizer parameter groups (``torch.optim`` dicts) and their specs, from the model and ``[train]``."""
    groups = named_groups(model)
    unknown = sorted(set(t.groups) - set(groups))
    if unknown:
        raise ConfigError(f"train.groups.{unknown[0]}: the model has no parameter group {unknown[0]!r}; its groups: "
                          f"{', '.join(groups)}")
    owner = {id(p): (m, n) for mn, m in model.named_modules() for n, p in m.named_parameters(recurse=False)}
    out, specs = [], []
    for name, params in groups.items():
        over = t.groups.get(name, {})
        spec = GroupSpec(name, over.get("scheduler", t.scheduler), float(over.get("lr", t.lr)),
                         float(over.get("weight_decay", t.weight_decay)))
        params = [p for p in params if p.requires_grad]
        if t.weight_decay_on == "weights" and spec.weight_decay > 0:
            decay = [p for p in params if _decays(*owner.get(id(p), (nn.Module(), "")), p)]
            keep = {id(p) for p in decay}
            parts = [(decay, spec.weight_decay), ([p for p in params if id(p) not in keep], 0.0)]
        else:
            parts = [(params, spec.weight_decay)]
        for ps, wd in parts:
            if ps:
                out.append({"params": ps, "lr": spec.lr, "weight_decay": wd, "name": name})
                specs.append(spec)
    if not out:
        raise ConfigError("the model has no trainable parameters")
    return out, specs


def make_optimizer(groups: list[dict[str, Any]], t: Any) -> torch.optim.Optimizer:
    """``train.optimizer`` over ``groups`` (each with its own lr and weight decay)."""
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr)
    return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum)


def _cos(start: float, end: float, frac: float) -> float:
    """Cosine interpolation from ``start`` (frac 0) to ``end`` (frac 1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * frac) + 1.0)


class Schedule:
    """Sets every group's lr (and for onecycle the momentum) for a given optimizer step; see the module docstring."""

    def __init__(self, opt: torch.optim.Optimizer, specs: list[GroupSpec], t: Any, steps_per_epoch: int) -> None:
        self.opt, self.specs, self.t = opt, specs, t
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total = self.steps_per_epoch * t.epochs

    def factor(self, kind: str, step: int) -> tuple[float, float | None]:
        """(lr multiplier, beta1 / momentum or ``None``) at optimizer step ``step`` (0-based)."""
        epoch = step // self.steps_per_epoch
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * epoch / self.t.epochs)), None
        if kind == "step":
            return self.t.gamma ** (epoch // self.t.step_size), None
        if kind == "onecycle":
            lo, hi = MOMENTUM_RANGE
            initial = 1.0 / DIV_FACTOR
            up = float(self.t.pct_start * self.total) - 1.0
            end = float(self.total) - 1.0
            s = min(step, self.total - 1)
            if s <= up:
                frac = s / up if up > 0 else 1.0
                return _cos(initial, 1.0, frac), _cos(hi, lo, frac)
            frac = (s - up) / (end - up) if end > up else 1.0
            return _cos(1.0, initial / FINAL_DIV_FACTOR, frac), _cos(lo, hi, frac)
        return 1.0, None

    def apply(self, step: int) -> None:
        """Set the values of optimizer step ``step`` (call before ``opt.step()``)."""
        for group, spec in zip(self.opt.param_groups, self.specs):
            mult, mom = self.factor(spec.scheduler, step)
            group["lr"] = spec.lr * mult
            if mom is not None:
                if "betas" in group:
                    group["betas"] = (mom, group["betas"][1])
                elif "momentum" in group:
                    group["momentum"] = mom
