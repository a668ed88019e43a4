"""UCI HAR (Anguita et al. 2013, UCI ML repository id 240): ``Inertial Signals`` windows and the 561 features.

Layout (``specs/data-formats.md`` §1.4)::

    UCI HAR Dataset/activity_labels.txt   "1 WALKING" ... "6 LAYING"
    UCI HAR Dataset/features.txt          561 lines "1 tBodyAcc-mean()-X"
    UCI HAR Dataset/<split>/X_<split>.txt          N x 561, e.g. "  2.8858451e-001 -2.0294171e-002 ..."
    UCI HAR Dataset/<split>/y_<split>.txt          N ints 1..6
    UCI HAR Dataset/<split>/subject_<split>.txt    N ints
    UCI HAR Dataset/<split>/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_<split>.txt   N x 128

Windows are 2.56 s (128 samples at 50 Hz) with 50 % overlap; ``total_acc`` in g, ``body_acc`` = total minus
gravity (0.3 Hz Butterworth), gyro in rad/s. Labels 1-6 become 0-5. :func:`write_split` writes the same files
(3-digit exponents as the original) for fixtures and subsets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikeseq.data._atomic import atomic_path
from spikeseq.data._text import read_bytes, read_class_names, read_table
from spikeseq.data.har_common import ACTIVITIES, HARWindows, check_split, dataset_root
from spikeseq.errors import DataError

SIGNALS = ("body_acc", "body_gyro", "total_acc")
UNITS = {"body_acc": "g", "body_gyro": "rad/s", "total_acc": "g"}
WINDOW = 128
N_FEATURES = 561


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The ``UCI HAR Dataset`` folder (``root`` itself or a known sub-folder; default: the data root's uci_har)."""
    return dataset_root("uci_har", root, "activity_labels.txt", ("UCI HAR Dataset", "har/uci_har/UCI HAR Dataset"))


def _labels_subjects(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    y = read_table(folder / split / f"y_{split}.txt", 1, dtype=np.int64)[:, 0]
    s = read_table(folder / split / f"subject_{split}.txt", 1, dtype=np.int64)[:, 0]
    if y.shape != s.shape:
        raise DataError(f"{folder / split}: y_{split}.txt has {y.size} rows but subject_{split}.txt {s.size}; both "
                        "hold one row per window: restore the missing rows from the original archive")
    if y.size == 0:
        raise DataError(f"{folder / split / f'y_{split}.txt'} holds no label (empty file): the {split} split has no "
                        "windows; restore the split's files from the original UCI HAR archive")
    bad = np.flatnonzero((y < 1) | (y > 6))
    if bad.size:
        raise DataError(f"{folder / split / f'y_{split}.txt'}: line {bad[0] + 1} has label {y[bad[0]]}, "
                        "expected 1..6")
    return y - 1, s


def _classes(folder: Path) -> list[str]:
    """Names of labels 0-5 from ``activity_labels.txt`` (ids 1-6, mapped by id; UCI HAR's names if it is absent)."""
    p = folder / "activity_labels.txt"
    if not p.exists() and not p.is_symlink():
        return list(ACTIVITIES)
    return read_class_names(p, range(1, len(ACTIVITIES) + 1))


def load_windows(root: str | os.PathLike | None = None, split: str = "train", *,
                 signals: Sequence[str] = SIGNALS) -> HARWindows:
    """``Inertial Signals`` of a split as :class:`HARWindows` ``[N, 128, 3 * len(signals)]``."""
    check_split(split)
    folder = resolve_root(root)
    y, subj = _labels_subjects(folder, split)
    chans, names = [], []
    for sig in signals:
        if sig not in SIGNALS:
            raise DataError(f"unknown UCI HAR signal {sig!r}; expected one of {SIGNALS}")
        for axis in "xyz":
            p = folder / split / "Inertial Signals" / f"{sig}_{axis}_{split}.txt"
            a = read_table(p, WINDOW)
            if a.shape[0] != y.size:
                raise DataError(f"{p} has {a.shape[0]} rows but y_{split}.txt has {y.size}; every file of a split "
                                "holds one row per window (the same count in X_, y_, subject_ and each Inertial "
                                "Signals file): restore the missing rows from the original archive")
            chans.append(a)
            names.append(f"{sig}_{axis} ({UNITS[sig]})")
    x = torch.from_numpy(np.stack(chans, axis=-1).astype(np.float32))
    return HARWindows(x, torch.from_numpy(y), torch.from_numpy(subj), _classes(folder), names,
                      {"dataset": "uci_har", "split": split, "rate_hz": 50, "root": str(folder)})


@dataclass
class UCIFeatures:
    """The 561-feature vectors: ``x`` float32 ``[N, 561]`` (normalised to [-1, 1] by the authors)."""

    x: torch.Tensor
    y: torch.Tensor
    subject: torch.Tensor
    names: list[str]
    classes: list[str]


def _feature_name(line: str) -> str:
    """``"1 tBodyAcc-mean()-X"`` (UCI HAR) or ``"tBodyAcc-Mean-1"`` (HAPT, no index) -> the name."""
    parts = line.split(maxsplit=1)
    return parts[1].strip() if len(parts) == 2 and parts[0].isdigit() else line.strip()


def _feature_names(path: Path) -> list[str]:
    """The names in ``features.txt``; :class:`DataError` when it is not UTF-8 text or a folder."""
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file (byte {e.start}); expected {N_FEATURES} lines "
                        "'1 tBodyAcc-mean()-X': restore it from the original archive") from None
    return [_feature_name(ln) for ln in text.splitlines() if ln.strip()]


