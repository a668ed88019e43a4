"""Fast, checked parsing of whitespace/comma separated numeric text tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeseq.errors import DataError


def read_table(path: str | os.PathLike, n_cols: int, *, sep: bytes | None = None, dtype=np.float64) -> np.ndarray:
    """Read a numeric table with exactly ``n_cols`` values per non-empty line into ``[rows, n_cols]``.

    A row with another number of values raises :class:`DataError` naming the file and the 1-based line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    if sep is not None:
        data = data.replace(sep, b" ")
    lines = [ln for ln in data.splitlines() if ln.strip()]
    tokens = data.split()
    if len(tokens) != n_cols * len(lines):
        for i, ln in enumerate(data.splitlines(), 1):
            k = len(ln.split())
            if k and k != n_cols:
                raise DataError(f"{path}: line {i} has {k} values, expected {n_cols}: {ln[:80]!r}")
    try:
        arr = np.array(tokens, dtype=dtype)
    except ValueError as e:
        for i, ln in enumerate(data.splitlines(), 1):
            try:
                np.array(ln.split(), dtype=dtype)
            except ValueError:
                raise DataError(f"{path}: line {i} is not numeric: {ln[:80]!r}") from e
        raise DataError(f"{path}: not a numeric table ({e})") from e
    return arr.reshape(len(lines), n_cols)
