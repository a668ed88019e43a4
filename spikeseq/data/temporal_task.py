"""An SHD-format classification task whose classes differ ONLY in spike timing across channels.

Construction (seeded, all parameters recorded in the file):

1. The channels are split into ``n_groups`` equal groups (channel ``ch`` in group ``ch % n_groups``). Within a
   group the channels fire at fixed small offsets in ``[0, group_spread]`` (the same set of offsets in every
   group, assigned to channels by a seeded permutation), identical in all classes.
2. Class ``c`` is an ordering of the groups: group ``g`` starts at ``rank_c(g) * group_gap``; the latency of
   channel ``ch`` is ``L[c, ch] = rank_c(group(ch)) * group_gap + offset(ch)``. Classes use distinct orderings.
3. A sample of class ``c``: a random onset ``o``; channel ``ch`` fires ``spikes_per_channel`` pattern spikes at
   ``o + L[c, ch] + k * burst_interval + N(0, jitter^2)`` and ``noise_spikes`` background spikes uniformly in
   ``[0, duration)``.

Every channel fires exactly ``spikes_per_channel + noise_spikes`` spikes in every sample of every class, and the
population rate over time is the same for every class: counts and rates carry no information, the absolute time
does not either (random onset), and all coincidences within ``group_spread`` are shared by all classes. The class
is only in the order of groups, ``group_gap`` apart (default 50 ms, beyond a 10-20 ms membrane time constant):
a network with synaptic delays can align two groups into a coincidence, a feed-forward LIF network without
delays has to bridge ``group_gap`` with its membrane memory. Learnable, but not trivially without delays
(cf. Hammouamri et al. 2024, learnable delays with DCLS).

Measured with the defaults (seed 0, 1000 train / 250 test samples, 2 ms bins, a throw-away
40-128-4 feed-forward LIF net, tau 20 ms, Adam 2e-3, batch 50, 15 epochs, plain PyTorch): without delays 38 %
test accuracy (chance 25 %); the same net fed the input plus copies delayed by 50, 100 and 150 ms: 100 % from
epoch 6.

Files follow :func:`spikeseq.data.shd.write_shd`; the generator's parameters, seed and version are in the root
attribute ``spikeseq_meta`` (read back as ``read_shd(path).meta``), the latency table in ``extra/latencies``
(``[n_classes, n_channels]`` seconds). Train and test files of one seed share the latency table and draw
different samples.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeseq.data.shd import write_shd
from spikeseq.errors import ParameterError

GENERATOR = "spikeseq.data.temporal_task"
VERSION = 1
STREAMS = {"train": 1, "test": 2, "valid": 3}


def _orderings(n_classes: int, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_classes, n_groups]`` distinct random orderings (rank of each group) of the groups."""
    n_perm = math.factorial(n_groups)
    if n_classes > n_perm:
        raise ParameterError(f"{n_groups} groups allow only {n_perm} distinct classes, asked for {n_classes}; "
                             "raise n_groups")
    if n_perm <= 40320:  # n_groups <= 8: sample without replacement from all orderings
        perms = np.array(list(itertools.permutations(range(n_groups))))
        return perms[rng.choice(n_perm, n_classes, replace=False)]
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n_classes:
        p = tuple(int(v) for v in rng.permutation(n_groups))
        if p not in seen:
            seen.add(p)
            out.append(p)
    return np.array(out)


def latency_table(n_classes: int, n_channels: int, n_groups: int, group_gap: float, group_spread: float,
                  seed: int) -> np.ndarray:
    """``[n_classes, n_channels]`` latencies (s): group rank per class times ``group_gap`` plus fixed offsets."""
    if n_channels % n_groups:
        raise ParameterError(f"n_channels ({n_channels}) must be a multiple of n_groups ({n_groups})")
    rng = np.random.default_rng([seed, 0])
    per_group = n_channels // n_groups
    offsets_set = np.linspace(0.0, group_spread, per_group) if per_group > 1 else np.zeros(1)
    ch = np.arange(n_channels)
    group = ch % n_groups
    offsets = np.empty(n_channels)
    for g in range(n_groups):
        offsets[group == g] = rng.permutation(offsets_set)
    ranks = _orderings(n_classes, n_groups, rng)  # ranks[c, g]
    return ranks[:, group] * group_gap + offsets[None, :]


def _check(n_samples, n_classes, n_channels, duration, max_latency, jitter, spikes_per_channel, burst_interval,
           noise_spikes) -> None:
    if n_samples < 1 or n_classes < 2 or n_channels < 2 or n_channels > 2**16:
        raise ParameterError("need n_samples >= 1, n_classes >= 2 and 2 <= n_channels <= 65536")
    if not (duration > 0 and 0 <= max_latency and jitter >= 0 and burst_interval >= 0):
        raise ParameterError("duration must be > 0, group_gap, group_spread, jitter and burst_interval >= 0")
    if spikes_per_channel < 1 or noise_spikes < 0:
        raise ParameterError("spikes_per_channel must be >= 1 and noise_spikes >= 0")
    span = max_latency + (spikes_per_channel - 1) * burst_interval + 8 * jitter
    if span >= duration:
        raise ParameterError(
            f"the pattern spans {span:.4g} s ((n_groups-1)*group_gap + group_spread + bursts + 8*jitter) but "
            f"duration is {duration} s; increase duration or shorten the pattern"
        )


