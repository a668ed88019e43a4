"""Progress bars for long loops (training, data preparation, export verification).

``progress(iterable, total=None, desc="...")`` wraps an iterable in a tqdm bar on stderr when stderr is a
terminal, and returns it unchanged otherwise (logs and CI stay quiet). ``SPIKESEQ_PROGRESS=1`` forces bars on,
``SPIKESEQ_PROGRESS=0`` forces them off. Without tqdm installed there are no bars. Any layer may import this
module: it depends on the standard library only (tqdm is imported when a bar is shown).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def enabled() -> bool:
    """Whether bars are shown: ``SPIKESEQ_PROGRESS`` if set, else whether stderr is a terminal."""
    flag = os.environ.get("SPIKESEQ_PROGRESS", "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    if flag in ("1", "true", "yes", "on"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", leave: bool = False,
             unit: str = "it") -> Iterator[T] | Iterable[T]:
    """``iterable`` with a progress bar when :func:`enabled`, else ``iterable`` itself."""
    if not enabled():
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=leave, unit=unit, file=sys.stderr, dynamic_ncols=True)
