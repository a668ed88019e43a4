"""Human activity recognition data as fixed-length windows: HAPT (raw recordings cut UCI-HAR style), UCI HAR,
WISDM v1.1, WISDM 2019 watch, BasicMotions; per-channel normalisation; time-first collation.

Every loader returns :class:`HARWindows` (``x`` float32 ``[N, T, C]``, 0-based int64 ``y``, ``subject``,
``classes``, ``channels``). It is a torch ``Dataset`` yielding ``(x [T, C], y)``; batch it with
:func:`collate_time_first` (``x [T, B, C]``) or :func:`collate_padded` (variable lengths). Normalise with
:class:`Normalizer` fitted on the training split only.
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
        return torch.bincount(self.y, minlength=len(self.classes)).tolist()

    def normalized(self, norm: Normalizer) -> HARWindows:
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
        x = torch.as_tensor(train_x).reshape(-1, train_x.shape[-1]).double()
        if x.shape[0] == 0:
            raise ShapeError("cannot fit a Normalizer on an empty training set")
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(mean.float(), std.float())

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:
            raise ParameterError("Normalizer is not fitted: use Normalizer.fit(train_x)")
        if x.shape[-1] != self.mean.shape[0]:
            raise ShapeError(f"x has {x.shape[-1]} channels (last axis), the Normalizer was fitted on "
                             f"{self.mean.shape[0]}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    __call__ = apply

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state_dict(cls, d: dict[str, torch.Tensor]) -> Normalizer:
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
    if split not in allowed:
        raise ParameterError(f"split must be one of {tuple(allowed)}, got {split!r}")


def _root(name: str, root: str | os.PathLike | None, marker: str, alternatives: Sequence[str] = ()) -> Path:
    """Dataset folder: ``root`` itself when it holds ``marker``, else a known sub-folder of it."""
    from spikeseq.data.paths import dataset_dir, missing_files_error

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
    raise missing_files_error(name, [base / marker])


# ------------------------------------------------------------------------------------------- HAPT
def hapt_windows(
    root: str | os.PathLike | None = None, split: str = "train", *, window: int = 128, stride: int = 64,
    cache: bool | str | os.PathLike = True, test_subjects: frozenset[int] = UCI_TEST_SUBJECTS,
) -> HARWindows:
    """HAPT raw recordings cut into UCI-HAR-style windows (see :mod:`spikeseq.data.hapt`)."""
    from spikeseq.data.hapt import load_windows

    return load_windows(root, split, window=window, stride=stride, cache=cache, test_subjects=test_subjects)


# ------------------------------------------------------------------------------------------- BasicMotions
def basicmotions(root: str | os.PathLike | None = None, split: str = "train") -> HARWindows:
    """BasicMotions (UEA): 40 + 40 cases, ``x [N, 100, 6]`` (acc xyz, gyro xyz at 10 Hz), 4 classes."""
    from spikeseq.data.ucr_ts import read_ts

    check_split(split)
    folder = _root("basicmotions", root, "BasicMotions_TRAIN.ts", ("basicmotions", "har/basicmotions"))
    path = folder / f"BasicMotions_{split.upper()}.ts"
    if not path.is_file():
        from spikeseq.data.paths import missing_files_error

        raise missing_files_error("basicmotions", [path])
    ts = read_ts(path, allow_missing=False)  # BasicMotions has no gaps: a '?' would reach training as NaN
    x = torch.from_numpy(np.ascontiguousarray(ts.x.transpose(0, 2, 1), dtype=np.float32))
    # Channel order of the UEA release: 3-axis accelerometer, then 3-axis gyroscope (UEA archive description).
    channels = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    return HARWindows(x, torch.from_numpy(ts.y), torch.full((len(ts.y),), -1, dtype=torch.int64), ts.classes,
                      channels, {"dataset": "basicmotions", "split": split, "path": str(path), "rate_hz": 10})


# ------------------------------------------------------------------------------------------- others
def uci_har(root: str | os.PathLike | None = None, split: str = "train", **kw: Any) -> HARWindows:
    """UCI HAR ``Inertial Signals`` windows (see :mod:`spikeseq.data.uci_har`)."""
    from spikeseq.data.uci_har import load_windows

    return load_windows(root, split, **kw)


def wisdm(root: str | os.PathLike | None = None, split: str = "train", **kw: Any) -> HARWindows:
    """WISDM v1.1 phone accelerometer windows (see :mod:`spikeseq.data.wisdm`)."""
    from spikeseq.data.wisdm import load_v11

    return load_v11(root, split, **kw)


def banglejs(root: str | os.PathLike | None = None, split: str = "train", **kw: Any) -> HARWindows:
    """Bangle.js watch accelerometer windows (see :mod:`spikeseq.data.banglejs`; tests only, no licence)."""
    from spikeseq.data.banglejs import load_windows

    return load_windows(root, split, **kw)


def wisdm2019(root: str | os.PathLike | None = None, split: str = "train", **kw: Any) -> HARWindows:
    """WISDM 2019 watch windows, hand-oriented activities (see :mod:`spikeseq.data.wisdm`)."""
    from spikeseq.data.wisdm import load_2019

    return load_2019(root, split, **kw)


__all__ = [
    "ACTIVITIES", "HAPT_CHANNELS", "UCI_TEST_SUBJECTS", "HARWindows", "Normalizer", "banglejs", "basicmotions",
    "collate_padded", "collate_time_first", "hapt_windows", "sliding_windows", "uci_har", "wisdm", "wisdm2019",
]
