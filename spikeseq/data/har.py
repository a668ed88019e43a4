"""Human activity recognition data as fixed-length windows: HAPT (raw recordings cut UCI-HAR style), UCI HAR,
WISDM v1.1, WISDM 2019 watch, BasicMotions; per-channel normalisation; time-first collation.

Every loader returns :class:`HARWindows` (``x`` float32 ``[N, T, C]``, 0-based int64 ``y``, ``subject``,
``classes``, ``channels``). It is a torch ``Dataset`` yielding ``(x [T, C], y)``; batch it with
:func:`collate_time_first` (``x [T, B, C]``) or :func:`collate_padded` (variable lengths). Normalise with
:class:`Normalizer` fitted on the training split only. The shared pieces live in
:mod:`spikeseq.data.har_common`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeseq.data.har_common import (
    ACTIVITIES,
    HAPT_CHANNELS,
    UCI_TEST_SUBJECTS,
    HARWindows,
    Normalizer,
    check_split,
    collate_padded,
    collate_time_first,
    dataset_root,
    sliding_windows,
)
from spikeseq.data.manifest import missing_files_error
from spikeseq.errors import DataError


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
    folder = dataset_root("basicmotions", root, "BasicMotions_TRAIN.ts", ("basicmotions", "har/basicmotions"))
    path = folder / f"BasicMotions_{split.upper()}.ts"
    if not path.is_file():
        raise missing_files_error("basicmotions", [path], root=root)
    ts = read_ts(path, allow_missing=False)  # BasicMotions has no gaps: a '?' would reach training as NaN
    _check_same_classes(path, ts.classes, folder / f"BasicMotions_{'TEST' if split == 'train' else 'TRAIN'}.ts")
    # Channel order of the UEA release: 3-axis accelerometer, then 3-axis gyroscope (UEA archive description).
    channels = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    if ts.x.shape[1] != len(channels):
        raise DataError(f"{path}: the cases have {ts.x.shape[1]} dimensions, but BasicMotions has {len(channels)} "
                        f"({', '.join(channels)}); the file is not the BasicMotions release or was edited: restore it "
                        "with `spikeseq data fetch basicmotions`")
    x = torch.from_numpy(np.ascontiguousarray(ts.x.transpose(0, 2, 1), dtype=np.float32))
    return HARWindows(x, torch.from_numpy(ts.y), torch.full((len(ts.y),), -1, dtype=torch.int64), ts.classes,
                      channels, {"dataset": "basicmotions", "split": split, "path": str(path), "rate_hz": 10})


def _check_same_classes(path: Path, classes: list[str], other: Path) -> None:
    """:class:`DataError` when the other split's file numbers the classes differently (each ``.ts`` file takes
    its ids from its own ``@classLabel`` line, or from its sorted labels when the line is missing), so label 0
    would mean different classes in train and test. A missing or unreadable other file is left to its own load."""
    from spikeseq.data.ucr_ts import class_list

    theirs = class_list(other) if other.is_file() else None
    if theirs is not None and theirs != classes:
        raise DataError(f"{path} numbers its classes {classes} but {other} numbers them {theirs}; both splits must "
                        "list the same classes in the same order (the @classLabel line of the original release: "
                        "Standing Running Walking Badminton): restore the files from the original archive")


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
