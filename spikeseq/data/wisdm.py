"""WISDM v1.1 (Kwapisz et al. 2010) and WISDM 2019 smartwatch streams (Weiss 2019), cut into windows.

Rows (``specs/data-formats.md`` §1.6, §1.7) are ``user,activity,timestamp,x,y,z;`` (v1.1: activity names, 20 Hz
phone accelerometer in m/s^2) and ``subject,code,timestamp_ns,x,y,z;`` (2019: activity codes A..S without N, raw
files ``raw/<device>/<sensor>/data_<subject>_<sensor>_<device>.txt``, 20 Hz, accel m/s^2, gyro rad/s).

Known quirks of WISDM v1.1 and how they are handled (``strict=False``, the default, repairs them with one
:class:`~spikeseq.data.repair.DataRepairWarning` per file that counts each kind and names the first line;
``strict=True`` raises :class:`DataError` naming the file and line instead):

- several records on one line (``...;33,Jogging,...;``): split into separate records;
- a record with a missing or empty field (e.g. no z value): dropped;
- a zero timestamp: dropped.

Anything else malformed (non-numeric values, NaN or Inf, unknown activity) always raises :class:`DataError`
naming the file and line. Windows: consecutive rows with the same subject and activity form a run; a run is also
cut where the timestamp goes backwards or jumps by more than ``max_gap`` seconds; each run is cut into
``window``-sample windows with ``stride``. Splits are by subject (no official split exists): the test subjects are
given, by default the last ~20 % of the subject ids.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikeseq.data._atomic import atomic_path
from spikeseq.data._progress import progress
from spikeseq.data.har_common import HARWindows, check_split, dataset_root, sliding_windows
from spikeseq.data.repair import warn_repair
from spikeseq.errors import DataError

V11_ACTIVITIES = ["Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing"]
V11_TEST_SUBJECTS = frozenset(range(30, 37))  # last 7 of users 1..36 (spikeseq's choice, no official split)
#: WISDM 2019 ``activity_key.txt`` (there is no code N).
ACTIVITY_KEY_2019 = {
    "A": "walking", "B": "jogging", "C": "stairs", "D": "sitting", "E": "standing", "F": "typing",
    "G": "teeth", "H": "soup", "I": "chips", "J": "pasta", "K": "drinking", "L": "sandwich", "M": "kicking",
    "O": "catch", "P": "dribbling", "Q": "writing", "R": "clapping", "S": "folding",
}
#: Hand-oriented activities, as used with the smartwatch data by the L2MU / NeHAR papers (specs/models.md).
HAND_ORIENTED = ("F", "G", "H", "I", "J", "K", "L", "O", "P", "Q", "R", "S")
TEST_SUBJECTS_2019 = frozenset(range(1641, 1651))  # last 10 of 1600..1650 (spikeseq's choice)
_I64 = np.iinfo(np.int64)


@dataclass
class Records:
    """Parsed rows of one file: ``subject`` int64, ``activity`` str array, ``t`` int64 (ns), ``xyz`` float64."""

    subject: np.ndarray
    activity: np.ndarray
    t: np.ndarray
    xyz: np.ndarray
    path: Path


def parse_records(path: str | os.PathLike, *, strict: bool = False, activities: Iterable[str] | None = None,
                  ) -> Records:
    """Parse a WISDM text file (v1.1 or 2019 rows), handling the known quirks as documented above."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="strict")
    except FileNotFoundError:
        raise DataError(f"file not found: {path}; check the path (or --root / SPIKESEQ_DATA), or "
                        "download the data set with `spikeseq data fetch wisdm`") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a data file; put the original file there") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e}); expected rows 'user,activity,timestamp,x,y,z;': "
                        "re-download the file") from e
    allowed = set(activities) if activities is not None else None
    subj, act, ts, vals = [], [], [], []
    multi = dropped = zero = 0
    first: dict[str, int] = {}
    for ln_no, line in enumerate(text.splitlines(), 1):
        recs = [r for r in line.split(";") if r.strip()]
        if len(recs) > 1:
            if strict:
                raise DataError(f"{path}: line {ln_no} holds {len(recs)} records: {line[:100]!r}; pass strict=False "
                                "to split such lines")
            multi += 1
            first.setdefault("several records on one line", ln_no)
        for rec in recs:
            f = [v.strip() for v in rec.split(",")]
            if len(f) > 6 and all(v == "" for v in f[6:]):
                f = f[:6]
            if len(f) != 6 or any(v == "" for v in f):
                if len(f) > 6 or strict:
                    raise DataError(f"{path}: line {ln_no} has {len(f)} fields, expected 6 "
                                    f"(user,activity,timestamp,x,y,z): {rec[:100]!r}")
                dropped += 1
                first.setdefault("missing field", ln_no)
                continue
            try:
                s, t, x, y, z = int(f[0]), int(f[2]), float(f[3]), float(f[4]), float(f[5])
            except ValueError as e:
                raise DataError(f"{path}: line {ln_no} is not numeric where it should be ({e}): {rec[:100]!r}") \
                    from e
            if not (_I64.min <= s <= _I64.max and _I64.min <= t <= _I64.max):
                raise DataError(f"{path}: line {ln_no} has a subject or timestamp that does not fit a 64-bit "
                                f"integer: {rec[:100]!r}; the file is damaged: restore it from the original archive "
                                "or delete that record")
            if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
                raise DataError(f"{path}: line {ln_no} holds NaN or Inf ({rec[:100]!r}); x, y, z must be finite "
                                "numbers: restore the file from the original archive or delete that record")
            if allowed is not None and f[1] not in allowed:
                raise DataError(f"{path}: line {ln_no} has unknown activity {f[1]!r}; expected one of "
                                f"{sorted(allowed)}")
            if t == 0:
                if strict:
                    raise DataError(f"{path}: line {ln_no} has a zero timestamp: {rec[:100]!r}; pass strict=False "
                                    "to drop such records")
                zero += 1
                first.setdefault("zero timestamp", ln_no)
                continue
            subj.append(s)
            act.append(f[1])
            ts.append(t)
            vals.append((x, y, z))
    if multi or dropped or zero:
        warn_repair(
            f"{path}: repaired known WISDM quirks: {multi} lines with several records split, {dropped} records "
            f"with a missing field dropped, {zero} records with a zero timestamp dropped (first at lines "
            + ", ".join(f"{k}: {v}" for k, v in first.items()) + "); pass strict=True to refuse such files"
        )
    if not subj:
        raise DataError(f"{path}: no valid records; expected rows 'user,activity,timestamp,x,y,z;' (WISDM v1.1) or "
                        "'subject,code,timestamp_ns,x,y,z;' (WISDM 2019)")
    return Records(np.array(subj, np.int64), np.array(act), np.array(ts, np.int64),
                   np.array(vals, np.float64).reshape(-1, 3), path)


