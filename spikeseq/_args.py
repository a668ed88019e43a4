"""``argparse`` types that range-check numeric command-line options (standard library only).

A bad value is refused while the command line is parsed, before anything is read or written, and argparse names
the option: ``spikeseq export: error: argument --samples: must be an integer >= 1, got '-3'``.
"""

from __future__ import annotations

import argparse
import math


def _int(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: samples, processes, repetitions, sizes)."""
    return _int(text, 1, ">= 1")


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (options where 0 means "the default", e.g. ``--threads 0``)."""
    return _int(text, 0, ">= 0 (0: the default)")


def positive_float(text: str) -> float:
    """A finite number > 0 (time steps, rates, factors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1] (densities, spike probabilities)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value
