"""HAPT (Reyes-Ortiz et al. 2016, UCI ML repository id 341): raw 50 Hz phone recordings cut into UCI-HAR-style
windows.

Files (``specs/data-formats.md`` §1.5): ``RawData/acc_expXX_userYY.txt`` (g) and ``gyro_expXX_userYY.txt`` (rad/s),
three space-separated floats per row, and ``RawData/labels.txt`` rows ``exp user activity start end`` with 1-based,
inclusive sample indices. Activities 1-6 (WALKING ... LAYING, as UCI HAR) become labels 0-5; 7-12 (postural
transitions) are skipped.

Windows: every labelled segment of activities 1-6 is cut into ``window``-sample windows (default 128 = 2.56 s at
50 Hz) with ``stride`` (default 64, 50 % overlap), starting at the segment's first sample; a window never crosses
a segment boundary. Channels: acc x, y, z (g), gyro x, y, z (rad/s), unfiltered. Split by subject: UCI HAR's test
subjects {2, 4, 9, 10, 12, 13, 18, 20, 24}, all others train. The windows of all subjects are cached in HDF5
(keyed by the parameters and the files' sizes and modification times).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from spikeseq.data._progress import progress
from spikeseq.data._text import read_table, read_table_lines
from spikeseq.data.har_common import ACTIVITIES, HAPT_CHANNELS, UCI_TEST_SUBJECTS, HARWindows, check_split, dataset_root
from spikeseq.data.har_common import sliding_windows as _sliding
from spikeseq.errors import DataError

RATE_HZ = 50


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The ``HAPT Data Set`` folder (accepts the folder itself, its parent, or the data root)."""
    return dataset_root("hapt", root, "RawData/labels.txt", ("HAPT Data Set", "hapt/HAPT Data Set",
                                                      "har/hapt/HAPT Data Set"))


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """``labels.txt`` as int64 ``[rows, 5]``: exp, user, activity, start, end (1-based inclusive).

    :class:`DataError` naming the line of an invalid row (activity outside 1..12, start < 1, end < start) or of a
    row repeated (the same segment twice would double its windows).
    """
    lab, lines = read_table_lines(path, 5, dtype=np.int64)
    if lab.shape[0] == 0:
        raise DataError(f"{path} holds no 'exp user activity start end' row (empty file); restore it from the "
                        "original HAPT archive")
    bad = np.flatnonzero((lab[:, 3] < 1) | (lab[:, 4] < lab[:, 3]) | (lab[:, 2] < 1) | (lab[:, 2] > 12)
                         | (lab[:, 0] < 1) | (lab[:, 1] < 1))
    if bad.size:
        raise DataError(f"{path}: line {lines[bad[0]]} is not a valid 'exp user activity start end' row: "
                        f"{lab[bad[0]].tolist()}; exp and user must be >= 1, activity 1..12, start >= 1 and end >= "
                        "start (1-based, inclusive)")
    _check_unique_rows(path, lab, lines)
    _check_no_overlap(path, lab, lines)
    return lab


def _check_no_overlap(path: str | os.PathLike, lab: np.ndarray, lines: list[int]) -> None:
    """:class:`DataError` naming both lines of the first two segments of one session that share samples (the
    HAPT release labels every sample at most once; an overlap gives the shared samples two activities)."""
    order = np.lexsort((lab[:, 4], lab[:, 3], lab[:, 1], lab[:, 0]))
    s = lab[order]
    same = (s[1:, 0] == s[:-1, 0]) & (s[1:, 1] == s[:-1, 1])
    bad = np.flatnonzero(same & (s[1:, 3] <= s[:-1, 4]))
    if bad.size:
        a, b = int(order[bad[0]]), int(order[bad[0] + 1])
        raise DataError(f"{path}: line {lines[b]} ({' '.join(map(str, lab[b].tolist()))}) overlaps line {lines[a]} "
                        f"({' '.join(map(str, lab[a].tolist()))}; {bad.size} overlapping pairs in all): samples "
                        f"{lab[b, 3]}..{min(lab[a, 4], lab[b, 4])} of exp {lab[a, 0]} user {lab[a, 1]} would get two "
                        "labels; each sample belongs to at most one segment: restore the file from the original "
                        "HAPT archive or fix those rows")


def _check_unique_rows(path: str | os.PathLike, lab: np.ndarray, lines: list[int]) -> None:
    """:class:`DataError` naming both lines of the first row that appears twice."""
    counts = np.unique(lab, axis=0, return_counts=True)[1]
    if (counts == 1).all():
        return
    seen: dict[tuple[int, ...], int] = {}
    for r, row in enumerate(map(tuple, lab.tolist())):
        if row in seen:
            raise DataError(f"{path}: line {lines[r]} repeats line {lines[seen[row]]} ({' '.join(map(str, row))}; "
                            f"{int((counts - 1).sum())} repeated rows in all); each labelled segment must appear "
                            "once (twice would double its windows): delete the repeated rows or restore the file")
        seen[row] = r


