"""Progress display for long data work: :mod:`spikeseq.progress` (tqdm on a terminal, else quiet), with an
explicit per-call override."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from spikeseq import progress as _p

T = TypeVar("T")


def progress(items: Iterable[T], desc: str = "", total: int | None = None, enabled: bool | None = None) -> Iterable[T]:
    """``items`` with a bar when ``enabled`` (default: :func:`spikeseq.progress.enabled`)."""
    if enabled is False:
        return items
    if enabled is None and not _p.enabled():
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return items
    return tqdm(items, total=total, desc=desc, leave=False)
