"""Warnings for documented repairs of known file-format quirks (the data is used, the repair is announced)."""

from __future__ import annotations

import warnings


class DataRepairWarning(UserWarning):
    """A file had a known quirk that was repaired on reading; the message names the file and what was done."""


class DataIncompleteWarning(DataRepairWarning):
    """The copy of a dataset is incomplete or damaged (e.g. a class without any recording), yet it still loads.

    Unlike a documented repair of a quirk that the original files have, this says the local copy differs from
    the original: ``spikeseq data check`` counts each one as a problem (exit status 1 and the summary line).
    """


def warn_repair(message: str, stacklevel: int = 3) -> None:
    """Emit ``message`` as a :class:`DataRepairWarning` (``stacklevel`` points at the caller's caller)."""
    warnings.warn(message, DataRepairWarning, stacklevel=stacklevel)


def warn_incomplete(message: str, stacklevel: int = 3) -> None:
    """Emit ``message`` as a :class:`DataIncompleteWarning` (``stacklevel`` as in :func:`warn_repair`)."""
    warnings.warn(message, DataIncompleteWarning, stacklevel=stacklevel)
