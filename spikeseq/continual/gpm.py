"""GPM: gradient projection memory (Saha, Garg, Roy; ICLR 2021), the SVD counterpart of HLOP.

At the end of each task the inputs ``R [N, n]`` of every protected layer on (a sample of) the task's training data
are collected; the part not yet explained, ``R_res = R - Q^T Q R``, is decomposed by SVD and its top directions are
appended to the layer's orthonormal basis ``Q``. Later tasks' weight gradients are projected with ``G (I - Q^T Q)``
exactly as HLOP's (:class:`spikeseq.continual.capture.GradientProjector`).

How many directions a task adds: ``k_init`` / ``k_inc`` per layer (the same numbers as HLOP's lateral neurons, so
both methods store the same number of basis vectors: "equal memory"), or GPM's energy criterion with
``threshold`` (keep the fewest directions whose energy, together with what ``Q`` already explains, reaches
``threshold`` of ``||R||_F^2``; GPM's PMNIST setting is 0.95 for the first layer and 0.99 for the others, with
+0.003 per task for 10-split CIFAR-100).

When the residual has fewer directions than ``k`` (singular values above :data:`RANK_RTOL` ``* ||R||_F``: silent
units, pixels that are zero in every sampled input, inputs the old basis already holds), the fixed-``k`` setting
fills the rest with an orthonormal basis of what neither the old basis nor the new directions span, as HLOP's new
lateral neurons, initialised orthogonal to the others, stay where they are when no input reaches them: the same
number of protected directions either way. The energy criterion adds only directions the residual has. (The SVD's
own rows beyond the rank span the residual's null space, which contains ``span(Q)``: appended, they broke the
basis' orthonormality and the projector reversed parts of the gradient.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError, ContinualError, ParameterError

from .capture import MODES, GradientProjector, InputTap, presynaptic
from .layers import Target, check_names, check_per_layer, keep_prefixes, resolve
from .plugin import TaskData, check_state_keys

#: Singular values of a task's residual inputs below this fraction of ``||R||_F`` are rounding noise, not
#: directions of the task's input (the inputs are float32: about 7 significant digits); the same relative cut-off as
#: HLOP's projection basis (:func:`spikeseq.functional.plasticity.orthonormal_basis`).
RANK_RTOL = 1e-6


@dataclass
class GPMConfig:
    """Settings of :class:`GPM` (per-layer values: a number or a ``{layer: value}`` map)."""

    layers: list[str] | None = None
    k_init: int | dict[str, int] | None = 20
    k_inc: int | dict[str, int] | None = 10
    threshold: float | None = None      #: energy criterion instead of fixed k (set k_init = k_inc = None)
    samples: int = 512                  #: training samples of a task used for its representation matrix
    input: str = "rate"
    trace_decay: float = 1.0
    max_rows: int = 8192                #: rows of R kept (conv patches)
    freeze_1d: bool = True
    keep_trainable: list[str] | None = None
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`~spikeseq.errors.ConfigError` naming the first option of the wrong type or out of range."""
        if self.input not in MODES:
            raise ConfigError(f"GPM input must be one of {MODES}, got {self.input!r}")
        if not isinstance(self.freeze_1d, bool):
            raise ConfigError(f"GPM freeze_1d must be true or false, got {self.freeze_1d!r}")
        for name in ("k_init", "k_inc"):
            v = getattr(self, name)
            for layer, k in ([] if v is None else v.items() if isinstance(v, dict) else [("every layer", v)]):
                if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                    raise ConfigError(f"GPM {name} must be a whole number >= 0 of basis vectors, got {k!r} for "
                                      f"{layer}")
        for name in ("samples", "max_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"GPM {name} must be a whole number >= 1, got {v!r}")
        if not 0 < self.trace_decay <= 1:
            raise ConfigError(f"GPM trace_decay must lie in (0, 1], got {self.trace_decay}")
        if self.layers is not None:
            check_names(self.layers, "GPM layers")
        if self.keep_trainable is not None:
            check_names(self.keep_trainable, "GPM keep_trainable")


class GPM:
    """The GPM plug-in (see module docstring)."""

    name = "gpm"

    def __init__(self, model: nn.Module, config: GPMConfig | None = None) -> None:
        self.model = model
        self.config = cfg = config or GPMConfig()
        cfg.check()
        if (cfg.threshold is None) == (cfg.k_init is None or cfg.k_inc is None):
            raise ConfigError("GPM: give either k_init and k_inc (fixed basis growth) or threshold (energy), "
                              "not both")
        if cfg.threshold is not None and not 0 < cfg.threshold < 1:
            raise ConfigError(f"GPM threshold must lie in (0, 1), got {cfg.threshold}")
        self.targets: list[Target] = resolve(model, cfg.layers)
        self.keep = keep_prefixes(model, cfg.keep_trainable)
        for key in ("k_init", "k_inc"):
            check_per_layer(getattr(cfg, key), self.targets, f"GPM {key}")
        self.bases = {t.name: torch.zeros(0, t.n, dtype=t.weight.dtype, device=t.weight.device)
                      for t in self.targets}
        for t in self.targets:
            if cfg.k_init is not None:
                k0 = _per_layer(cfg.k_init, t.name)
                if not 1 <= k0 <= t.n:
                    raise ParameterError(f"layer {t.name!r} has n = {t.n} input dimensions; k_init = {k0} basis "
                                         f"vectors must lie in [1, {t.n}]")
        self.task, self.in_task = -1, False
        self.generator = torch.Generator().manual_seed(int(cfg.seed))
        self.projector = GradientProjector(self.targets, lambda n: self.bases[n])

    def begin_task(self, task: int) -> None:
        """Start task ``task`` (0, 1, ...): attach the gradient projection (old tasks' bases)."""
        if task != self.task + 1 or self.in_task:
            raise ConfigError(f"GPM tasks must run in order 0, 1, ...; got begin_task({task}) after task {self.task}")
        self.projector.attach()  # first: a layer it cannot protect is refused before the task starts
        self.task, self.in_task = task, True

    def end_task(self, data: TaskData | None = None) -> None:
        """Add the task's principal input directions to every layer's basis (needs ``data``)."""
        if data is None:
            raise ConfigError("GPM.end_task needs the task's data (TaskData) to build its representation matrix")
        cfg = self.config
        rows: dict[str, list[torch.Tensor]] = {t.name: [] for t in self.targets}

        def keep(inputs: dict[str, torch.Tensor], tb: tuple[int, int]) -> None:
            for k, v in inputs.items():
                rows[k].append(presynaptic(v, tb, cfg.input, cfg.trace_decay))

        tap = InputTap(self.model, self.targets, keep, always=True).attach()
        was_training = self.model.training
        self.model.eval()
        seen = 0
        try:
            with torch.no_grad():
                for x, _ in data.batches(min(cfg.samples, 256)):
                    self.model(x)
                    seen += x.shape[1]
                    if seen >= cfg.samples:
                        break
        finally:
            tap.detach()
            self.model.train(was_training)
        if not any(r.shape[0] for v in rows.values() for r in v):
            raise ContinualError(f"GPM.end_task: task {self.task}'s data gave no batches (or only empty ones), so it "
                                 "has no inputs to build a basis from; pass the task's training data (TaskData."
                                 "batches must yield at least one non-empty batch)")
        for t in self.targets:
            if not any(r.shape[0] for r in rows[t.name]):
                raise ContinualError(f"GPM.end_task: layer {t.name!r} received no input on task {self.task}'s "
                                     "data; protect only layers the model's forward pass uses")
        for t in self.targets:
            r = torch.cat(rows[t.name]).double()
            if r.shape[0] > cfg.max_rows:
                r = r[torch.randperm(r.shape[0], generator=self.generator)[:cfg.max_rows]]
            self.bases[t.name] = self._grow(t, r).to(t.weight.dtype)
        if cfg.freeze_1d:
            keep_ = self.keep
            for n, p in self.model.named_parameters():
                if p.dim() <= 1 and not any(n == k or n.startswith(k + ".") for k in keep_):
                    p.requires_grad_(False)
        self.in_task = False

    def _grow(self, t: Target, r: torch.Tensor) -> torch.Tensor:
        q = self.bases[t.name].double().to(r.device)
        res = r - (r @ q.t()) @ q if q.shape[0] else r
        _, s, vh = torch.linalg.svd(res, full_matrices=False)
        rank = int((s > RANK_RTOL * float(torch.linalg.vector_norm(r))).sum())  # directions the residual has
        cfg = self.config
        if cfg.threshold is not None:  # GPM's criterion on the energy of R: only directions the residual has
            total = float((r ** 2).sum())
            explained = total - float((res ** 2).sum())
            acc = explained + torch.cumsum(s ** 2, 0)
            k = int((acc < cfg.threshold * total).sum()) + 1 if explained < cfg.threshold * total else 0
            k = min(k, rank)
        else:
            k = min(_per_layer(cfg.k_init if self.task == 0 else cfg.k_inc, t.name), t.n - q.shape[0])
        new = vh[:min(k, rank)]
        if q.shape[0] and new.shape[0]:  # re-orthogonalise against the old basis, twice ("twice is enough")
            for _ in range(2):
                new = new - (new @ q.t()) @ q
            new = torch.linalg.qr(new.t())[0].t()
        if k > new.shape[0]:  # fewer directions than asked for: fill up from the complement (see module docstring)
            known = torch.cat([q, new])
            complement = torch.linalg.qr(known.t(), mode="complete")[0][:, known.shape[0]:].t()
            new = torch.cat([new, complement[:k - new.shape[0]]])
        return torch.cat([q, new]).to(t.weight.device)

    def detach(self) -> None:
        """Remove the gradient hooks."""
        self.projector.detach()

    def memory(self) -> dict[str, int]:
        """Stored basis vectors per layer and ``"floats"``, their total size ``sum k n``."""
        return {**{k: int(v.shape[0]) for k, v in self.bases.items()},
                "floats": sum(int(v.numel()) for v in self.bases.values())}

    def state_dict(self) -> dict[str, Any]:
        """Bases, task position and frozen parameters (for checkpoints)."""
        return {"task": self.task, "in_task": self.in_task, "bases": {k: v.clone() for k, v in self.bases.items()},
                "generator": self.generator.get_state(),
                "frozen": [n for n, p in self.model.named_parameters() if not p.requires_grad]}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (resume); ConfigError, before anything changes, when the state is not a GPM
        state or does not fit this model (other layers, other sizes)."""
        check_state_keys(st, STATE_KEYS, "a GPM")
        if not isinstance(st["bases"], dict) or set(st["bases"]) != set(self.bases):
            got = sorted(st["bases"]) if isinstance(st["bases"], dict) else st["bases"]
            raise ConfigError(f"checkpoint GPM layers {got} differ from {sorted(self.bases)}")
        for t in self.targets:
            _check_basis(st["bases"][t.name], t)
        self.bases = {k: v.clone() for k, v in st["bases"].items()}
        self.task, self.in_task = int(st["task"]), bool(st["in_task"])
        self.generator.set_state(st["generator"])
        frozen = set(st.get("frozen", []))
        for n, p in self.model.named_parameters():
            if n in frozen:
                p.requires_grad_(False)
        if self.in_task:
            self.projector.attach()


STATE_KEYS = ("task", "in_task", "bases", "generator")  #: what :meth:`GPM.load_state_dict` needs


def _check_basis(q: Any, t: Target) -> None:
    """:class:`ConfigError` naming the layer and both shapes unless ``q`` is a basis ``[r <= n, n]`` of ``t``."""
    if not isinstance(q, torch.Tensor) or q.dim() != 2 or q.shape[1] != t.n or q.shape[0] > t.n:
        shape = tuple(q.shape) if isinstance(q, torch.Tensor) else type(q).__name__
        raise ConfigError(f"checkpoint GPM basis of layer {t.name!r} has shape {shape}, the layer takes [r <= {t.n}, "
                          f"{t.n}] (n = {t.n} input dimensions): a checkpoint of another model")
    if not bool(torch.isfinite(q).all()):
        raise ConfigError(f"checkpoint GPM basis of layer {t.name!r} holds NaN/Inf values")


def _per_layer(v: Any, layer: str) -> int:
    if isinstance(v, dict):
        if layer not in v:
            raise ConfigError(f"no value for layer {layer!r} (given for {sorted(v)})")
        return int(v[layer])
    return int(v)