def sample_spikes(
    labels: np.ndarray, table: np.ndarray, *, duration: float, jitter: float, spikes_per_channel: int,
    burst_interval: float, noise_spikes: int, rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Spike times (s, sorted, float64) and units per sample for the given labels."""
    n_channels = table.shape[1]
    pattern_span = float(table.max()) + (spikes_per_channel - 1) * burst_interval
    max_onset = duration - pattern_span - 4 * jitter
    if max_onset < 2 * jitter:
        raise ParameterError("duration too short for the pattern")
    times, units = [], []
    ch = np.arange(n_channels)
    for c in labels:
        onset = rng.uniform(2 * jitter, max_onset)
        t_pat = (onset + table[c][None, :] + burst_interval * np.arange(spikes_per_channel)[:, None]
                 + rng.normal(0.0, jitter, (spikes_per_channel, n_channels))).ravel()
        u_pat = np.tile(ch, spikes_per_channel)
        t_noise = rng.uniform(0.0, duration, noise_spikes * n_channels)
        u_noise = np.repeat(ch, noise_spikes)
        t = np.clip(np.concatenate([t_pat, t_noise]), 0.0, np.nextafter(duration, 0))
        u = np.concatenate([u_pat, u_noise])
        # float16 storage quantises times: sort on the stored values so files are sorted as SHD's
        t16 = t.astype(np.float16).astype(np.float64)
        order = np.argsort(t16, kind="stable")
        times.append(t16[order])
        units.append(u[order].astype(np.int64))
    return times, units


def generate(
    path: str | os.PathLike, *, n_samples: int = 1000, n_classes: int = 4, n_channels: int = 40,
    duration: float = 0.5, seed: int = 0, n_groups: int = 4, group_gap: float = 0.05, group_spread: float = 0.01,
    jitter: float = 2e-3, spikes_per_channel: int = 1, burst_interval: float = 0.0, noise_spikes: int = 1,
    split: str = "train",
) -> Path:
    """Write ``n_samples`` balanced samples (classes cycle, then shuffled) to an SHD-format file; returns its path.

    ``split`` selects the random stream ("train", "test", "valid") so that files of one seed do not share
    samples; the latency table depends on ``seed`` (and sizes) only.
    """
    max_latency = (n_groups - 1) * group_gap + group_spread
    _check(n_samples, n_classes, n_channels, duration, max_latency, jitter, spikes_per_channel, burst_interval,
           noise_spikes)
    if split not in STREAMS:
        raise ParameterError(f"split must be one of {sorted(STREAMS)}, got {split!r}")
    table = latency_table(n_classes, n_channels, n_groups, group_gap, group_spread, seed)
    rng = np.random.default_rng([seed, STREAMS[split]])
    labels = rng.permutation(np.arange(n_samples) % n_classes)
    times, units = sample_spikes(labels, table, duration=duration, jitter=jitter,
                                 spikes_per_channel=spikes_per_channel, burst_interval=burst_interval,
                                 noise_spikes=noise_spikes, rng=rng)
    meta: dict[str, Any] = {
        "generator": GENERATOR, "version": VERSION, "seed": int(seed), "split": split,
        "n_samples": int(n_samples), "n_classes": int(n_classes), "n_channels": int(n_channels),
        "duration": float(duration), "n_groups": int(n_groups), "group_gap": float(group_gap),
        "group_spread": float(group_spread), "jitter": float(jitter),
        "spikes_per_channel": int(spikes_per_channel), "burst_interval": float(burst_interval),
        "noise_spikes": int(noise_spikes),
    }
    out = write_shd(path, times, units, labels, keys=[f"pattern{c}" for c in range(n_classes)], meta=meta,
                    extra={"latencies": table})
    return out


def generate_split(
    root: str | os.PathLike, *, n_train: int = 1000, n_test: int = 250, seed: int = 0, **params: Any
) -> dict[str, Path]:
    """Write ``<root>/temporal_train.h5`` and ``<root>/temporal_test.h5`` (same classes, different samples)."""
    root = Path(root)
    return {
        "train": generate(root / "temporal_train.h5", n_samples=n_train, seed=seed, split="train", **params),
        "test": generate(root / "temporal_test.h5", n_samples=n_test, seed=seed, split="test", **params),
    }


def load_split(
    split: str, *, seed: int = 0, n_train: int = 1600, n_test: int = 400, dt: float = 10e-3,
    duration: float = 0.4, **params: Any,
) -> Any:
    """The task generated in memory and binned to ``dt``: a :class:`~spikeseq.data.events.FrameSet` ``x [N, T, C]``.

    The samples are written to a temporary SHD-format file and binned without the cache (they are a pure function
    of the arguments: the same call gives the same frames). ``params`` go to :func:`generate` (``n_classes``,
    ``n_channels``, ``n_groups``, ``group_gap``, ``group_spread``, ``jitter``, ``noise_spikes``, ...).
    """
    import tempfile

    from spikeseq.data.shd import load_frames

    n = {"train": n_train, "test": n_test}.get(split)
    if n is None:
        raise ParameterError(f"the temporal task has splits train and test, not {split!r}")
    with tempfile.TemporaryDirectory(prefix="spikeseq-temporal-") as tmp:
        path = generate(Path(tmp) / f"temporal_{split}.h5", n_samples=n, seed=seed, split=split,
                        duration=duration, **params)
        return load_frames(path, dt=dt, duration=duration, cache=False)


__all__ = ["generate", "generate_split", "latency_table", "load_split", "sample_spikes"]
