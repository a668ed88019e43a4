"""Unstructured magnitude pruning during training, and the pruned weights in compressed rows (CSR).

The SpiNNaker 2 EGRU prunes ~95% of the weights, unstructured, and stores them in CSR (Nazeer et al., arXiv
2312.09084; specs/targets.md §3.4). The schedule here is the gradual one of Zhu & Gupta, "To prune, or not to
prune", arXiv 1710.01878 (eq. 1):

    s(k) = s_f * (1 - (1 - (k - k0) / (k1 - k0))^3)     for k0 <= k <= k1 (0 before, s_f after)

applied every ``every`` optimizer steps: each pruned matrix keeps its ``(1 - s(k))`` fraction of largest-magnitude
entries (a mask buffer, saved in checkpoints); after every optimizer step the masked entries are set back to zero.

``scope`` says over what the magnitudes are ranked. ``"matrix"`` (Zhu & Gupta's layer-wise pruning) gives every matrix
the same sparsity ``s(k)``. ``"global"`` ranks the entries of all pruned matrices together and drops the smallest
``s(k)`` fraction of the pooled total. Each matrix then ends at its own sparsity and the total at ``s(k)``. Global
magnitude pruning is the variant Blalock et al., "What is the state of neural network pruning?", MLSys 2020
(arXiv 2003.03033), found at least as accurate as layer-wise at equal total sparsity. ``"erdos_renyi"`` gives each
``[rows, cols]`` matrix a density proportional to ``(rows + cols) / (rows * cols)`` (capped at 1), scaled so that the
total is ``s(k)``, and prunes each matrix by magnitude to its own level: the Erdős–Rényi allocation of Mocanu et al.,
Nature Communications 9, 2383 (2018), as used by Evci et al., "Rigging the lottery", ICML 2020 (arXiv 1911.11134). A
matrix with a small fan-in (an EGRU's input weights from a 64-wide embedding) keeps more of its entries than a large
one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from spikeseq.errors import ParameterError, ShapeError

PRUNE_SCOPES = ("matrix", "global", "erdos_renyi")


@dataclass(frozen=True)
class PruneSchedule:
    """Target sparsity ``sparsity`` in ``[0, 1)`` reached at step ``end`` from ``start`` (masks updated every
    ``every`` steps)."""

    sparsity: float
    start: int = 0
    end: int = 1000
    every: int = 50
    scope: str = "matrix"

    def __post_init__(self) -> None:
        if not (isinstance(self.sparsity, int | float) and 0.0 <= self.sparsity < 1.0):
            raise ParameterError(
                f"pruning sparsity must lie in [0, 1), got {self.sparsity!r}: 1.0 would remove every weight (the "
                "SpiNNaker 2 EGRU uses 0.95)")
        for name in ("start", "end", "every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ParameterError(f"pruning {name} must be a whole number of optimizer steps, got {v!r}")
        if self.start < 0 or self.end <= self.start or self.every < 1:
            raise ParameterError(f"pruning needs 0 <= start < end and every >= 1, got start={self.start}, "
                                 f"end={self.end}, every={self.every}")
        if self.scope not in PRUNE_SCOPES:
            raise ParameterError(f"pruning scope must be one of {PRUNE_SCOPES}, got {self.scope!r}: 'matrix' prunes "
                                 "every matrix to the same sparsity, 'global' ranks all pruned matrices together, "
                                 "'erdos_renyi' gives small matrices more density")

    def at(self, step: int) -> float:
        """The sparsity of the schedule after ``step`` optimizer steps."""
        if step < self.start:
            return 0.0
        frac = min(1.0, (step - self.start) / (self.end - self.start))
        return self.sparsity * (1.0 - (1.0 - frac) ** 3)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A 0/1 mask keeping the ``1 - sparsity`` fraction of entries of largest magnitude (ties: lower index kept)."""
    if not (0.0 <= sparsity <= 1.0):
        raise ParameterError(f"sparsity must lie in [0, 1], got {sparsity!r}")
    n = weight.numel()
    drop = math.floor(sparsity * n + 1e-9)
    mask = torch.ones(n, dtype=weight.dtype, device=weight.device)
    if drop > 0:
        order = torch.argsort(weight.detach().abs().flatten(), stable=True)
        mask[order[:drop]] = 0
    return mask.view_as(weight)