def read_session(folder: Path, exp: int, user: int) -> np.ndarray:
    """``[n, 6]`` float32 acc (g) + gyro (rad/s) of one session."""
    acc_p = folder / f"acc_exp{exp:02d}_user{user:02d}.txt"
    gyr_p = folder / f"gyro_exp{exp:02d}_user{user:02d}.txt"
    acc, gyr = read_table(acc_p, 3), read_table(gyr_p, 3)
    if acc.shape[0] != gyr.shape[0]:
        raise DataError(f"{acc_p} has {acc.shape[0]} rows but {gyr_p} has {gyr.shape[0]}; they must match (one "
                        "row per 50 Hz sample of the same session): restore both from the original HAPT archive")
    return np.concatenate([acc, gyr], axis=1).astype(np.float32)


def _check_session_files(raw: Path, lab: np.ndarray, exp: int, user: int) -> None:
    """:class:`DataError` when labels.txt labels a session whose recording files are missing (naming the files and
    the count of label rows), before a bare file-not-found."""
    names = [f"{kind}_exp{exp:02d}_user{user:02d}.txt" for kind in ("acc", "gyro")]
    missing = [n for n in names if not os.path.lexists(raw / n)]
    if missing:
        n_rows = int(((lab[:, 0] == exp) & (lab[:, 1] == user)).sum())
        raise DataError(f"{raw / 'labels.txt'} labels session exp {exp} user {user} ({n_rows} rows), but "
                        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from {raw}; restore "
                        "the session files from the original HAPT archive (`spikeseq data fetch hapt`), or delete "
                        "that session's rows from labels.txt")


def _build(folder: Path, window: int, stride: int) -> dict[str, np.ndarray]:
    raw = folder / "RawData"
    lab = read_labels(raw / "labels.txt")
    xs, ys, subj, exps, starts = [], [], [], [], []
    sessions = sorted({(int(e), int(u)) for e, u in lab[:, :2]})
    for exp, user in progress(sessions, desc="HAPT: reading sessions", total=len(sessions)):
        _check_session_files(raw, lab, exp, user)
        sig = read_session(raw, exp, user)
        rows = lab[(lab[:, 0] == exp) & (lab[:, 1] == user)]
        for e, u, act, start, end in rows:
            if end > sig.shape[0]:
                raise DataError(f"{raw / 'labels.txt'}: segment exp {e} user {u} ends at sample {end} but the "
                                f"session has {sig.shape[0]} rows; restore the session files or the labels.txt row "
                                "from the original HAPT archive")
            if not 1 <= act <= 6:
                continue
            s = _sliding(int(end - start + 1), window, stride, int(start - 1))
            if s.size == 0:
                continue
            xs.append(np.stack([sig[i: i + window] for i in s]))
            ys.append(np.full(s.size, act - 1))
            subj.append(np.full(s.size, user))
            exps.append(np.full(s.size, exp))
            starts.append(s)
    if not xs:
        raise DataError(f"{raw}: no labelled segment of activities 1-6 is long enough for {window}-sample windows; "
                        "pass a smaller window")
    return {"x": np.concatenate(xs), "y": np.concatenate(ys).astype(np.int64),
            "subject": np.concatenate(subj).astype(np.int64), "experiment": np.concatenate(exps).astype(np.int64),
            "start": np.concatenate(starts).astype(np.int64)}


def load_windows(
    root: str | os.PathLike | None = None, split: str = "train", *, window: int = 128, stride: int = 64,
    cache: bool | str | os.PathLike = True, test_subjects: frozenset[int] = UCI_TEST_SUBJECTS,
) -> HARWindows:
    """Windows of one split (``split`` "train", "test" or "all") as :class:`HARWindows` ``[N, window, 6]``."""
    from spikeseq.data.cache import cached, fingerprint_files

    check_split(split, ("train", "test", "all"))
    folder = resolve_root(root)
    raw = folder / "RawData"
    params = {"dataset": "hapt", "window": int(window), "stride": int(stride),
              "source": fingerprint_files(sorted(raw.glob("*.txt")))}
    arrays, _ = cached("hapt", "all", params, lambda: _build(folder, window, stride), cache)
    is_test = np.isin(arrays["subject"], sorted(test_subjects))
    sel = np.flatnonzero(is_test if split == "test" else ~is_test) if split != "all" else slice(None)
    if split != "all" and sel.size == 0:
        users = sorted(set(arrays["subject"].tolist()))
        raise DataError(f"{raw}: the {split} split is empty: no labelled session of a {split} subject (test subjects "
                        f"{sorted(test_subjects)}, train: all others), the labels.txt sessions are of users {users}; "
                        "restore the missing sessions from the original HAPT archive (`spikeseq data fetch hapt`), or "
                        "pass other test_subjects")
    meta = {"dataset": "hapt", "split": split, "rate_hz": RATE_HZ, "window": window, "stride": stride,
            "test_subjects": sorted(test_subjects), "root": str(folder),
            "experiment": arrays["experiment"][sel], "start": arrays["start"][sel]}
    return HARWindows(torch.from_numpy(np.ascontiguousarray(arrays["x"][sel])), torch.from_numpy(arrays["y"][sel]),
                      torch.from_numpy(arrays["subject"][sel]), list(ACTIVITIES),
                      [c + (" (g)" if c.startswith("acc") else " (rad/s)") for c in HAPT_CHANNELS], meta)
