"""Progress display for long data work: a tqdm bar when tqdm is installed and stderr is a terminal, else quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str = "", total: int | None = None, enabled: bool | None = None) -> Iterator[T]:
    """Iterate ``items``, showing a bar when ``enabled`` (default: tqdm importable and stderr is a TTY)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is optional
            pass
        else:
            yield from tqdm(items, desc=desc, total=total, leave=False, file=sys.stderr)
            return
    yield from items