def erdos_renyi_sparsities(shapes: list[tuple[int, ...]], sparsity: float) -> list[float]:
    """Per-matrix sparsities whose total over ``shapes`` is ``sparsity``, with densities proportional to
    ``(rows + cols) / (rows * cols)`` (capped at 1: a capped matrix stays dense and the others share the rest)."""
    sizes = [math.prod(sh) for sh in shapes]
    raw = [(sh[0] + math.prod(sh[1:])) / n for sh, n in zip(shapes, sizes, strict=True)]
    budget = (1.0 - sparsity) * sum(sizes)
    dense: set[int] = set()
    while True:
        free = [i for i in range(len(shapes)) if i not in dense]
        scale = (budget - sum(sizes[i] for i in dense)) / max(1e-30, sum(raw[i] * sizes[i] for i in free))
        over = [i for i in free if raw[i] * scale > 1.0]
        if not over:
            break
        dense.update(over)
    return [0.0 if i in dense else max(0.0, 1.0 - raw[i] * scale) for i in range(len(shapes))]


def global_magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """0/1 masks of ``weights`` that together keep the ``1 - sparsity`` fraction of the pooled entries of largest
    magnitude (ties: the earlier matrix, then the lower index, kept)."""
    flat = magnitude_mask(torch.cat([w.detach().flatten() for w in weights]), sparsity)
    return [m.view_as(w) for m, w in zip(flat.split([w.numel() for w in weights]), weights, strict=True)]


class Pruner(nn.Module):
    """Masks of the named weight matrices of ``owner`` following a :class:`PruneSchedule` (call :meth:`step` after
    each optimizer step)."""

    def __init__(self, owner: nn.Module, names: list[str], schedule: PruneSchedule) -> None:
        super().__init__()
        params = dict(owner.named_parameters())
        if isinstance(names, str) or not isinstance(names, list | tuple) or \
                not all(isinstance(n, str) for n in names):
            raise ParameterError(f"Pruner takes a list of parameter names, got {names!r}; write [{names!r}] for one "
                                 "weight")
        if not names:
            raise ParameterError("Pruner needs at least one weight name to prune")
        missing = [n for n in names if n not in params]
        matrices = [n for n, p in params.items() if p.dim() == 2]
        if missing:
            raise ParameterError(f"no parameter named {missing} to prune; weight matrices of this module: "
                                 f"{matrices}")
        dup = sorted({n for n in names if list(names).count(n) > 1})
        if dup:
            raise ParameterError(f"Pruner lists {dup} more than once; name each weight matrix once")
        not_matrix = [f"{n} {tuple(params[n].shape)}" for n in names if params[n].dim() != 2]
        if not_matrix:
            raise ParameterError(f"Pruner prunes weight matrices, not {not_matrix}: zeroing a bias or an EGRU "
                                 f"threshold (a threshold of 0 fires on any positive state) is not weight pruning; "
                                 f"weight matrices of this module: {matrices}")
        self.schedule = schedule
        self.names = list(names)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        for n in self.names:
            self.register_buffer(self._key(n), torch.ones_like(params[n].detach()))

    @staticmethod
    def _key(name: str) -> str:
        return "mask_" + name.replace(".", "_")

    def mask(self, name: str) -> torch.Tensor:
        """The current mask of weight ``name``."""
        return getattr(self, self._key(name))

    @torch.no_grad()
    def step(self, owner: nn.Module) -> None:
        """One optimizer step done: update the masks on schedule and zero the pruned weights."""
        self.steps += 1
        k = int(self.steps)
        params = dict(owner.named_parameters())
        update = k >= self.schedule.start and (k % self.schedule.every == 0 or k == self.schedule.end)
        if update and k <= self.schedule.end:
            current = [params[n] * self.mask(n) for n in self.names]
            level = self.schedule.at(k)
            if self.schedule.scope == "global":
                masks = global_magnitude_masks(current, level)
            elif self.schedule.scope == "erdos_renyi":
                levels = erdos_renyi_sparsities([tuple(w.shape) for w in current], level)
                masks = [magnitude_mask(w, lv) for w, lv in zip(current, levels, strict=True)]
            else:
                masks = [magnitude_mask(w, level) for w in current]
            for n, m in zip(self.names, masks, strict=True):
                self.mask(n).copy_(m)
        for n in self.names:
            params[n].mul_(self.mask(n))


def to_csr(weight: torch.Tensor) -> torch.Tensor:
    """A (pruned) dense matrix as a ``torch.sparse_csr`` tensor (rows = output units)."""
    if weight.dim() != 2:
        raise ShapeError(f"to_csr takes a 2-D weight matrix [out, in], got shape {tuple(weight.shape)}")
    with warnings.catch_warnings():  # torch marks CSR as beta; the conversion itself is exact
        warnings.simplefilter("ignore", UserWarning)
        return weight.detach().to_sparse_csr()


def sparsity(weight: torch.Tensor) -> float:
    """Fraction of exactly-zero entries."""
    return float((weight == 0).sum()) / max(1, weight.numel())
