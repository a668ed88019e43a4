"""The sktime / aeon ``.ts`` time-series classification format (UEA/UCR archive), e.g. BasicMotions.

Header lines start with ``@`` (``@problemName``, ``@dimensions``, ``@seriesLength``, ``@classLabel true A B ...``,
``@data``), ``#`` lines are comments. After ``@data`` each case is one line: the dimensions separated by ``:``,
values within a dimension by ``,``, the class label last. ``?`` is a missing value (NaN). Only equal-length
series without timestamps are supported (what BasicMotions uses): a header ``@timeStamps true`` is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikeseq.errors import DataError


@dataclass
class TSData:
    """A parsed ``.ts`` file: ``x [n_cases, n_dims, length]`` float64, ``y [n_cases]`` int64 into ``classes``."""

    x: np.ndarray  # [n_cases, n_dims, length] float64
    y: np.ndarray  # [n_cases] int64 index into classes
    classes: list[str]
    header: dict[str, str] = field(default_factory=dict)


_EXPECTED = ("expected '@' header lines (@problemName, @dimensions N, @seriesLength L, @classLabel true A B ...), "
             "@data, then one case per line: comma-separated values per dimension, dimensions and the label "
             "separated by ':'")


def _header_int(header: dict[str, str], key: str, default: int, path: Path) -> int:
    if key not in header:
        return default
    try:
        value = int(header[key])
    except ValueError:
        value = -1
    if value < 1:
        raise DataError(f"{path}: @{key} {header[key]!r} is not a positive integer; write e.g. "
                        f"'@{key} {default}' (the number the cases have)")
    return value


def read_ts(path: str | os.PathLike, *, allow_missing: bool = True) -> TSData:
    """Read a ``.ts`` classification file. Literal NaN/Inf values are refused; ``?`` (the format's missing value)
    is read as NaN, or refused with ``allow_missing=False`` (for loaders whose data has no gaps). Every problem
    raises :class:`DataError` naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}; check the path (or --root / SPIKESEQ_DATA), or "
                        "download the data set with `spikeseq data fetch basicmotions`") from None
    try:
        lines = raw.decode("utf-8", errors="strict").splitlines()
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte {raw[e.start]:#04x}); a .ts file is plain "
                        f"text: {_EXPECTED}") from None
    header: dict[str, str] = {}
    classes: list[str] = []
    rows: list[list[np.ndarray]] = []
    labels: list[str] = []
    in_data = False
    for ln_no, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not in_data:
            if not s.startswith("@"):
                raise DataError(f"{path}: line {ln_no}: expected a header line starting with '@' before @data")
            key, _, value = s[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
            elif key == "classlabel":
                parts = value.split()
                if not parts or parts[0].lower() != "true":
                    raise DataError(f"{path}: line {ln_no}: only classification files (@classLabel true ...) "
                                    "are supported; the line must read '@classLabel true <label> <label> ...'")
                classes = parts[1:]
                twice = sorted({c for c in classes if classes.count(c) > 1})
                if twice:
                    raise DataError(f"{path}: line {ln_no}: @classLabel lists {twice} more than once; each class "
                                    "name must appear once (its position is the label id)")
            elif key == "timestamps" and value.strip().lower() != "false":
                raise DataError(f"{path}: line {ln_no} reads {s!r}: series with time stamps (values written as "
                                "'(time,value)' pairs) are not supported by this reader, only equal-length series "
                                "sampled at a fixed rate; convert the file to plain values and write "
                                "'@timeStamps false' (or drop the line)")
            else:
                header[key] = value.strip()
            continue
        *dims, label = s.split(":")
        if not dims:
            raise DataError(f"{path}: line {ln_no}: a case needs its dimensions and a label separated by ':'; "
                            f"{_EXPECTED}")
        try:
            case = [np.array([np.nan if v.strip() == "?" else float(v) for v in d.split(",")]) for d in dims]
        except ValueError as e:
            raise DataError(f"{path}: line {ln_no}: non-numeric value ({e}); {_EXPECTED}") from e
        for d_i, d in enumerate(case):
            bad = np.flatnonzero(~np.isfinite(d))
            if bad.size and not (allow_missing and all(dims[d_i].split(",")[j].strip() == "?" for j in bad)):
                raise DataError(
                    f"{path}: line {ln_no} (case {len(rows)}), dimension {d_i}, value {int(bad[0]) + 1} is "
                    f"{dims[d_i].split(',')[int(bad[0])].strip()!r}: values must be finite numbers (missing values "
                    "'?' only where the data set has gaps): restore the file from the original archive")
        rows.append(case)
        labels.append(label.strip())
    if not in_data or not rows:
        raise DataError(f"{path}: no @data section with cases; {_EXPECTED}")
    n_dims = _header_int(header, "dimensions", len(rows[0]), path)
    length = _header_int(header, "serieslength", len(rows[0][0]), path)
    for i, r in enumerate(rows):
        if len(r) != n_dims or any(len(d) != length for d in r):
            raise DataError(f"{path}: case {i} has {len(r)} dimensions of lengths {[len(d) for d in r]}, expected "
                            f"{n_dims} x {length}")
    if not classes:
        classes = sorted(set(labels))
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(f"{path}: labels {unknown} are not in @classLabel {classes}")
    x = np.array(rows, dtype=np.float64)
    y = np.array([classes.index(lab) for lab in labels], dtype=np.int64)
    return TSData(x, y, classes, header)


def class_list(path: str | os.PathLike) -> list[str] | None:
    """The class list :func:`read_ts` would give ``path`` (its ``@classLabel`` names, else the sorted labels of
    its cases), from a quick scan; ``None`` when the file cannot be read (its own :func:`read_ts` says why)."""
    try:
        lines = Path(path).read_bytes().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    labels: set[str] = set()
    in_data = False
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not in_data:
            key, _, value = s[1:].partition(" ")
            if key.lower() == "classlabel" and value.split()[:1] == ["true"]:
                return value.split()[1:]
            in_data = key.lower() == "data"
            continue
        labels.add(s.rsplit(":", 1)[-1].strip())
    return sorted(labels)
