"""Counters for spikeseq modules beyond plain neurons (LMU memory, delays, recurrent cells)."""

from __future__ import annotations
