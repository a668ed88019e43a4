"""Warnings for documented repairs of known file-format quirks (the data is used, the repair is announced)."""

from __future__ import annotations

import warnings


class DataRepairWarning(UserWarning):
    """A file had a known quirk that was repaired on reading; the message names the file and what was done."""


def warn_repair(message: str, stacklevel: int = 3) -> None:
    """Emit ``message`` as a :class:`DataRepairWarning` (``stacklevel`` points at the caller's caller)."""
    warnings.warn(message, DataRepairWarning, stacklevel=stacklevel)