def runs(subject: np.ndarray, activity: np.ndarray, t: np.ndarray, max_gap_ns: float) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of constant subject and activity without backward or large time jumps."""
    n = subject.shape[0]
    if n == 0:
        return []
    dt = np.diff(t)
    cut = (subject[1:] != subject[:-1]) | (activity[1:] != activity[:-1]) | (dt <= 0) | (dt > max_gap_ns)
    edges = np.concatenate([[0], np.flatnonzero(cut) + 1, [n]])
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _windows(sig: np.ndarray, rs: list[tuple[int, int]], labels: np.ndarray, subjects: np.ndarray, window: int,
             stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ss = [], [], []
    for a, b in rs:
        st = sliding_windows(b - a, window, stride, a)
        if st.size:
            xs.append(np.stack([sig[i: i + window] for i in st]))
            ys.append(np.full(st.size, labels[a]))
            ss.append(np.full(st.size, subjects[a]))
    if not xs:
        return np.zeros((0, window, sig.shape[1]), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(ss)


def _select(x, y, s, split: str, test_subjects: Iterable[int]) -> np.ndarray:
    is_test = np.isin(s, sorted(test_subjects))
    return np.flatnonzero(is_test if split == "test" else ~is_test)


# ------------------------------------------------------------------------------------------- v1.1
def v11_file(root: str | os.PathLike | None) -> Path:
    """Path of ``WISDM_ar_v1.1_raw.txt`` under ``root`` (default: the data root's wisdm); ``DataError`` if absent."""
    folder = dataset_root("wisdm", root, "WISDM_ar_v1.1_raw.txt", ("WISDM_ar_v1.1", "har/wisdm/WISDM_ar_v1.1"))
    return folder / "WISDM_ar_v1.1_raw.txt"


def load_v11(root: str | os.PathLike | None = None, split: str = "train", *, window: int = 200, stride: int = 100,
             max_gap: float = 1.0, strict: bool = False, test_subjects: Iterable[int] = V11_TEST_SUBJECTS,
             cache: bool | str | os.PathLike = True) -> HARWindows:
    """WISDM v1.1 windows ``[N, window, 3]`` (m/s^2). Default 200 samples = 10 s at 20 Hz, the segment length of
    Kwapisz et al. 2010, with 50 % overlap. The windows of all users are cached (HDF5, keyed by the parameters
    and the file); repair warnings show when the cache is built."""
    from spikeseq.data.cache import cached, fingerprint_files

    check_split(split)
    path = v11_file(root)

    def build() -> dict[str, np.ndarray]:
        rec = parse_records(path, strict=strict, activities=V11_ACTIVITIES)
        labels = np.array([V11_ACTIVITIES.index(a) for a in rec.activity], np.int64)
        rs = runs(rec.subject, rec.activity, rec.t, max_gap * 1e9)
        x, y, s = _windows(rec.xyz, rs, labels, rec.subject, window, stride)
        return {"x": x, "y": y, "subject": s}

    params = {"dataset": "wisdm", "window": window, "stride": stride, "max_gap": max_gap, "strict": strict,
              "source": fingerprint_files([path])}
    arr, _ = cached("wisdm", "all", params, build, cache)
    x, y, s = arr["x"], arr["y"], arr["subject"]
    sel = _select(x, y, s, split, test_subjects)
    return HARWindows(torch.from_numpy(x[sel]), torch.from_numpy(y[sel]), torch.from_numpy(s[sel]),
                      list(V11_ACTIVITIES), ["acc_x (m/s^2)", "acc_y (m/s^2)", "acc_z (m/s^2)"],
                      {"dataset": "wisdm", "split": split, "rate_hz": 20, "window": window, "stride": stride,
                       "test_subjects": sorted(test_subjects), "path": str(path)})


def write_v11(path: str | os.PathLike, rows: Sequence[tuple[int, str, int, float, float, float]]) -> Path:
    """Write rows ``(user, activity, timestamp, x, y, z)`` in the v1.1 format (``...,z;`` per line), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{u},{a},{t},{x!r},{y!r},{z!r};\n" for u, a, t, x, y, z in rows))
    return Path(path)


# ------------------------------------------------------------------------------------------- 2019
def root_2019(root: str | os.PathLike | None) -> Path:
    """The ``wisdm-dataset`` folder (holding ``raw/``) under ``root``; ``DataError`` if absent."""
    return dataset_root("wisdm2019", root, "raw", ("wisdm-dataset", "har/wisdm2019/wisdm-dataset"))


def raw_2019_path(folder: Path, subject: int, sensor: str, device: str = "watch") -> Path:
    """Path of one WISDM 2019 raw file: ``raw/<device>/<sensor>/data_<subject>_<sensor>_<device>.txt``."""
    return folder / "raw" / device / sensor / f"data_{subject}_{sensor}_{device}.txt"


def subjects_2019(folder: Path, sensors: Sequence[str], device: str = "watch") -> list[int]:
    """The subjects with a ``data_<subject>_<sensor>_<device>.txt`` file of ``sensors[0]``, sorted. A file whose
    subject is not a number is skipped with a :class:`~spikeseq.data.repair.DataRepairWarning`; a subject that
    lacks the file of another sensor raises the missing-files :class:`DataError`."""
    from spikeseq.data.manifest import missing_files_error

    sensor_dir = folder / "raw" / device / sensors[0]
    subjects = []
    for f in sorted(sensor_dir.glob(f"data_*_{sensors[0]}_{device}.txt")):
        m = re.fullmatch(rf"data_(\d+)_{re.escape(sensors[0])}_{re.escape(device)}\.txt", f.name)
        if m is None:
            warn_repair(f"{f}: skipped, the name is not data_<subject>_{sensors[0]}_{device}.txt with a numeric "
                        "subject id; rename or move it", stacklevel=4)
            continue
        subjects.append(int(m.group(1)))
    if not subjects:
        raise missing_files_error("wisdm2019", [sensor_dir / f"data_<subject>_{sensors[0]}_{device}.txt"])
    missing = [raw_2019_path(folder, subj, s, device) for subj in subjects for s in sensors[1:]
               if not raw_2019_path(folder, subj, s, device).exists()]
    if missing:
        raise missing_files_error("wisdm2019", missing)
    return sorted(subjects)


def load_2019(root: str | os.PathLike | None = None, split: str = "train", *, device: str = "watch",
              sensors: Sequence[str] = ("accel", "gyro"), activities: Sequence[str] = HAND_ORIENTED,
              window: int = 40, stride: int = 20, max_gap: float = 1.0, strict: bool = False,
              test_subjects: Iterable[int] = TEST_SUBJECTS_2019, cache: bool | str | os.PathLike = True,
              ) -> HARWindows:
    """WISDM 2019 windows ``[N, window, 3 * len(sensors)]``; default: watch accel + gyro, the 12 hand-oriented
    activities (labels in the order of ``activities``), 2 s windows (40 samples at 20 Hz, as NeHAR) with 50 %
    overlap.

    Accel and gyro are separate streams with their own timestamps: per subject and activity run they are paired
    sample by sample in time order and truncated to the shorter one (both are sampled at 20 Hz). The windows of
    all subjects are cached (HDF5, keyed by the parameters and the files).
    """
    from spikeseq.data.cache import cached, fingerprint_files

    check_split(split)
    bad = [a for a in activities if a not in ACTIVITY_KEY_2019]
    if bad:
        raise DataError(f"unknown WISDM 2019 activity codes {bad}; known: {sorted(ACTIVITY_KEY_2019)}")
    folder = root_2019(root)
    subjects = subjects_2019(folder, sensors, device)
    want = set(test_subjects)

    def build() -> dict[str, np.ndarray]:
        xs, ys, ss = [], [], []
        for subject in progress(subjects, desc="WISDM 2019: reading subjects", total=len(subjects)):
            streams = [parse_records(raw_2019_path(folder, subject, s, device), strict=strict,
                                     activities=ACTIVITY_KEY_2019) for s in sensors]
            for code_i, code in enumerate(activities):
                parts = []
                for r in streams:
                    m = r.activity == code
                    rs = runs(r.subject[m], r.activity[m], r.t[m], max_gap * 1e9)
                    # keep the longest gap-free run of this activity in this stream
                    parts.append(r.xyz[m][slice(*max(rs, key=lambda ab: ab[1] - ab[0]))] if rs else np.zeros((0, 3)))
                n = min(p.shape[0] for p in parts)
                sig = np.concatenate([p[:n] for p in parts], 1)
                x, y, s = _windows(sig, [(0, n)], np.full(n, code_i), np.full(n, subject), window, stride)
                xs.append(x)
                ys.append(y)
                ss.append(s)
        return {"x": np.concatenate(xs), "y": np.concatenate(ys).astype(np.int64),
                "subject": np.concatenate(ss).astype(np.int64)}

    params = {"dataset": "wisdm2019", "device": device, "sensors": list(sensors), "activities": list(activities),
              "window": window, "stride": stride, "max_gap": max_gap, "strict": strict,
              "source": fingerprint_files(raw_2019_path(folder, subject, s, device)
                                          for subject in subjects for s in sensors)}
    arr, _ = cached("wisdm2019", "all", params, build, cache)
    sel = _select(arr["x"], arr["y"], arr["subject"], split, want)
    if sel.size == 0:
        raise DataError(f"{folder}: no {split} subjects found (test subjects: {sorted(want)}); pass test_subjects "
                        "that exist in raw/ (data_<subject>_*.txt)")
    units = {"accel": "m/s^2", "gyro": "rad/s"}
    channels = [f"{sensor}_{axis} ({units.get(sensor, '?')})" for sensor in sensors for axis in "xyz"]
    return HARWindows(torch.from_numpy(arr["x"][sel]), torch.from_numpy(arr["y"][sel]),
                      torch.from_numpy(arr["subject"][sel]), [ACTIVITY_KEY_2019[c] for c in activities], channels,
                      {"dataset": "wisdm2019", "split": split, "rate_hz": 20, "window": window, "stride": stride,
                       "device": device, "activities": list(activities), "test_subjects": sorted(want),
                       "root": str(folder)})


def write_2019_raw(folder: str | os.PathLike, subject: int, sensor: str, rows: Sequence[tuple[str, int, float, float,
                   float]], device: str = "watch") -> Path:
    """Write ``raw/<device>/<sensor>/data_<subject>_<sensor>_<device>.txt`` rows ``(code, t_ns, x, y, z)``."""
    path = raw_2019_path(Path(folder), subject, sensor, device)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{subject},{c},{t},{x!r},{y!r},{z!r};\n" for c, t, x, y, z in rows))
    return path
