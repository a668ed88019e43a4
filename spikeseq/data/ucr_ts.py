"""The sktime / aeon ``.ts`` time-series classification format (UEA/UCR archive), e.g. BasicMotions.

Header lines start with ``@`` (``@problemName``, ``@dimensions``, ``@seriesLength``, ``@classLabel true A B ...``,
``@data``), ``#`` lines are comments. After ``@data`` each case is one line: the dimensions separated by ``:``,
values within a dimension by ``,``, the class label last. ``?`` is a missing value (NaN). Only equal-length
series without timestamps are supported (what BasicMotions uses).
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


def read_ts(path: str | os.PathLike) -> TSData:
    """Parse a ``.ts`` file (format in the module docstring); ``DataError`` names the line of any malformed entry."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
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
                                    "are supported")
                classes = parts[1:]
            else:
                header[key] = value.strip()
            continue
        *dims, label = s.split(":")
        try:
            rows.append([np.array([np.nan if v.strip() == "?" else float(v) for v in d.split(",")]) for d in dims])
        except ValueError as e:
            raise DataError(f"{path}: line {ln_no}: non-numeric value ({e})") from e
        labels.append(label.strip())
    if not in_data or not rows:
        raise DataError(f"{path}: no @data section with cases")
    n_dims = int(header.get("dimensions", len(rows[0])))
    length = int(header["serieslength"]) if "serieslength" in header else len(rows[0][0])
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
