"""Hooks that read the presynaptic input of protected layers during training and project their weight gradients.

:class:`InputTap` registers

* a forward pre-hook on the model (records ``T, B`` of the time-first input ``[T, B, ...]``, given by position
  or by the name of ``forward``'s first parameter, e.g. ``model(x=...)``; ``[B, T, ...]`` for a model whose
  ``batch_first`` is True, such as ``nn.EGRU(batch_first=True)``, which runs its layers time-first inside),
* a forward pre-hook on every target layer (stores its input, detached), and
* a forward hook on the model that hands the inputs of the whole forward pass to a callback,

all of which do nothing unless the model is in training mode with gradients enabled, so evaluation runs exactly
the plain model. :func:`presynaptic` turns what was stored into the plasticity input: every time step (``"step"``)
or the per-sample weighted firing rate ``r = sum_t lam^(T-1-t) x_t / sum_t lam^(T-1-t)`` (``"rate"``; ``lam = 1``
is the plain rate, ``lam < 1`` the DSR weighted rate / presynaptic trace of HLOP, Meng et al. CVPR 2022).

:class:`GradientProjector` registers a tensor hook on each target weight that replaces its gradient ``G`` by
``G (I - Q^T Q)`` for the layer's current orthonormal basis ``Q`` (:func:`spikeseq.functional.plasticity.
project_residual`), the same as using ``x - Q^T Q x`` in every outer product ``delta x^T``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
from torch import nn

from spikeseq.errors import ConfigError, ParameterError, ShapeError
from spikeseq.functional.plasticity import project_residual

from .layers import Target

MODES = ("rate", "step")


class InputTap:
    """Collects the inputs of ``targets`` during each training forward pass of ``model``; see module docstring.

    ``callback(inputs)`` receives ``{target name: [M, P, n] tensor}`` (rows of every call in call order) and the
    ``(T, B)`` of the model input once per forward pass. ``always=True`` also records evaluation passes (GPM
    reads a task's inputs once at its end).
    """

    def __init__(self, model: nn.Module, targets: list[Target],
                 callback: Callable[[dict[str, torch.Tensor], tuple[int, int]], None], *, always: bool = False
                 ) -> None:
        self.model, self.targets, self.callback, self.always = model, targets, callback, always
        self._buf: dict[str, list[torch.Tensor]] = {t.name: [] for t in targets}
        self._tb: tuple[int, int] | None = None
        self._handles: list = []
        self._input_name: str | None = None

    def _active(self) -> bool:
        return self.always or (self.model.training and torch.is_grad_enabled())

    def attach(self) -> InputTap:
        """Register the forward hooks that record the targets' inputs during training (idempotent); returns self."""
        if self._handles:
            return self
        self._input_name = _first_parameter(self.model)
        self._handles.append(self.model.register_forward_pre_hook(self._start, with_kwargs=True))
        for t in self.targets:
            self._handles.append(t.module.register_forward_pre_hook(self._store(t)))
        self._handles.append(self.model.register_forward_hook(self._finish))
        return self

    def detach(self) -> None:
        """Remove the hooks and drop any recorded inputs."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._clear()

    @property
    def attached(self) -> bool:
        """Whether the hooks are registered."""
        return bool(self._handles)

    def _clear(self) -> None:
        for v in self._buf.values():
            v.clear()
        self._tb = None

    def _start(self, _module, args, kwargs) -> None:
        self._clear()
        x = args[0] if args else kwargs.get(self._input_name) if self._input_name else None
        if self._active() and isinstance(x, torch.Tensor) and x.dim() >= 2:
            # a model with batch_first = True (nn.EGRU) reads [B, T, ...] and runs its layers time-first inside
            first, second = int(x.shape[0]), int(x.shape[1])
            self._tb = (second, first) if getattr(self.model, "batch_first", False) is True else (first, second)

    def _store(self, target: Target):
        def hook(_module, args) -> None:
            if self._tb is not None and self._active():
                self._buf[target.name].append(target.rows(args[0].detach()))
        return hook

    def _finish(self, _module, _args, _out) -> None:
        if self._tb is None:
            return
        inputs = {k: v[0] if len(v) == 1 else torch.cat(v) for k, v in self._buf.items() if v}
        tb = self._tb
        self._clear()
        if inputs:
            self.callback(inputs, tb)


def _first_parameter(model: nn.Module) -> str | None:
    """The name of the first parameter of ``model.forward`` (the input when it is passed by keyword)."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return next((p.name for p in params if p.kind in kinds), None)


@functools.lru_cache(maxsize=64)
def _rate_weights(steps: int, decay: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``lam^(T-1-t) / sum_t lam^(T-1-t)`` for ``t = 0 .. T-1`` (the weighted rate's weights; cached)."""
    w = decay ** torch.arange(steps - 1, -1, -1, dtype=torch.float64)
    return (w / w.sum()).to(dtype=dtype, device=device)


def presynaptic(rows: torch.Tensor, tb: tuple[int, int], mode: str = "rate", decay: float = 1.0,
                max_samples: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The plasticity input ``[N, n]`` from a layer's stored rows ``[M, P, n]`` (``M = T' * B``, time-major).

    ``"rate"``: one weighted rate per sample and patch (``N = B * P``); ``"step"``: every row (``N = M * P``).
    ``max_samples`` keeps a random subset of the rows (large conv layers). An empty batch (``B = 0``) gives no
    rows (``[0, n]``).
    """
    if mode not in MODES:
        raise ParameterError(f"presynaptic input mode must be one of {MODES}, got {mode!r}")
    if not 0 < decay <= 1:
        raise ParameterError(f"trace decay must lie in (0, 1], got {decay}")
    m, p, n = rows.shape
    t, b = tb
    if b == 0 or m == 0:
        return rows.new_zeros(0, n)
    if mode == "rate":
        if m % b:
            raise ShapeError(f"a protected layer saw {m} input rows, not a whole number of time steps of batch {b}: "
                             f"the model input must be time-first [T, B, ...] (read as T = {t}, B = {b}); a [B, n] "
                             "input without a time axis is read as T = B, B = n: add the time axis, x[None] for "
                             "one step")
        steps = m // b
        out = (_rate_weights(steps, decay, rows.dtype, rows.device) @ rows.reshape(steps, b * p * n)).reshape(b * p, n)
    else:
        out = rows.reshape(m * p, n)
    if max_samples is not None and out.shape[0] > max_samples:
        idx = torch.randperm(out.shape[0], generator=generator)[:max_samples].to(out.device)
        out = out[idx]
    return out


class GradientProjector:
    """Replaces each target weight's gradient ``G`` by ``G (I - Q^T Q)`` (``Q`` from ``basis(name)``, ``[r, n]``
    with orthonormal rows, or ``None`` / empty for no projection)."""

    def __init__(self, targets: list[Target], basis: Callable[[str], torch.Tensor | None]) -> None:
        self.targets, self.basis = targets, basis
        self._handles: list = []

    def check(self) -> None:
        """:class:`~spikeseq.errors.ConfigError` naming the layer when :meth:`attach` cannot protect a target: its
        weight is frozen (``requires_grad=False``: torch cannot hook it, and its gradient is never computed), or
        another projector (a second HLOP / GPM on the same model) already projects its gradient: the two projections
        would undo each other's protection (the gradient then leaves the first plug-in's subspace). Nothing to check
        once attached."""
        if self._handles:
            return
        for t in self.targets:
            if not t.weight.requires_grad:
                raise ConfigError(f"layer {t.name!r}: its weight is frozen (requires_grad=False), so it has no "
                                  "gradient to project; unfreeze it (weight.requires_grad_(True)) or leave it out of "
                                  "the plug-in's layers")
            hooks = getattr(t.weight, "_backward_hooks", None) or {}
            if any(getattr(h, "_spikeseq_projector", self) is not self for h in hooks.values()):
                raise ConfigError(f"layer {t.name!r} already has its gradient projected by another continual "
                                  "plug-in (HLOP or GPM) attached to this model; two projections of one weight break "
                                  "each other's protection: detach() the other plug-in first (or build a fresh "
                                  "model), or protect different layers with each")

    def attach(self) -> GradientProjector:
        """Register the gradient hooks on every target weight (idempotent; :meth:`check` first: nothing is
        registered when a target cannot be protected); returns self."""
        if not self._handles:
            self.check()
            for t in self.targets:
                self._handles.append(t.weight.register_hook(self._hook(t)))
        return self

    def detach(self) -> None:
        """Remove the gradient hooks: gradients are no longer projected."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, target: Target):
        def hook(g: torch.Tensor) -> torch.Tensor:
            q = self.basis(target.name)
            if q is None or q.shape[0] == 0:
                return g
            return project_residual(g.reshape(g.shape[0], -1), q.to(g)).reshape(g.shape)
        hook._spikeseq_projector = self  # type: ignore[attr-defined]  # found by another projector's check()
        return hook
