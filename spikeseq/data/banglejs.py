"""A small Bangle.js wrist-watch accelerometer set (``../shared/data/har/banglejs_watch``), cut into windows.

Layout: ``Custom Dataset/Raw Data/acc_expXX_userYY.txt`` with a header ``time,acc_x,acc_y,acc_z`` and rows
``HH:MM:SS.fff,x,y,z;`` (50 Hz, g, +-8 g range); ``Custom Dataset/labels.csv`` rows ``exp user class start end``
(1-based inclusive sample indices, as HAPT); ``classnames.csv`` rows ``id name`` (0 running, 1 walking, 2 sitting,
3 lying). No licence is stated: use it for tests only. Windows as HAPT (128 samples, stride 64, within a
segment); split by user: the last user is the test split.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from spikeseq.data._text import read_bytes, read_class_names, read_table_lines
from spikeseq.data.har_common import HARWindows, check_split, dataset_root, sliding_windows
from spikeseq.data.manifest import missing_files_error
from spikeseq.errors import DataError


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding ``labels.csv`` (``root`` itself or a known sub-folder; default: the data root's banglejs)."""
    return dataset_root("banglejs", root, "labels.csv", ("Custom Dataset", "banglejs_watch/Custom Dataset",
                                                 "har/banglejs_watch/Custom Dataset"))


def read_recording(path: Path) -> np.ndarray:
    """``[n, 3]`` float32 acceleration (g); the time column is dropped (the rate is 50 Hz)."""
    data = read_bytes(path, fix="the Bangle.js set has Raw Data/acc_expXX_userYY.txt for every session in "
                                "labels.csv: restore the file or drop its rows from labels.csv")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file (byte {e.start}); expected the header "
                        "'time,acc_x,acc_y,acc_z' and rows 'HH:MM:SS.fff,x,y,z;'") from None
    if not lines or not lines[0].startswith("time"):
        raise DataError(f"{path}: expected the header 'time,acc_x,acc_y,acc_z'")
    rows = []
    for i, ln in enumerate(lines[1:], 2):
        f = ln.strip().rstrip(";").split(",")
        if not ln.strip():
            continue
        if len(f) != 4:
            raise DataError(f"{path}: line {i} has {len(f)} fields, expected 4 (time,x,y,z): {ln[:80]!r}")
        try:
            rows.append((float(f[1]), float(f[2]), float(f[3])))
        except ValueError as e:
            raise DataError(f"{path}: line {i} is not numeric ({e}); expected 'HH:MM:SS.fff,x,y,z;' with x, y, z "
                            "in g") from e
        if not all(math.isfinite(v) for v in rows[-1]):
            raise DataError(f"{path}: line {i} holds NaN or Inf ({ln.strip()[:80]!r}); every acceleration must be "
                            "a finite number: restore the file or delete that line")
    return np.array(rows, np.float32).reshape(-1, 3)


def read_labels(path: Path) -> tuple[np.ndarray, list[int]]:
    """``labels.csv`` as int64 ``[rows, 5]`` (exp, user, class, start, end; 1-based inclusive) and the file line of
    each row; :class:`DataError` naming the line of a row with start < 1 or end < start. (The real file ends
    without a final newline, so none is required.)"""
    lab, lines = read_table_lines(path, 5, dtype=np.int64, final_newline=False)
    bad = np.flatnonzero((lab[:, 3] < 1) | (lab[:, 4] < lab[:, 3]))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}: line {lines[i]} is not a valid 'exp user class start end' row: {lab[i].tolist()}; "
                        "start must be >= 1 and end >= start (1-based, inclusive sample indices): fix that row or "
                        "restore the file")
    return lab, lines


def read_classes(path: Path) -> list[str]:
    """``classnames.csv`` (``id name`` rows, ids 0..n-1) as names ordered by id."""
    if not path.exists() and not path.is_symlink():
        raise missing_files_error("banglejs", [path])
    return read_class_names(path)


def load_windows(root: str | os.PathLike | None = None, split: str = "train", *, window: int = 128,
                 stride: int = 64, test_users: frozenset[int] | None = None) -> HARWindows:
    """Windows ``x [N, window, 3]`` (g, 50 Hz) of one split (``"train"``, ``"test"``, ``"all"``), split by user.

    ``test_users`` defaults to the last user. Raises ``DataError`` when a label segment does not fit its recording
    or the split has no windows.
    """
    check_split(split, ("train", "test", "all"))
    folder = resolve_root(root)
    lab, lines = read_labels(folder / "labels.csv")
    classes = read_classes(folder / "classnames.csv")
    users = sorted({int(u) for u in lab[:, 1]})
    test = set(test_users) if test_users is not None else {users[-1]}
    xs, ys, ss = [], [], []
    for exp, user in sorted({(int(e), int(u)) for e, u in lab[:, :2]}):
        if split != "all" and (user in test) != (split == "test"):
            continue
        sig = read_recording(folder / "Raw Data" / f"acc_exp{exp:02d}_user{user:02d}.txt")
        for r in np.flatnonzero((lab[:, 0] == exp) & (lab[:, 1] == user)):
            _, _, cls, start, end = lab[r]
            if end > sig.shape[0] or not 0 <= cls < len(classes):
                raise DataError(f"{folder / 'labels.csv'}: line {lines[r]}, segment {exp} {user} {cls} {start} {end} "
                                f"does not fit the recording ({sig.shape[0]} rows) or the {len(classes)} classes; "
                                "each row must be "
                                "'exp user class start end' with 1-based inclusive sample indices inside the "
                                "recording and a class id listed in classnames.csv")
            st = sliding_windows(int(end - start + 1), window, stride, int(start - 1))
            if st.size:
                xs.append(np.stack([sig[i: i + window] for i in st]))
                ys.append(np.full(st.size, cls, np.int64))
                ss.append(np.full(st.size, user, np.int64))
    if not xs:
        raise DataError(f"{folder}: no windows for split {split!r}: no labelled segment of that split's users is at "
                        f"least {window} samples long; pass a smaller window or other test_users")
    return HARWindows(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                      torch.from_numpy(np.concatenate(ss)), classes, ["acc_x (g)", "acc_y (g)", "acc_z (g)"],
                      {"dataset": "banglejs", "split": split, "rate_hz": 50, "window": window, "stride": stride,
                       "test_users": sorted(test), "root": str(folder)})
