"""HLOP: Hebbian learning based orthogonal projection (Xiao, Meng, Zhang, He, Lin; ICLR 2024; arXiv 2402.11984).

A plug-in, not a training loop: it attaches hooks to a model (``specs/models.md`` section 6)::

    hlop = HLOP(model, HLOPConfig(layers=["1", "3"], k_init=20, k_inc=10))
    for task in range(n_tasks):
        hlop.begin_task(task)        # adds k new lateral neurons per layer (orthonormal, orthogonal to the old)
        ...train on the task...      # every training forward: k-iteration Oja updates of the new neurons
                                     # every backward: dW uses x - Q_old^T Q_old x (old tasks' subspace)
        hlop.end_task()              # merges the new neurons into the old subspace; freezes 1-D params (biases)
    hlop.detach()                    # plain model again (evaluation never runs a hook anyway)

Per protected layer (:mod:`spikeseq.continual.layers`) the lateral circuit holds ``H [k, n]`` and the momentum
of its updates; the equations are :mod:`spikeseq.functional.plasticity`. Choices, with their sources:

* ``lr`` 0.01 hidden layers / 0.001 input layer, momentum 0.9, update clamp 10, 5 iterations per batch
  (reference code ``pkuxmq/HLOP-SNN`` ``modules/hlop_module.py``, ``spiking_train_pmnist.py``);
* presynaptic input ``"rate"`` with ``trace_decay`` (the DSR weighted firing rate the paper's Hebbian input is)
  or ``"step"`` (every time step, for BPTT where the weight gradient sums ``delta_t x_t^T`` over steps);
* ``spiking = (S, T_l)`` quantises ``y`` to spike counts (HLOP README: S = 20, T_l = 40);
* ``projector = "orthonormal"`` (default) projects with the exact orthogonal projector of ``span(H_old)`` (an SVD
  once per task), so the update is orthogonal to the old subspace to rounding error even before the Hebbian rows
  are exactly orthonormal; ``"hebbian"`` uses ``H_old^T H_old`` as the reference code does;
* ``normalize = True`` divides each Hebbian update by the residual input's mean power (spikeseq's addition, not the
  paper's): the rule then converges at the same rate whatever that power, which shrinks task after task;
* ``measure_subspace`` (default on): at the end of every task one forward pass measures, per layer, how much of
  the task's residual input energy the new neurons capture against the best subspace of their dimension
  (:meth:`HLOP.diagnostics`; the paper's fixed point captures all of it).

Data-parallel: each Hebbian delta is averaged over ranks (``torch.distributed`` all-reduce) so every rank keeps
the same ``H``; the projection is linear, so projecting the averaged gradient equals averaging projected ones.
Checkpoints: :meth:`HLOP.state_dict` / :meth:`HLOP.load_state_dict` (resume continues bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError, ContinualError, NonFiniteError, ParameterError
from spikeseq.functional import plasticity as fp

from .capture import MODES, GradientProjector, InputTap, presynaptic
from .layers import Target, check_names, check_per_layer, keep_prefixes, resolve
from .plugin import TaskData, check_state_keys, check_task_position

PROJECTORS = ("orthonormal", "hebbian")
STATE_KEYS = ("task", "in_task", "generator", "spaces")  #: what :meth:`HLOP.load_state_dict` needs
#: Hebbian updates between two checks that every subspace is finite (:meth:`HLOP.check_finite`).
FINITE_CHECK_EVERY = 64


@dataclass
class HLOPConfig:
    """Settings of :class:`HLOP`; per-layer values are an int/float for all layers or a ``{layer: value}`` map."""

    layers: list[str] | None = None          #: dotted module names; ``None``: every weighted layer
    k_init: int | dict[str, int] = 20        #: lateral neurons added for the first task
    k_inc: int | dict[str, int] = 10         #: lateral neurons added for every later task
    lr: float | dict[str, float] = 0.01      #: Hebbian learning rate eta
    momentum: float = fp.MOMENTUM
    clamp: float = fp.DELTA_CLAMP
    iterations: int = fp.ITERATIONS
    #: the normalised step ``dH / mean |r|^2`` (:func:`spikeseq.functional.plasticity.oja_subspace_step`): the same
    #: convergence rate in every layer and task, whatever the power of the residual input; False: the paper's rule
    normalize: bool = False
    spiking: tuple[float, float] | None = None  #: (S, T_l) of the spiking lateral circuit
    input: str = "rate"                      #: "rate" (weighted firing rate) or "step"
    trace_decay: float = 1.0                 #: lam of the weighted rate (1: plain rate)
    projector: str = "orthonormal"
    max_samples: int | None = 4096           #: rows per batch kept for the Hebbian update (conv patches)
    freeze_1d: bool = True                   #: freeze 1-D parameters after the first task (the paper)
    #: Hebbian-only passes over the task's training data at its end (forward only, no weight change): more
    #: iterations of the rule where a task has few minibatches (small data sets); 0 = the paper (online only)
    hebbian_passes: int = 0
    #: at the end of every task, one forward-only pass over its data measures each layer's new subspace against the
    #: best subspace of the same dimension for the task's residual inputs (:meth:`HLOP.diagnostics`)
    measure_subspace: bool = True
    hebbian_batch: int = 64
    keep_trainable: list[str] = field(default_factory=list)  #: module prefixes never frozen (task heads)
    seed: int = 0

    def per_layer(self, key: str, layer: str) -> Any:
        """The value of option ``key`` for layer ``layer`` (a per-layer dict or one value for all layers)."""
        v = getattr(self, key)
        if isinstance(v, dict):
            if layer not in v:
                raise ConfigError(f"HLOP {key} has no value for layer {layer!r} (given for {sorted(v)})")
            return v[layer]
        return v

    def check(self) -> None:
        """Raise :class:`~spikeseq.errors.ConfigError` naming the first option out of range."""
        if self.input not in MODES:
            raise ConfigError(f"HLOP input must be one of {MODES}, got {self.input!r}")
        if self.projector not in PROJECTORS:
            raise ConfigError(f"HLOP projector must be one of {PROJECTORS}, got {self.projector!r}")
        if not _whole(self.iterations, 1):
            raise ConfigError(f"HLOP iterations must be a whole number >= 1 of Oja steps per batch, got "
                              f"{self.iterations!r}")
        if not _number(self.momentum) or not 0 <= self.momentum < 1:
            raise ConfigError(f"HLOP momentum must be a number in [0, 1), got {self.momentum!r}")
        if not _number(self.clamp) or not (math.isfinite(self.clamp) and self.clamp > 0):
            raise ConfigError(f"HLOP clamp must be a finite number > 0 (the bound of each Hebbian update; the "
                              f"paper's is {fp.DELTA_CLAMP}), got {self.clamp!r}")
        if not _number(self.trace_decay) or not 0 < self.trace_decay <= 1:
            raise ConfigError(f"HLOP trace_decay must lie in (0, 1], got {self.trace_decay}")
        for name in ("normalize", "measure_subspace", "freeze_1d"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"HLOP {name} must be true or false, got {getattr(self, name)!r}")
        lrs = self.lr.items() if isinstance(self.lr, dict) else [("every layer", self.lr)]
        for layer, lr in lrs:
            if isinstance(lr, bool) or not isinstance(lr, int | float) or not (math.isfinite(lr) and lr > 0):
                raise ConfigError(f"HLOP lr must be a finite number > 0 (the Hebbian rate), got {lr!r} for {layer}")
        for name in ("k_init", "k_inc"):
            v = getattr(self, name)
            for layer, k in (v.items() if isinstance(v, dict) else [("every layer", v)]):
                if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                    raise ConfigError(f"HLOP {name} must be a whole number >= 0 of subspace neurons, got {k!r} for "
                                      f"{layer}")
        for name, low in (("hebbian_passes", 0), ("hebbian_batch", 1)):
            v = getattr(self, name)
            if not _whole(v, low):
                raise ConfigError(f"HLOP {name} must be a whole number >= {low}, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"HLOP seed must be a whole number, got {self.seed!r}")
        if self.max_samples is not None and not _whole(self.max_samples, 1):
            raise ConfigError(f"HLOP max_samples must be a whole number >= 1 of input rows per batch (or None: all "
                              f"rows), got {self.max_samples!r}")
        self._check_spiking()
        if self.layers is not None:
            check_names(self.layers, "HLOP layers")
        check_names(self.keep_trainable, "HLOP keep_trainable")

    def _check_spiking(self) -> None:
        s = self.spiking
        if s is None:
            return
        if (isinstance(s, str) or not isinstance(s, tuple | list) or len(s) != 2
                or not all(_number(v) and math.isfinite(v) and v > 0 for v in s)):
            raise ConfigError(f"HLOP spiking must be None or (S, T_l), two finite numbers > 0 (the spike-count "
                              f"code's range and steps, e.g. (20, 40)), got {s!r}")


def _number(v: Any) -> bool:
    """Whether ``v`` is a real number (int or float, not bool)."""
    return not isinstance(v, bool) and isinstance(v, int | float)


def _whole(v: Any, low: int) -> bool:
    """Whether ``v`` is an int (not bool) >= ``low``."""
    return not isinstance(v, bool) and isinstance(v, int) and v >= low


class Subspace:
    """The lateral circuit of one layer: ``H [k, n]``, its momentum, and how many rows are old (fixed)."""

    def __init__(self, n: int, dtype: torch.dtype = torch.float32) -> None:
        self.n = n
        self.h = torch.zeros(0, n, dtype=dtype)
        self.m = torch.zeros(0, n, dtype=dtype)
        self.n_old = 0
        self.basis = torch.zeros(0, n, dtype=dtype)  #: orthonormal basis of the old rows (the projector)

    @property
    def k(self) -> int:
        """Number of subspace neurons (rows of ``H``), old and new."""
        return int(self.h.shape[0])

    def check_add(self, k_new: int, name: str) -> None:
        """:class:`ParameterError` when ``k_new`` more rows cannot be added (negative, or more than ``n`` in all)."""
        if k_new < 0:
            raise ParameterError(f"layer {name!r}: cannot add {k_new} subspace neurons")
        if self.k + k_new > self.n:
            raise ParameterError(f"layer {name!r} has n = {self.n} input dimensions but would get {self.k + k_new} "
                                 f"subspace neurons ({self.k} + {k_new}); a subspace has at most n dimensions: "
                                 "lower k_init / k_inc for this layer")

    def add(self, k_new: int, generator: torch.Generator, name: str) -> None:
        """Append ``k_new`` orthonormal rows, orthogonal to the existing ones."""
        self.check_add(k_new, name)
        if k_new == 0:
            return
        r = torch.randn(self.n, k_new, generator=generator, dtype=torch.float64)
        if self.k:
            q_old = fp.orthonormal_basis(self.h.double())
            r = r - q_old.t() @ (q_old @ r)
        q, _ = torch.linalg.qr(r)
        dev = self.h.device
        self.h = torch.cat([self.h, q.t().to(self.h.dtype).to(dev)])
        self.m = torch.cat([self.m, torch.zeros(k_new, self.n, dtype=self.h.dtype, device=dev)])

    def merge(self, projector: str) -> None:
        """End of a task: every row becomes old (fixed); recompute the projection basis."""
        self.n_old = self.k
        self.basis = fp.orthonormal_basis(self.h) if projector == "orthonormal" else self.h.clone()

    def state(self) -> dict[str, Any]:
        """A copy of the subspace (``h``, momentum ``m``, ``n_old``, projection ``basis``) for a checkpoint."""
        return {"h": self.h.clone(), "m": self.m.clone(), "n_old": self.n_old, "basis": self.basis.clone()}

    def check_state(self, st: Any, name: str) -> None:
        """:class:`ConfigError` naming layer ``name`` when ``st`` is not a consistent :meth:`state` of it."""
        keys = ("h", "m", "n_old", "basis")
        if not isinstance(st, dict) or any(k not in st for k in keys):
            raise ConfigError(f"checkpoint subspace of layer {name!r} must hold {keys}, got "
                              f"{sorted(st) if isinstance(st, dict) else type(st).__name__}")
        h, m, basis = st["h"], st["m"], st["basis"]
        if not all(isinstance(v, torch.Tensor) and v.dim() == 2 for v in (h, m, basis)):
            raise ConfigError(f"checkpoint subspace of layer {name!r}: h, m and basis must be 2-D tensors")
        if h.shape[1] != self.n or h.shape[0] > self.n:
            raise ConfigError(f"checkpoint subspace of layer {name!r} has shape {tuple(h.shape)}, the layer takes "
                              f"[k <= {self.n}, {self.n}] (n = {self.n} input dimensions): a checkpoint of another "
                              "model")
        if m.shape != h.shape:
            raise ConfigError(f"checkpoint subspace of layer {name!r}: momentum {tuple(m.shape)} differs from H "
                              f"{tuple(h.shape)}")
        n_old = st["n_old"]
        if isinstance(n_old, bool) or not isinstance(n_old, int) or not 0 <= n_old <= h.shape[0]:
            raise ConfigError(f"checkpoint subspace of layer {name!r}: n_old = {n_old!r} old rows must be a whole "
                              f"number in [0, k = {h.shape[0]}]")
        if basis.shape[1] != self.n or basis.shape[0] > n_old:
            raise ConfigError(f"checkpoint subspace of layer {name!r}: projection basis {tuple(basis.shape)} must "
                              f"be [r <= n_old = {n_old}, {self.n}]")
        if not all(bool(torch.isfinite(v).all()) for v in (h, m, basis)):
            raise ConfigError(f"checkpoint subspace of layer {name!r} holds NaN/Inf values")

    def load(self, st: dict[str, Any], name: str) -> None:
        """Restore :meth:`state` of layer ``name``; ConfigError when it does not fit the layer."""
        self.check_state(st, name)
        self.h, self.m, self.basis = st["h"].clone(), st["m"].clone(), st["basis"].clone()
        self.n_old = int(st["n_old"])


def _data_parallel() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if _data_parallel():
        t = t.clone()
        torch.distributed.all_reduce(t)
        t /= torch.distributed.get_world_size()
    return t


class HLOP:
    """The HLOP plug-in (see module docstring). ``model`` is the plain module (not a DDP wrapper)."""

    name = "hlop"

    def __init__(self, model: nn.Module, config: HLOPConfig | None = None) -> None:
        self.model = model
        self.config = cfg = config or HLOPConfig()
        cfg.check()
        self.targets: list[Target] = resolve(model, cfg.layers)
        self.keep = keep_prefixes(model, cfg.keep_trainable)
        for key in ("k_init", "k_inc", "lr"):
            check_per_layer(getattr(cfg, key), self.targets, f"HLOP {key}")
        for t in self.targets:
            k0 = int(cfg.per_layer("k_init", t.name))
            if not 1 <= k0 <= t.n:
                raise ParameterError(f"layer {t.name!r} has n = {t.n} input dimensions; k_init = {k0} subspace "
                                     f"neurons must lie in [1, {t.n}]")
            cfg.per_layer("k_inc", t.name)
            cfg.per_layer("lr", t.name)
        self.spaces = {t.name: Subspace(t.n, t.weight.dtype) for t in self.targets}
        self.task = -1
        self.in_task = False
        self._updates = 0  # Hebbian updates so far (the finiteness check runs every FINITE_CHECK_EVERY)
        self.generator = torch.Generator().manual_seed(int(cfg.seed))
        self.tap = InputTap(model, self.targets, self._hebbian)
        #: per finished task, per layer: :func:`~spikeseq.functional.plasticity.subspace_quality` of its new rows
        self.quality: list[dict[str, dict[str, float]]] = []
        self._corr: dict[str, torch.Tensor] | None = None  # residual correlations while measuring
        self._measure_gen = torch.Generator()
        self.projector = GradientProjector(self.targets, self._basis)
        self.hebbian_enabled = True

    # ---- task protocol (called by the training path) --------------------------------------------------------
    def begin_task(self, task: int) -> None:
        """Start task ``task`` (0, 1, ...): add new lateral neurons and attach the hooks."""
        if task != self.task + 1 or self.in_task:
            raise ConfigError(f"HLOP tasks must run in order 0, 1, ... with end_task() between them; got "
                              f"begin_task({task}) after task {self.task} (in_task={self.in_task})")
        key = "k_init" if task == 0 else "k_inc"
        k_new = {t.name: int(self.config.per_layer(key, t.name)) for t in self.targets}
        for t in self.targets:  # every layer is checked before any grows: a refusal changes nothing
            self.spaces[t.name].check_add(k_new[t.name], t.name)
        self.projector.check()  # a frozen layer, or one another HLOP / GPM already projects
        for t in self.targets:
            sp = self.spaces[t.name]
            sp.add(k_new[t.name], self.generator, t.name)
            sp.h, sp.m, sp.basis = (v.to(t.weight.device) for v in (sp.h, sp.m, sp.basis))
        self.task, self.in_task = task, True
        self.attach()

    def end_task(self, data: TaskData | None = None) -> None:
        """Merge this task's neurons into the old subspace and (after the first task) freeze 1-D parameters.
        ``data`` is needed only for ``hebbian_passes`` (the subspace is otherwise learned online, in training)."""
        if not self.in_task:
            raise ConfigError("HLOP.end_task() without begin_task()")
        if self.config.hebbian_passes:
            if data is None:
                raise ConfigError("HLOP hebbian_passes > 0 needs the task's data at end_task(TaskData)")
            self._hebbian_passes(data)
        if self.config.measure_subspace and data is not None:
            self.quality.append(self._measure(data))
        self.check_finite()  # before the SVD of the merge, which would fail on NaN with a raw LinAlgError
        for sp in self.spaces.values():
            sp.merge(self.config.projector)
        if self.config.freeze_1d:
            keep = self.keep
            for n, p in self.model.named_parameters():
                if p.dim() <= 1 and not any(n == k or n.startswith(k + ".") for k in keep):
                    p.requires_grad_(False)
        self.in_task = False

    def _hebbian_passes(self, data: TaskData) -> None:
        self._forward_passes(data, self.config.hebbian_passes)

    def _forward_passes(self, data: TaskData, passes: int) -> None:
        """Forward-only passes over the task's data in evaluation mode with the input taps on;
        :class:`ContinualError` when the data holds no sample (checked after the first pass, which then changed
        nothing: the Hebbian passes and the measurement would silently do nothing, the latter record a ratio of 0)."""
        was_training = self.model.training
        self.tap.always = True
        self.model.eval()
        try:
            with torch.no_grad():
                for _ in range(passes):
                    seen = 0
                    for x, _y in data.batches(self.config.hebbian_batch):
                        self.model(x)
                        seen += int(x.shape[1]) if x.dim() > 1 else 0
                    if not seen:
                        raise ContinualError(
                            f"HLOP.end_task: task {self.task}'s data gave no batches (or only empty ones), so there is "
                            "nothing for the Hebbian passes or the subspace measurement to read; pass the task's "
                            "training data (TaskData.batches must yield at least one non-empty [T, B, ...] batch), "
                            "or call end_task() without data when hebbian_passes = 0")
        finally:
            self.tap.always = False
            self.model.train(was_training)

    def _measure(self, data: TaskData) -> dict[str, dict[str, float]]:
        """One forward pass: each layer's residual inputs (outside the old subspace) summed into ``C = sum r r^T``,
        then the new rows' :func:`~spikeseq.functional.plasticity.subspace_quality` against ``C``."""
        self._corr = {t.name: torch.zeros(t.n, t.n, dtype=torch.float64, device=t.weight.device)
                      for t in self.targets}
        # its own generator: measuring never changes the training's random stream (conv layers subsample patches)
        self._measure_gen = torch.Generator().manual_seed(int(self.config.seed) + 1 + self.task)
        try:
            self._forward_passes(data, 1)
            corr = {k: _all_reduce_mean(v) for k, v in self._corr.items()}
        finally:
            self._corr = None
        out = {}
        for name, sp in self.spaces.items():
            new = sp.h[sp.n_old:].double()
            if sp.basis.shape[0]:
                b = sp.basis.double()
                new = new - (new @ b.t()) @ b
            out[name] = fp.subspace_quality(corr[name], new)
        return out

    def diagnostics(self) -> dict[str, Any]:
        """``{"subspace_quality": [per task {layer: {k, captured, best, ratio}}]}``: the share of each task's
        residual input energy its new lateral neurons capture (``captured``), the most ``k`` directions could
        (``best``, PCA) and their ratio (1: converged to the principal subspace)."""
        return {"subspace_quality": self.quality}

    def attach(self) -> None:
        """Register the input taps (Hebbian updates) and the gradient projection hooks."""
        self.tap.attach()
        self.projector.attach()

    def detach(self) -> None:
        """Remove every hook: the model is the plain model again."""
        self.tap.detach()
        self.projector.detach()

    # ---- hooks ---------------------------------------------------------------------------------------------
    def _basis(self, name: str) -> torch.Tensor:
        return self.spaces[name].basis

    def _hebbian(self, inputs: dict[str, torch.Tensor], tb: tuple[int, int]) -> None:
        if not (self.hebbian_enabled and self.in_task) or tb[1] == 0:  # an empty batch: nothing to learn
            return
        cfg = self.config
        for t in self.targets:
            if t.name not in inputs:
                continue
            if self._corr is not None:  # measuring: rows subsampled as in training, from the measurement's generator
                x = presynaptic(inputs[t.name], tb, cfg.input, cfg.trace_decay, cfg.max_samples,
                                self._measure_gen).double()
                _check_finite(t.name, x)
                b = self.spaces[t.name].basis.double()
                r = x - (x @ b.t()) @ b if b.shape[0] else x
                self._corr[t.name].addmm_(r.t(), r)
                continue
            x = presynaptic(inputs[t.name], tb, cfg.input, cfg.trace_decay, cfg.max_samples, self.generator)
            self.update(t.name, x)

    def update(self, name: str, x: torch.Tensor) -> None:
        """``iterations`` Oja steps of the new neurons of layer ``name`` on inputs ``x [N, n]``.

        No step for ``N = 0`` (an empty batch) or, with ``normalize``, a residual below ``n * eps`` of the input's
        power (a silent layer: nothing to learn; :func:`~spikeseq.functional.plasticity.oja_subspace_step`).
        :class:`NonFiniteError` for NaN/Inf inputs: with ``normalize`` before the step (their power is not finite),
        otherwise when :meth:`check_finite` finds ``H`` non-finite, within :data:`FINITE_CHECK_EVERY` updates and
        before a task's subspaces are merged."""
        cfg, sp = self.config, self.spaces[name]
        if sp.k == sp.n_old or x.shape[0] == 0:
            return
        lr = float(cfg.per_layer("lr", name))
        sp.h, sp.m = fp.oja_subspace_step(
            sp.h, sp.m, x.to(sp.h), lr=lr, plastic_from=sp.n_old,
            momentum=cfg.momentum, clamp=cfg.clamp, iterations=cfg.iterations, spiking=cfg.spiking,
            reduce=_all_reduce_mean if _data_parallel() else None,  # one process: no per-iteration identity call
            normalize=cfg.normalize, inplace=True)
        self._updates += 1
        if self._updates % FINITE_CHECK_EVERY == 0:
            self.check_finite()

    def check_finite(self) -> None:
        """:class:`NonFiniteError` naming the layer when a subspace ``H`` holds NaN/Inf: a non-finite layer input, or
        a learning rate / clamp too large for the layer. Run every :data:`FINITE_CHECK_EVERY` updates and before a
        task's subspaces are merged (a per-update check cost 10 % of a training step at the paper's sizes)."""
        for name, sp in self.spaces.items():
            if not bool(torch.isfinite(sp.h).all()):
                cfg = self.config
                raise NonFiniteError(
                    f"HLOP layer {name!r}: the subspace H became non-finite (NaN/Inf) during task {self.task}: a "
                    f"NaN/Inf input to the layer (check the model's input and earlier layers) or lr = "
                    f"{cfg.per_layer('lr', name)} / clamp = {cfg.clamp} too large for it; fix it and restart the task "
                    "from a checkpoint")

    def scale_lr(self, gamma: float) -> None:
        """Multiply every layer's Hebbian learning rate by ``gamma`` (the reference code's ``adjust_lr``)."""
        if not gamma > 0:
            raise ParameterError(f"gamma must be > 0, got {gamma}")
        lr = self.config.lr
        self.config.lr = {k: v * gamma for k, v in lr.items()} if isinstance(lr, dict) else lr * gamma

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything HLOP needs to resume: task counters, generator, learning rates, subspaces, frozen names."""
        return {"task": self.task, "in_task": self.in_task, "generator": self.generator.get_state(),
                "lr": self.config.lr,
                "spaces": {k: v.state() for k, v in self.spaces.items()}, "quality": list(self.quality),
                "frozen": [n for n, p in self.model.named_parameters() if not p.requires_grad]}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; ConfigError, before anything changes, when the state is not an HLOP state or
        does not fit this model (other layers, other sizes, inconsistent subspaces) or this configuration (a number
        of subspace neurons other than ``k_init + task k_inc`` at the checkpoint's task)."""
        check_state_keys(st, STATE_KEYS, "an HLOP")
        task, in_task = check_task_position(st, "HLOP")
        if in_task:
            self.projector.check()  # resuming mid-task attaches the hooks: refuse before anything changes
        if not isinstance(st["spaces"], dict) or set(st["spaces"]) != set(self.spaces):
            got = sorted(st["spaces"]) if isinstance(st["spaces"], dict) else st["spaces"]
            raise ConfigError(f"checkpoint HLOP layers {got} differ from {sorted(self.spaces)}")
        for k, v in st["spaces"].items():
            self.spaces[k].check_state(v, k)
            self._check_counts(k, v, task, in_task)
        for k, v in st["spaces"].items():
            self.spaces[k].load(v, k)
        self.task, self.in_task = task, in_task
        self.quality = list(st.get("quality", []))
        self.config.lr = st.get("lr", self.config.lr)
        self.generator.set_state(st["generator"])
        frozen = set(st.get("frozen", []))
        for n, p in self.model.named_parameters():
            if n in frozen:
                p.requires_grad_(False)
        if self.in_task:
            self.attach()

    def _expected_k(self, name: str, task: int) -> int:
        """Subspace neurons of layer ``name`` once task ``task`` has begun under this configuration: ``k_init + task
        k_inc`` (0 before the first task, ``task = -1``); the rows stay there after the task's end (the merge)."""
        if task < 0:
            return 0
        cfg = self.config
        return int(cfg.per_layer("k_init", name)) + task * int(cfg.per_layer("k_inc", name))

    def _check_counts(self, name: str, st: dict[str, Any], task: int, in_task: bool) -> None:
        """:class:`ConfigError` naming layer ``name``, both counts and the setting when a checkpoint subspace (after
        :meth:`Subspace.check_state`) holds another number of neurons, or of old (merged) neurons, than this
        configuration gives at the checkpoint's task: a checkpoint of an HLOP with other ``k_init`` / ``k_inc``,
        whose count would otherwise silently replace this configuration's (and later tasks then grow from it)."""
        k, n_old = int(st["h"].shape[0]), int(st["n_old"])
        want = self._expected_k(name, task)
        cfg = self.config
        k0, kinc = cfg.per_layer("k_init", name), cfg.per_layer("k_inc", name)
        rule = ("0 before the first task" if task < 0 else f"k_init = {k0}" if task == 0 else
                f"k_init + {task} x k_inc = {k0} + {task} x {kinc}")
        if k != want:
            setting = "k_init" if task <= 0 else "k_init / k_inc"
            raise ConfigError(f"checkpoint subspace of layer {name!r} has {k} subspace neurons, but this HLOP's "
                              f"configuration gives {want} at task {task} ({rule}): the checkpoint was taken with "
                              f"other {setting} settings; build the HLOP with the checkpoint's {setting} for this "
                              "layer (or start the stream over)")
        # in a task, the rows of the earlier tasks are old; between tasks every row is (end_task merged them)
        want_old = self._expected_k(name, task - 1) if in_task else want
        if n_old != want_old:
            state = f"inside task {task}" if in_task else f"after task {task}"
            raise ConfigError(f"checkpoint subspace of layer {name!r} has n_old = {n_old} old (merged) subspace "
                              f"neurons, but {state} this HLOP's configuration has {want_old} (k = {k}, in_task = "
                              f"{in_task}): an inconsistent or corrupt HLOP state")

    def memory(self) -> dict[str, int]:
        """Stored lateral neurons per layer and ``"floats"``, the stored lateral weights ``sum k n`` (the memory
        compared with GPM's bases and EWC's Fisher diagonals and anchors)."""
        return {**{k: v.k for k, v in self.spaces.items()}, "floats": sum(v.k * v.n for v in self.spaces.values())}


def _check_finite(name: str, x: torch.Tensor) -> None:
    """:class:`NonFiniteError` naming layer ``name`` when its Hebbian input ``x`` holds NaN/Inf."""
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteError(f"HLOP layer {name!r}: its input holds NaN/Inf values, which would poison the subspace H "
                             "(end_task's SVD then fails); find where they come from (the model input or an earlier "
                             "layer) and keep them out of training")
