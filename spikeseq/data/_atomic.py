"""Atomic file writing for the data layer: :func:`spikeseq._atomic.atomic_path` with the ``.part`` suffix.

An interrupted write leaves at most a ``.<name>.<random>.part`` file, never something that looks complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from spikeseq import _atomic


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it."""
    with _atomic.atomic_path(path, suffix=".part") as tmp:
        yield tmp
