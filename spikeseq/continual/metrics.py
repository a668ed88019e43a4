"""Continual-learning metrics of an accuracy matrix ``R``.

``R[j, i]`` is the test accuracy on task ``i`` after training on tasks ``0..j``, a fraction in ``[0, 1]``
(``T x T``; entries with ``i > j`` may be NaN or anything, they are not used). As in the HLOP paper (Xiao et al.
ICLR 2024, after GEM, Lopez-Paz & Ranzato NeurIPS 2017) and Avalanche (``StreamBWT`` = minus the stream
forgetting, averaged over the tasks learned before the last one)::

    ACC = 1/T     sum_{i < T}     R[T-1, i]
    BWT = 1/(T-1) sum_{i < T-1}  (R[T-1, i] - R[i, i])

A single task has BWT 0.
"""

from __future__ import annotations

import torch

from spikeseq.errors import ContinualError


def _check(r) -> torch.Tensor:
    """``R`` as a float64 tensor; :class:`ContinualError` unless it is a square matrix of accuracies in [0, 1]."""
    try:
        r = torch.as_tensor(r, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ContinualError(f"the accuracy matrix must be a square T x T array of numbers (rows of equal length), "
                             f"got {type(r).__name__}: {e}") from None
    if r.dim() != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ContinualError(f"the accuracy matrix must be square T x T with T >= 1, got shape {tuple(r.shape)}")
    t = r.shape[0]
    low = torch.tril(torch.ones(t, t, dtype=torch.bool))
    if not bool(torch.isfinite(r[low]).all()):
        raise ContinualError("the accuracy matrix has NaN/Inf on or below the diagonal (R[j, i] with i <= j must be "
                             "measured)")
    used = r[low]
    if bool(((used < 0) | (used > 1)).any()):
        raise ContinualError(f"accuracies must be fractions, not percentages: R[j, i] (i <= j) must lie in [0, 1], "
                             f"got values in [{float(used.min())}, {float(used.max())}]; divide percentages by 100")
    return r


def acc(r) -> float:
    """Average accuracy over all tasks after the last task."""
    r = _check(r)
    return float(r[-1].mean())


def bwt(r) -> float:
    """Backward transfer: mean change of each earlier task's accuracy from just after learning it to the end."""
    r = _check(r)
    t = r.shape[0]
    if t == 1:
        return 0.0
    return float((r[-1, :-1] - torch.diagonal(r)[:-1]).mean())


def summary(r) -> dict[str, float]:
    """``{"acc": ..., "bwt": ...}`` of ``R``."""
    return {"acc": acc(r), "bwt": bwt(r)}
