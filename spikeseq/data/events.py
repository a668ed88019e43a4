"""Events to time-first tensors: binning, spatial downsampling, padding.

An event stream is given as parallel arrays: times ``t`` (any unit; ``dt``/``duration`` in the same unit) and a
flat channel index ``ch`` in ``[0, n_channels)``. :func:`bin_events` returns counts ``[T, n_channels]``:

- **fixed dt**: bin ``k`` holds ``t_start + k*dt <= t < t_start + (k+1)*dt``; ``T = ceil(duration/dt)`` when
  ``duration`` is given (later events are dropped), else just enough bins for the last event.
- **fixed number of bins** ``n_bins``: with ``duration`` the window ``[t_start, t_start+duration)`` is cut into
  ``n_bins`` equal bins; without it the recording's own span ``[t_first, t_last]`` is (integer times with an
  exact integer formula). Unlike tonic's ``ToFrame(n_time_bins=...)``, which slices windows of
  ``(t_last - t_first) // n`` and so leaves out the events after the last whole window, every event is binned.

``binary=True`` clips counts to 1. Events before ``t_start`` are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from spikeseq.errors import ParameterError, ShapeError


def _check_mode(dt: float | None, n_bins: int | None) -> None:
    if (dt is None) == (n_bins is None):
        raise ParameterError("give exactly one of dt (bin width) or n_bins (number of bins)")
    if dt is not None and not dt > 0:
        raise ParameterError(f"dt must be > 0, got {dt}")
    if n_bins is not None and (int(n_bins) != n_bins or n_bins < 1):
        raise ParameterError(f"n_bins must be a positive integer, got {n_bins}")


def time_bins(
    t: np.ndarray,
    *,
    dt: float | None = None,
    n_bins: int | None = None,
    duration: float | None = None,
    t_start: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Bin index of every event: returns ``(bins, keep_mask, T)``; ``bins`` is valid where ``keep_mask``."""
    _check_mode(dt, n_bins)
    if duration is not None and not duration > 0:
        raise ParameterError(f"duration must be > 0, got {duration}")
    t = np.asarray(t)
    if dt is not None:
        if duration is not None:
            T = max(1, math.ceil(duration / dt - 1e-9))
        else:
            T = int((t.max() - t_start) // dt) + 1 if t.size else 1
            T = max(T, 1)
        if np.issubdtype(t.dtype, np.integer) and float(dt).is_integer() and float(t_start).is_integer():
            bins = (t - int(t_start)) // int(dt)
        else:
            bins = np.floor((t.astype(np.float64) - t_start) / dt).astype(np.int64)
        return bins, (bins >= 0) & (bins < T), T
    n = int(n_bins)  # type: ignore[arg-type]
    if t.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool), n
    if duration is not None:
        bins = np.floor((t.astype(np.float64) - t_start) * (n / duration)).astype(np.int64)
        return bins, (bins >= 0) & (bins < n), n
    t0, t1 = t.min(), t.max()
    if np.issubdtype(t.dtype, np.integer):
        span = int(t1) - int(t0) + 1
        bins = (t.astype(np.int64) - int(t0)) * n // span
    else:
        span = float(t1) - float(t0)
        bins = np.zeros(t.shape, np.int64) if span == 0 else np.floor((t - t0) * (n / span)).astype(np.int64)
        np.minimum(bins, n - 1, out=bins)
    return bins, np.ones(t.shape, bool), n


def bin_counts(
    t: np.ndarray,
    ch: np.ndarray,
    n_channels: int,
    *,
    dt: float | None = None,
    n_bins: int | None = None,
    duration: float | None = None,
    t_start: float = 0.0,
) -> tuple[np.ndarray, int]:
    """Flat int64 counts ``[T * n_channels]`` and ``T`` (the fast path under :func:`bin_events`)."""
    ch = np.asarray(ch)
    if ch.shape != np.shape(t):
        raise ShapeError(f"t and ch must have the same length, got {np.shape(t)} and {ch.shape}")
    bins, keep, T = time_bins(t, dt=dt, n_bins=n_bins, duration=duration, t_start=t_start)
    if ch.size and (ch.min() < 0 or ch.max() >= n_channels):
        raise ShapeError(f"channel index out of range [0, {n_channels}): min {ch.min()}, max {ch.max()}")
    if keep.all():
        flat = bins * n_channels + ch
    else:
        flat = bins[keep] * n_channels + ch[keep]
    return np.bincount(flat, minlength=T * n_channels)[: T * n_channels], T


