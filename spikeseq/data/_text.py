"""Fast, checked parsing of whitespace/comma separated numeric text tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeseq.errors import DataError


def read_table(path: str | os.PathLike, n_cols: int, *, sep: bytes | None = None, dtype=np.float64) -> np.ndarray:
    """Read a numeric table with exactly ``n_cols`` values per non-empty line into ``[rows, n_cols]``.

    A row with another number of values, a value that is not a number and (for float tables) NaN or Inf raise
    :class:`DataError` naming the file and the 1-based line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}; check the path (or --root / SPIKESEQ_DATA); `spikeseq data "
                        "check` lists what is missing") from None
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
    arr = arr.reshape(len(lines), n_cols)
    if arr.dtype.kind == "f":
        check_finite_rows(arr, path, [i for i, ln in enumerate(data.splitlines(), 1) if ln.strip()])
    return arr


def check_finite_rows(arr: np.ndarray, path: str | os.PathLike, line_numbers: list[int] | None = None) -> None:
    """Raise :class:`DataError` naming the file, the 1-based line and the column of the first NaN or Inf in the
    table ``arr`` ``[rows, cols]`` (``line_numbers[r]``: the file line of row ``r``, default ``r + 1``)."""
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    r, c = (int(v) for v in np.argwhere(bad)[0])
    line = line_numbers[r] if line_numbers is not None else r + 1
    raise DataError(
        f"{path}: line {line}, value {c + 1} is {arr[r, c]} ({int(bad.any(axis=1).sum())} rows hold NaN or Inf); "
        "every value must be a finite number: restore the file from the original archive, or delete those rows "
        "(and the matching label rows)"
    )
