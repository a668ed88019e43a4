"""Target-mapped energy (placeholder, filled below)."""

from __future__ import annotations


def mapped_energy(*args, **kwargs):
    raise NotImplementedError