def load_features(root: str | os.PathLike | None = None, split: str = "train") -> UCIFeatures:
    """The authors' 561 features of ``split`` as :class:`UCIFeatures`; ``DataError`` when the files disagree in rows."""
    check_split(split)
    folder = resolve_root(root)
    y, subj = _labels_subjects(folder, split)
    x = read_table(folder / split / f"X_{split}.txt", N_FEATURES)
    if x.shape[0] != y.size:
        raise DataError(f"{folder / split / f'X_{split}.txt'} has {x.shape[0]} rows but y_{split}.txt {y.size}; "
                        "both hold one row per window: restore the missing rows from the original archive")
    feat = folder / "features.txt"
    names = _feature_names(feat) if feat.exists() else [f"f{i}" for i in range(N_FEATURES)]
    return UCIFeatures(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), torch.from_numpy(subj), names,
                       _classes(folder))


def format_uci(a: np.ndarray) -> str:
    """Rows in the original style: each value as ``%15.7e`` with a 3-digit exponent, e.g. ``  2.8858451e-001``.
    NaN and Inf are refused (:class:`DataError`): the reader would refuse the file."""
    if not np.isfinite(np.asarray(a, dtype=np.float64)).all():
        raise DataError("format_uci: the array holds NaN or Inf; UCI HAR files hold finite numbers only")

    def one(v: float) -> str:
        if v == 0:
            return "  0.0000000e+000"
        exp = int(np.floor(np.log10(abs(v))))
        mant = v / 10.0**exp
        if round(abs(mant), 7) >= 10:
            mant, exp = mant / 10, exp + 1
        return f"{mant:11.7f}e{exp:+04d}"
    return "\n".join("".join(one(float(v)) for v in row) for row in np.atleast_2d(a)) + "\n"


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_split(root: str | os.PathLike, split: str, *, signals: dict[str, np.ndarray], y: np.ndarray,
                subject: np.ndarray, features: np.ndarray | None = None) -> Path:
    """Write a split in the UCI HAR layout under ``root/UCI HAR Dataset``. ``signals`` maps e.g. ``body_acc_x``
    to ``[N, 128]``; ``y`` holds 1-based labels 1..6."""
    folder = Path(root) / "UCI HAR Dataset"
    if not (folder / "activity_labels.txt").exists():
        _write(folder / "activity_labels.txt", "".join(f"{i + 1} {a}\n" for i, a in enumerate(ACTIVITIES)))
    _write(folder / split / f"y_{split}.txt", "".join(f"{int(v)}\n" for v in y))
    _write(folder / split / f"subject_{split}.txt", "".join(f"{int(v)}\n" for v in subject))
    for name, arr in signals.items():
        _write(folder / split / "Inertial Signals" / f"{name}_{split}.txt", format_uci(arr))
    if features is not None:
        _write(folder / split / f"X_{split}.txt", format_uci(features))
        if not (folder / "features.txt").exists():
            _write(folder / "features.txt", "".join(f"{i + 1} f{i + 1}\n" for i in range(features.shape[1])))
    return folder