def bin_events(
    t: np.ndarray,
    ch: np.ndarray,
    n_channels: int,
    *,
    dt: float | None = None,
    n_bins: int | None = None,
    duration: float | None = None,
    t_start: float = 0.0,
    binary: bool = False,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Counts (or 0/1 with ``binary``) of events per time bin and channel: ``[T, n_channels]`` numpy array."""
    counts, T = bin_counts(t, ch, n_channels, dt=dt, n_bins=n_bins, duration=duration, t_start=t_start)
    if binary:
        counts = np.minimum(counts, 1)
    return counts.astype(dtype, copy=False).reshape(T, n_channels)


def downsample_channels(ch: np.ndarray, factor: int) -> np.ndarray:
    """Merge groups of ``factor`` adjacent channels (e.g. SHD 700 -> 140 with factor 5, as in the DCLS delay
    paper, Hammouamri et al. 2024)."""
    if int(factor) != factor or factor < 1:
        raise ParameterError(f"downsample factor must be a positive integer, got {factor}")
    return np.asarray(ch) // int(factor)


def pad_sequences(seqs: Sequence[torch.Tensor], pad_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack time-first sequences ``[T_i, ...]`` into ``[T_max, B, ...]`` padded at the end; returns
    ``(x, lengths)`` with ``lengths`` int64 ``[B]``."""
    if len(seqs) == 0:
        raise ShapeError("cannot pad an empty list of sequences")
    lengths = torch.tensor([int(s.shape[0]) for s in seqs], dtype=torch.int64)
    feat = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if tuple(s.shape[1:]) != feat:
            raise ShapeError(f"sequence {i} has feature shape {tuple(s.shape[1:])}, expected {feat}")
    t_max = int(lengths.max())
    # stack (one contiguous copy) instead of per-sample strided writes, which are slow with many torch threads
    padded = [s if s.shape[0] == t_max else torch.cat([s, s.new_full((t_max - s.shape[0], *feat), pad_value)])
              for s in seqs]
    out = torch.stack(padded, 1)
    return out, lengths


def collate_events_frames(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DataLoader ``collate_fn`` for ``(frames [T_i, ...], label)`` samples: ``(x [T_max, B, ...], y [B], lengths)``."""
    x, lengths = pad_sequences([b[0] for b in batch])
    y = torch.as_tensor([int(b[1]) for b in batch], dtype=torch.int64)
    return x, y, lengths


class FrameSet(torch.utils.data.Dataset):
    """Binned frames of a whole split held in memory (N-MNIST ``[N, T, 2, H, W]``, SHD ``[N, T, C]``).

    ``x``: ``[N, T, ...]`` counts in a compact integer dtype (uint8 when counts fit; call ``.float()`` or
    index the dataset, which yields float ``[T_i, ...]``); ``y``: int64 ``[N]``; ``lengths``: int64 ``[N]``
    (valid bins per sample; all ``T`` with ``n_bins`` or a ``duration``). ``cache_hit`` says whether it came
    from the HDF5 cache; ``classes`` names the labels. Batch with :func:`collate_events_frames` for
    ``[T, B, ...]``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor, params: dict[str, Any],
                 cache_hit: bool = False, classes: list[str] | None = None) -> None:
        self.x, self.y, self.lengths, self.params, self.cache_hit = x, y, lengths, params, cache_hit
        self.classes = classes if classes is not None else [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """Labels ``[N]`` as a numpy int array."""
        return self.y.numpy()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i, : int(self.lengths[i])].float(), int(self.y[i])


def compact_dtype(max_count: int) -> type:
    """The smallest unsigned dtype holding counts up to ``max_count``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_count <= np.iinfo(dt).max:
            return dt
    return np.int64
