"""Fast, checked parsing of whitespace/comma separated numeric text tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeseq.data.repair import warn_repair
from spikeseq.errors import DataError


def read_table(path: str | os.PathLike, n_cols: int, *, sep: bytes | None = None, dtype=np.float64,
               final_newline: bool = True) -> np.ndarray:
    """Read a numeric table with exactly ``n_cols`` values per non-empty line into ``[rows, n_cols]``
    (:func:`read_table_lines` without the line numbers)."""
    return read_table_lines(path, n_cols, sep=sep, dtype=dtype, final_newline=final_newline)[0]


def read_table_lines(path: str | os.PathLike, n_cols: int, *, sep: bytes | None = None, dtype=np.float64,
                     final_newline: bool = True) -> tuple[np.ndarray, list[int]]:
    """Read a numeric table with exactly ``n_cols`` values per non-empty line into ``[rows, n_cols]``.

    Every line is checked: a row with another number of values, a value that is not a number and (for float
    tables) NaN or Inf raise :class:`DataError` naming the file and the 1-based line. With ``final_newline`` (the
    default; pass False for files known to lack one, like the Bangle.js ``labels.csv``) a non-empty file that does
    not end with a newline gets a :class:`~spikeseq.data.repair.DataRepairWarning`: it may be truncated in the
    middle of its last value. Returns the table and the 1-based file line of each row (for later messages).
    """
    path = Path(path)
    data = read_bytes(path)
    if sep is not None:
        data = data.replace(sep, b" ")
    all_lines = data.splitlines()
    line_numbers = [i for i, ln in enumerate(all_lines, 1) if ln.strip()]
    _check_counts(path, all_lines, line_numbers, n_cols)
    if final_newline and data.strip() and not data.endswith((b"\n", b"\r")):
        warn_repair(f"{path} does not end with a newline: the file may be truncated (its last line, line "
                    f"{len(all_lines)}, may have lost digits of its last value); restore it from the original "
                    "archive if its size differs from the original's")
    tokens = data.split()
    try:
        arr = np.array(tokens, dtype=dtype)
    except (ValueError, OverflowError) as e:
        for i in line_numbers:
            try:
                np.array(all_lines[i - 1].split(), dtype=dtype)
            except (ValueError, OverflowError) as e2:
                raise DataError(f"{path}: line {i} is not numeric ({np.dtype(dtype).name} values expected: {e2}): "
                                f"{all_lines[i - 1][:80]!r}; restore the file from the original archive or fix "
                                "that line") from e
        raise DataError(f"{path}: not a numeric table ({e})") from e
    arr = arr.reshape(len(line_numbers), n_cols)
    if arr.dtype.kind == "f":
        check_finite_rows(arr, path, line_numbers)
    return arr, line_numbers


def read_bytes(path: Path, fix: str | None = None) -> bytes:
    """The bytes of data file ``path``; :class:`DataError` when it is missing or not a regular file (``fix``: the
    dataset's own advice for both cases, instead of the generic one)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}; " + (fix or "check the path (or --root / SPIKESEQ_DATA); "
                                                        "`spikeseq data check` lists what is missing")) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a data file; " + (fix or "put the original file there "
                                                                     "(`spikeseq data check` lists what is "
                                                                     "missing)")) from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({e}); check the file and its permissions") from e


def _check_counts(path: Path, lines: list[bytes], line_numbers: list[int], n_cols: int) -> None:
    """:class:`DataError` naming the first non-empty line whose number of values is not ``n_cols``."""
    for i in line_numbers:
        k = len(lines[i - 1].split())
        if k != n_cols:
            raise DataError(f"{path}: line {i} has {k} values, expected {n_cols}: {lines[i - 1][:80]!r}; restore "
                            "the file from the original archive or fix that line")


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


def read_class_names(path: str | os.PathLike, ids: range | None = None) -> list[str]:
    """Class names of an ``id name`` side file (UCI HAR ``activity_labels.txt``, Bangle.js ``classnames.csv``),
    ordered by id, whatever the line order.

    ``ids``: the ids the file must list, each exactly once (default: ``0 .. lines - 1``). A line without a name,
    an id that is not an integer, a repeated id, ids other than ``ids`` or a file that is not UTF-8 raise
    :class:`DataError` naming the file (and the line).
    """
    path = Path(path)
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file (byte {e.start}); expected lines 'id name': restore it from "
                        "the original archive") from None
    names: dict[int, str] = {}
    for i, ln in enumerate(text.splitlines(), 1):
        parts = ln.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].lstrip("-").isdigit():
            raise DataError(f"{path}: line {i} is not 'id name': {ln[:80]!r}; every line holds a class id and its "
                            "name: restore the file from the original archive")
        k = int(parts[0])
        if k in names:
            raise DataError(f"{path}: line {i} repeats class id {k} ({names[k]!r} and {parts[1].strip()!r}); each "
                            "id must appear once: restore the file from the original archive")
        names[k] = parts[1].strip()
    if not names:
        raise DataError(f"{path} holds no 'id name' line (empty file); restore it from the original archive")
    want = ids if ids is not None else range(len(names))
    if sorted(names) != list(want):
        raise DataError(f"{path}: lists class ids {sorted(names)}, expected exactly {list(want)} (one line 'id name' "
                        "per class of the labels): restore the file from the original archive")
    return [names[k] for k in want]
