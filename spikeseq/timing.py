"""Timing shared by the benchmarks: candidates run interleaved (one call of each per repetition), so that load
changes on a shared machine hit every candidate alike, and the median per candidate is reported."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time in milliseconds of each function of ``fns`` over ``reps`` interleaved repetitions, after
    ``warmup`` untimed ones."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for rep in range(reps + warmup):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if rep >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


__all__ = ["time_interleaved"]
