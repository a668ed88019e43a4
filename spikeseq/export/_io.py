"""Atomic file writing shared by the exporters: write to a temporary file in the target folder, then rename."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from spikeseq import _atomic
from spikeseq.errors import ExportError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed
    (:func:`spikeseq._atomic.atomic_path`; an unwritable target raises :class:`~spikeseq.errors.OutputError`)."""
    with _atomic.atomic_path(path, suffix=suffix or ".tmp") as tmp:
        yield tmp


def write_description_and_script(path: str | os.PathLike, description: dict, script_template: str,
                                 check: Callable[[Path], None], what: str) -> tuple[Path, Path]:
    """Write ``description`` as JSON at ``path`` and the build script ``script_template`` (formatted with the
    ``script`` and ``json_name`` file names) next to it as ``<path stem>.py``, both atomically. ``check`` reads the
    temporary JSON back before anything is renamed; ``what`` names the description in errors."""
    path = Path(path)
    script = path.with_suffix(".py")
    if script == path:
        raise ExportError(f"the {what} path {path} must not end in .py (the script goes there)")
    # Two renames cannot be one atomic step: the script is renamed first (inner context), the description last; if
    # renaming the description fails, the script is put back as it was, so neither file is left half-updated.
    previous = script.read_bytes() if script.is_file() else None
    script_renamed = False
    try:
        with atomic_path(path, suffix=".json.tmp") as tmp_json:
            with atomic_path(script, suffix=".py.tmp") as tmp_py:
                tmp_json.write_text(json.dumps(description))
                tmp_py.write_text(script_template.format(script=script.name, json_name=path.name))
                check(tmp_json)
            script_renamed = True
    except BaseException:
        if script_renamed:
            _restore(script, previous)
        raise
    return path, script


def _restore(path: Path, previous: bytes | None) -> None:
    """Put ``path`` back as it was before a failed two-file write (``previous``: its old bytes, ``None`` when it did
    not exist); best effort, the original error is what the caller raises."""
    with contextlib.suppress(OSError):
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            with atomic_path(path, suffix=".restore.tmp") as tmp:
                tmp.write_bytes(previous)
