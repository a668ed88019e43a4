"""What every human-activity-recognition loader shares: the :class:`HARWindows` split, per-channel
:class:`Normalizer`, time-first collation, window cutting and the dataset-folder lookup (:func:`dataset_root`).
The per-dataset loaders import this module; :mod:`spikeseq.data.har` is the entry point that lists them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeseq.data.events import pad_sequences
from spikeseq.data.manifest import dataset_dir, missing_files_error
from spikeseq.errors import DataError, ParameterError, ShapeError

ACTIVITIES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
#: UCI HAR / HAPT test subjects (UCI HAR ``subject_test.txt``; specs/data-formats.md §1.4).
UCI_TEST_SUBJECTS = frozenset({2, 4, 9, 10, 12, 13, 18, 20, 24})
HAPT_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


@dataclass
class HARWindows(torch.utils.data.Dataset):
    """Windows of one split: ``x`` float32 ``[N, T, C]``, ``y`` int64 ``[N]`` (0-based), ``subject`` int64 ``[N]``
    (-1 where unknown), ``classes[y]`` names, ``channels[c]`` names (with units), ``meta`` provenance."""

    x: torch.Tensor
    y: torch.Tensor
    subject: torch.Tensor
    classes: list[str]
    channels: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.dim() != 3 or self.x.shape[0] != self.y.shape[0] or self.subject.shape[0] != self.y.shape[0]:
            raise ShapeError(f"HARWindows needs x [N, T, C] and y, subject [N]; got {tuple(self.x.shape)}, "
                             f"{tuple(self.y.shape)}, {tuple(self.subject.shape)}")
        if self.x.shape[2] != len(self.channels):
            raise ShapeError(f"x has {self.x.shape[2]} channels but {len(self.channels)} channel names")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])

    def class_counts(self) -> list[int]:
        """Number of windows per class, indexed like ``classes``."""
        return torch.bincount(self.y, minlength=len(self.classes)).tolist()

    def normalized(self, norm: Normalizer) -> HARWindows:
        """A copy with ``x`` standardised by ``norm`` (``meta["normalized"] = True``)."""
        return HARWindows(norm.apply(self.x), self.y, self.subject, self.classes, self.channels,
                          {**self.meta, "normalized": True})


class Normalizer:
    """Per-channel standardisation ``(x - mean) / std`` with statistics of the training split only.

    ``fit`` takes ``[N, T, C]`` (or any tensor with channels last); ``apply`` works on any channels-last tensor,
    e.g. ``[N, T, C]`` or time-first batches ``[T, B, C]``. Channels with zero spread get std 1.
    """

    def __init__(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, train_x: torch.Tensor) -> Normalizer:
        """Per-channel mean and std (population) of ``train_x [..., C]``; ``ShapeError`` when it is empty."""
        x = torch.as_tensor(train_x).reshape(-1, train_x.shape[-1]).double()
        if x.shape[0] == 0:
            raise ShapeError("cannot fit a Normalizer on an empty training set")
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(mean.float(), std.float())

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` on a channels-last ``x``; ``ParameterError`` if unfitted, ``ShapeError`` on bad C."""
        if self.mean is None or self.std is None:
            raise ParameterError("Normalizer is not fitted: use Normalizer.fit(train_x)")
        if x.shape[-1] != self.mean.shape[0]:
            raise ShapeError(f"x has {x.shape[-1]} channels (last axis), the Normalizer was fitted on "
                             f"{self.mean.shape[0]}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    __call__ = apply

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"mean": [C], "std": [C]}`` for checkpoints."""
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state_dict(cls, d: dict[str, torch.Tensor]) -> Normalizer:
        """The Normalizer saved by :meth:`state_dict`."""
        return cls(d["mean"], d["std"])


def collate_time_first(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(x [T, C], y), ...]`` -> ``(x [T, B, C], y [B])``; all samples must have the same length."""
    xs = [b[0] for b in batch]
    if len({tuple(x.shape) for x in xs}) != 1:
        raise ShapeError("samples have different shapes; use collate_padded for variable lengths")
    return torch.stack(xs, 1), torch.as_tensor([int(b[1]) for b in batch], dtype=torch.int64)


def collate_padded(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[(x [T_i, C], y), ...]`` -> ``(x [T_max, B, C], y [B], lengths [B])`` zero-padded at the end."""
    x, lengths = pad_sequences([b[0] for b in batch])
    return x, torch.as_tensor([int(b[1]) for b in batch], dtype=torch.int64), lengths


def sliding_windows(n: int, window: int, stride: int, start: int = 0) -> np.ndarray:
    """Start indices of the windows ``[s, s+window)`` that fit in ``[start, start+n)``."""
    if window < 1 or stride < 1:
        raise ParameterError(f"window and stride must be >= 1, got {window}, {stride}")
    if n < window:
        return np.zeros(0, np.int64)
    return start + np.arange(0, n - window + 1, stride, dtype=np.int64)


def check_split(split: str, allowed: Sequence[str] = ("train", "test")) -> None:
    """:class:`~spikeseq.errors.ParameterError` unless ``split`` is one of ``allowed``."""
    if split not in allowed:
        raise ParameterError(f"split must be one of {tuple(allowed)}, got {split!r}")


def dataset_root(name: str, root: str | os.PathLike | None, marker: str, alternatives: Sequence[str] = ()) -> Path:
    """Dataset folder: ``root`` itself when it holds ``marker``, else a known sub-folder of it."""
    base = dataset_dir(name) if root is None else Path(root)
    for cand in (base, *(base / a for a in alternatives)):
        if (cand / marker).exists():
            return cand
    if root is not None:
        try:
            sub = dataset_dir(name, root)
        except DataError:
            sub = None
        if sub is not None and (sub / marker).exists():
            return sub
    raise missing_files_error(name, [base / marker], root=root)


__all__ = [
    "ACTIVITIES", "HAPT_CHANNELS", "UCI_TEST_SUBJECTS", "HARWindows", "Normalizer", "check_split",
    "collate_padded", "collate_time_first", "dataset_root", "sliding_windows",
]
