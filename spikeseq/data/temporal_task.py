"""An SHD-format classification task whose classes differ ONLY in spike timing across channels.

Construction (seeded, all parameters recorded in the file):

1. A base set of ``n_channels`` distinct relative latencies, evenly spaced over ``[0, max_latency]``.
2. Class ``c`` assigns these latencies to channels by its own random permutation: ``L[c, ch]``. Every class
   therefore uses exactly the same latencies, so the population rate over time is the same for all classes.
3. A sample of class ``c``: a random onset ``o ~ U[0, duration - max_latency - 4*jitter]``; channel ``ch`` fires
   ``spikes_per_channel`` pattern spikes at ``o + L[c, ch] + k * burst_interval + N(0, jitter^2)`` and
   ``noise_spikes`` background spikes uniformly in ``[0, duration)``.

Every channel fires exactly ``spikes_per_channel + noise_spikes`` spikes in every sample of every class: spike
counts and rates carry no information, the absolute time does not either (random onset); only the relative
timing across channels does. A network with synaptic delays can align a class's channels into a coincidence;
without delays a LIF neuron only sees coincidences of channel pairs whose latencies are closer than its membrane
time constant, so the task is learnable but not trivial without delays (cf. Hammouamri et al. 2024, DCLS delays).

Files follow :func:`spikeseq.data.shd.write_shd`; the generator's parameters, seed and version are in the root
attribute ``spikeseq_meta`` (read back as ``read_shd(path).meta``), the latency table in ``extra/latencies``
(``[n_classes, n_channels]`` seconds). Train and test files of one seed share the latency table and draw
different samples.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeseq.data.shd import write_shd
from spikeseq.errors import ParameterError

GENERATOR = "spikeseq.data.temporal_task"
VERSION = 1
STREAMS = {"train": 1, "test": 2, "valid": 3}


def latency_table(n_classes: int, n_channels: int, max_latency: float, seed: int) -> np.ndarray:
    """``[n_classes, n_channels]`` latencies (s): one permutation per class of the same evenly spaced set."""
    rng = np.random.default_rng([seed, 0])
    base = np.linspace(0.0, max_latency, n_channels)
    table = np.stack([rng.permutation(base) for _ in range(n_classes)])
    return table


def _check(n_samples, n_classes, n_channels, duration, max_latency, jitter, spikes_per_channel, burst_interval,
           noise_spikes) -> None:
    if n_samples < 1 or n_classes < 2 or n_channels < 2 or n_channels > 2**16:
        raise ParameterError("need n_samples >= 1, n_classes >= 2 and 2 <= n_channels <= 65536")
    if not (duration > 0 and 0 < max_latency and jitter >= 0 and burst_interval >= 0):
        raise ParameterError("duration and max_latency must be > 0, jitter and burst_interval >= 0")
    span = max_latency + (spikes_per_channel - 1) * burst_interval + 4 * jitter
    if span >= duration:
        raise ParameterError(
            f"the pattern spans {span:.4g} s (max_latency + bursts + 4*jitter) but duration is {duration} s; "
            "increase duration or shorten the pattern"
        )
    if spikes_per_channel < 1 or noise_spikes < 0:
        raise ParameterError("spikes_per_channel must be >= 1 and noise_spikes >= 0")


def sample_spikes(
    labels: np.ndarray, table: np.ndarray, *, duration: float, jitter: float, spikes_per_channel: int,
    burst_interval: float, noise_spikes: int, rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Spike times (s, sorted, float64) and units per sample for the given labels."""
    n_channels = table.shape[1]
    pattern_span = float(table.max()) + (spikes_per_channel - 1) * burst_interval
    max_onset = duration - pattern_span - 4 * jitter
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
    duration: float = 0.5, seed: int = 0, max_latency: float = 0.2, jitter: float = 2e-3,
    spikes_per_channel: int = 1, burst_interval: float = 0.0, noise_spikes: int = 1, split: str = "train",
) -> Path:
    """Write ``n_samples`` balanced samples (classes cycle, then shuffled) to an SHD-format file; returns its path.

    ``split`` selects the random stream ("train", "test", "valid") so that files of one seed do not share
    samples; the latency table depends on ``seed`` (and sizes) only.
    """
    _check(n_samples, n_classes, n_channels, duration, max_latency, jitter, spikes_per_channel, burst_interval,
           noise_spikes)
    if split not in STREAMS:
        raise ParameterError(f"split must be one of {sorted(STREAMS)}, got {split!r}")
    table = latency_table(n_classes, n_channels, max_latency, seed)
    rng = np.random.default_rng([seed, STREAMS[split]])
    labels = rng.permutation(np.arange(n_samples) % n_classes)
    times, units = sample_spikes(labels, table, duration=duration, jitter=jitter,
                                 spikes_per_channel=spikes_per_channel, burst_interval=burst_interval,
                                 noise_spikes=noise_spikes, rng=rng)
    meta: dict[str, Any] = {
        "generator": GENERATOR, "version": VERSION, "seed": int(seed), "split": split,
        "n_samples": int(n_samples), "n_classes": int(n_classes), "n_channels": int(n_channels),
        "duration": float(duration), "max_latency": float(max_latency), "jitter": float(jitter),
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


__all__ = ["generate", "generate_split", "latency_table", "sample_spikes"]
