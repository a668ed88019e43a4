"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC): the HDF5 layout, reader, writer, dataset.

Layout (``specs/data-formats.md`` §1.2; Cramer et al. 2020, tonic 1.7 ``datasets/hsd.py``)::

    spikes/times   (N,) vlen float16   spike times in seconds, sorted within a sample
    spikes/units   (N,) vlen uint16    channel ids 0..699, same length as times
    labels         (N,) unsigned int   class ids
    extra/speaker  (N,) unsigned int   speaker id                       (optional on reading)
    extra/keys     (K,) byte strings   class names                      (optional on reading)
    extra/meta_info/{gender, age, body_height}  per-speaker arrays      (optional)

Reading casts times to float64 *before* any scaling (float16 ``times * 1e6`` overflows, tonic issue #321) and
accepts any integer dtype for units, labels and speakers. Missing datasets and samples whose times and units
lengths differ, spike times that are NaN, negative or unsorted, and datasets of the wrong type raise
:class:`DataError` naming the file (and sample). :func:`write_shd` writes exactly the
layout above, atomically; extra metadata goes into the root attributes (JSON in ``spikeseq_meta``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeseq.data._atomic import atomic_path
from spikeseq.data.events import FrameSet, bin_counts, bin_events, compact_dtype
from spikeseq.errors import DataError, ParameterError

N_CHANNELS = 700  # SHD / SSC cochlea model channels (Cramer et al. 2020)
META_ATTR = "spikeseq_meta"
REQUIRED = ("spikes/times", "spikes/units", "labels")
#: Latest plausible spike time (s) when reading. SHD samples last at most about 1.4 s and SSC clips 1 s (Cramer et
#: al. 2020; ``specs/data-formats.md`` §1.2): 10 s is a generous bound that still refuses corrupt times (a float16
#: 60000 s would ask for 6 million 10 ms bins per sample).
MAX_TIME_S = 10.0


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - base dependency
        raise DataError("reading SHD/SSC needs h5py: pip install h5py") from e
    return h5py


@dataclass
class SHDData:
    """Contents of one SHD/SSC file. ``times``: float64 seconds per sample; ``units``: int64 per sample."""

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray
    keys: list[str]
    speakers: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    meta_info: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``i`` as ``(times float64 seconds, units int64)`` whatever the stored dtypes."""
        return self.times[i].astype(np.float64, copy=False), self.units[i].astype(np.int64, copy=False)

    def events(self, i: int) -> np.ndarray:
        """Sample ``i`` as a tonic-style structured array ``t`` (µs, int), ``x`` (unit), ``p`` (=1)."""
        from spikeseq.data.tonic_interop import SHD_DTYPE

        t, u = self.sample(i)
        ev = np.empty(t.shape[0], dtype=SHD_DTYPE)
        ev["t"] = (t * 1e6).astype(np.int64)
        ev["x"], ev["p"] = u, 1
        return ev


def _check_int(arr: np.ndarray, what: str, path: Path) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{path}: {what} has dtype {arr.dtype}; an integer dtype is required")
    return arr.astype(np.int64)


def _decode_keys(raw: np.ndarray) -> list[str]:
    return [k.decode("utf-8") if isinstance(k, bytes | np.bytes_) else str(k) for k in raw.tolist()]


def _read_attrs(f) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for k, v in f.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        if k == META_ATTR:
            meta.update(json.loads(v))
            continue
        meta[k] = v.item() if isinstance(v, np.generic) else v
    return meta


def _open_checked(f, path: Path) -> None:
    missing = [k for k in REQUIRED if k not in f]
    if missing:
        raise DataError(
            f"{path}: missing HDF5 dataset(s) {', '.join(missing)}; an SHD/SSC file needs spikes/times, "
            "spikes/units and labels"
        )
    names = [*REQUIRED, *(["extra/speaker"] if "extra/speaker" in f else [])]
    for k in names:
        shape = getattr(f[k], "shape", None)
        if shape is None or len(shape) != 1:
            what = "a group" if shape is None else f"a dataset of shape {tuple(shape)}"
            raise DataError(f"{path}: {k} is {what}; an SHD/SSC file holds it as a 1-D dataset with one entry per "
                            "sample: the file is damaged or not in the SHD layout, re-download it or rewrite it "
                            "with spikeseq.data.shd.write_shd")
    n = {k: f[k].shape[0] for k in names}
    if len(set(n.values())) != 1:
        raise DataError(f"{path}: datasets have different numbers of samples: {n}; each holds one entry per "
                        "sample: the file is damaged, re-download it or rewrite it with write_shd")


def _check_sample(times: np.ndarray, units: np.ndarray, i: int, path: Path | str, n_channels: int | None,
                  max_time: float | None = None) -> None:
    """One sample's spike times (finite, >= 0, sorted: ``specs/data-formats.md`` §1.2; at most ``max_time``
    seconds when given) and units (integers, >= 0, in range, as many as times); :class:`DataError` naming the file,
    the sample and what to do otherwise."""
    if not isinstance(times, np.ndarray) or times.ndim != 1 or times.dtype.kind not in "fiu":
        raise DataError(f"{path}: sample {i} of spikes/times is {_describe(times)}; expected a 1-D array of spike "
                        "times in seconds (vlen float16 in SHD/SSC files)")
    if not isinstance(units, np.ndarray) or units.ndim != 1 or units.dtype.kind not in "iu":
        raise DataError(f"{path}: sample {i} of spikes/units is {_describe(units)}; expected a 1-D array of integer "
                        "channel ids (vlen uint16 in SHD/SSC files)")
    if times.shape[0] != units.shape[0]:
        raise DataError(
            f"{path}: sample {i} has {times.shape[0]} spike times but {units.shape[0]} units; "
            "spikes/times and spikes/units must have the same length per sample"
        )
    if units.size and units.min() < 0:
        raise DataError(f"{path}: sample {i} has a negative unit id ({units.min()}); unit ids are channel numbers "
                        ">= 0 (vlen uint16 in SHD/SSC files): the file is damaged, restore it from the original "
                        "archive")
    if n_channels is not None and units.size and units.max() >= n_channels:
        raise DataError(f"{path}: sample {i} has unit ids in [{units.min()}, {units.max()}], outside "
                        f"[0, {n_channels}); pass the data set's n_channels (SHD/SSC: 700) or fix the file")
    if times.size == 0:
        return
    t = times.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
    if bad.size:
        raise DataError(f"{path}: sample {i}, spike {int(bad[0])} has time {t[bad[0]]} ({bad.size} such spikes); "
                        "spike times must be finite and >= 0 seconds: the file is damaged, restore it from the "
                        "original archive")
    if max_time is not None and t.max() > max_time:
        j = int(np.argmax(t > max_time))
        raise DataError(f"{path}: sample {i}, spike {j} has time {t[j]} s, beyond the plausible {max_time} s "
                        f"(SHD samples last about 1.4 s, SSC 1 s; spikeseq.data.shd.MAX_TIME_S): the file is "
                        "damaged, restore it from the original archive")
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        j = int(back[0]) + 1
        raise DataError(f"{path}: sample {i}, spike {j} at {t[j]} s comes after a spike at {t[j - 1]} s; spike "
                        "times must be sorted within a sample (as in the SHD/SSC release): sort each sample's "
                        "times and units together, e.g. order = np.argsort(times, kind='stable')")


def _check_labels(labels: np.ndarray, keys: list[str], path: Path) -> None:
    """:class:`DataError` naming the first sample whose label is negative or has no class name in ``keys``."""
    bad = np.flatnonzero((labels < 0) | (labels >= len(keys)))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}: sample {i} has label {labels[i]} ({bad.size} such samples), outside [0, "
                        f"{len(keys)}) of the {len(keys)} class names in extra/keys; the file is damaged: restore it "
                        "from the original archive")


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"an array of dtype {a.dtype} and shape {a.shape}"
    return f"a {type(a).__name__} ({a!r:.40})"


def read_shd(path: str | os.PathLike, *, n_channels: int | None = None, raw: bool = False) -> SHDData:
    """Read a whole SHD/SSC file (``n_channels``: optionally check unit ids against it).

    ``raw=True`` keeps the stored dtypes (float16 times, uint16 units: a quarter of the memory of float64/int64
    for the 268 MB SHD training file); cast with :meth:`SHDData.sample` before any arithmetic.
    """
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        from spikeseq.data.manifest import missing_files_error

        raise missing_files_error("ssc" if path.name.startswith("ssc") else "shd", [path])
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e}); an SHD/SSC file is HDF5 with spikes/times, "
                        "spikes/units and labels: re-download it (spikeseq data fetch shd) or check that the "
                        "download finished") from e
    try:
        with f:
            _open_checked(f, path)
            raw_t = f["spikes/times"][()]
            raw_u = f["spikes/units"][()]
            labels = _check_int(np.asarray(f["labels"][()]), "labels", path)
            speakers = _check_int(np.asarray(f["extra/speaker"][()]), "extra/speaker", path) \
                if "extra/speaker" in f else None
            keys = _decode_keys(f["extra/keys"][()]) if "extra/keys" in f else \
                [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]
            meta_info = {k: v[()] for k, v in f["extra/meta_info"].items()} if "extra/meta_info" in f else {}
            meta = _read_attrs(f)
            extra = {k: v[()] for k, v in f["extra"].items()
                     if k not in ("speaker", "keys", "meta_info") and not hasattr(v, "keys")} if "extra" in f else {}
    except DataError:
        raise
    except (OSError, KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a valid SHD/SSC file ({type(e).__name__}: {e}); expected the layout "
                        "spikes/times (vlen float), spikes/units (vlen int), labels (int), optional extra/keys "
                        "(byte strings): re-download it or rewrite it with spikeseq.data.shd.write_shd") from None
    if labels.ndim != 1 or np.ndim(raw_t) != 1 or np.ndim(raw_u) != 1 or (speakers is not None and speakers.ndim != 1):
        raise DataError(f"{path}: spikes/times, spikes/units, labels and extra/speaker must be 1-D (one entry per "
                        f"sample), got shapes {np.shape(raw_t)}, {np.shape(raw_u)}, {labels.shape}, "
                        f"{None if speakers is None else speakers.shape}; rewrite the file with write_shd")
    times, units = [], []
    _check_labels(labels, keys, path)
    for i, (t, u) in enumerate(zip(raw_t, raw_u)):
        _check_sample(t, u, i, path, n_channels, MAX_TIME_S)
        times.append(np.asarray(t) if raw else np.asarray(t).astype(np.float64))
        units.append(np.asarray(u) if raw else np.asarray(u).astype(np.int64))
    return SHDData(times, units, labels, keys, speakers, meta, meta_info, path, extra)


def write_shd(
    path: str | os.PathLike,
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    *,
    keys: Sequence[str] | None = None,
    speakers: Sequence[int] | np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
    meta_info: dict[str, np.ndarray] | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write an SHD-layout file atomically: vlen float16 times (s), vlen uint16 units, uint16 labels/speakers,
    byte-string keys, optional ``extra/meta_info``; ``meta`` (JSON-serialisable) goes to root attributes and
    ``extra`` arrays to ``extra/<name>`` datasets."""
    h5py = _h5py()
    path = Path(path)
    labels = np.asarray(labels)
    n = labels.shape[0]
    if len(times) != n or len(units) != n:
        raise DataError(f"write_shd: {len(times)} times, {len(units)} units and {n} labels; they must match")
    for i, (t, u) in enumerate(zip(times, units)):
        _check_sample(np.asarray(t), np.asarray(u), i, "write_shd", 2**16)
    if labels.size and (labels.min() < 0 or labels.max() >= 2**16):
        raise DataError("write_shd: labels must lie in [0, 65535]")
    if keys is None:
        keys = [str(i) for i in range(int(labels.max()) + 1 if n else 0)]
    if speakers is None:
        speakers = np.zeros(n, np.uint16)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        vt = h5py.vlen_dtype(np.dtype(np.float16))
        vu = h5py.vlen_dtype(np.dtype(np.uint16))
        dt_ = f.create_dataset("spikes/times", (n,), dtype=vt)
        du = f.create_dataset("spikes/units", (n,), dtype=vu)
        for i in range(n):
            dt_[i] = np.asarray(times[i], dtype=np.float16)
            du[i] = np.asarray(units[i], dtype=np.uint16)
        f.create_dataset("labels", data=labels.astype(np.uint16))
        f.create_dataset("extra/speaker", data=np.asarray(speakers).astype(np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys], dtype=np.bytes_))
        for k, v in (meta_info or {}).items():
            f.create_dataset(f"extra/meta_info/{k}", data=np.asarray(v))
        for k, v in (extra or {}).items():
            f.create_dataset(f"extra/{k}", data=np.asarray(v))
        if meta:
            f.attrs[META_ATTR] = json.dumps(meta, sort_keys=True)
    return path


def _meta_channels(meta: dict[str, Any], path: str | os.PathLike) -> int:
    """The file's ``n_channels`` metadata (700 when absent); :class:`DataError` unless it is an integer >= 1."""
    v = meta.get("n_channels", N_CHANNELS)
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise DataError(f"{path}: the n_channels attribute is {v!r}; it must be an integer >= 1 (the number of "
                        "input channels, 700 for SHD/SSC): fix or delete the attribute, or pass n_channels=")
    return int(v)


class SHDDataset(torch.utils.data.Dataset):
    """SHD/SSC samples binned into time-first ``[T, C]`` float tensors, with int labels.

    ``dt`` (seconds, default 10 ms) or ``n_bins``; ``duration`` fixes ``T`` (later spikes dropped), else ``T``
    follows each sample (batch with :func:`spikeseq.data.events.collate_events_frames`). ``downsample=k`` merges
    groups of ``k`` adjacent channels (700 -> 140 with ``k=5`` as in the DCLS delay paper, Hammouamri et al.
    2024), so ``C = ceil(n_channels / k)``. ``n_channels`` defaults to the file's ``n_channels`` metadata (set
    by :mod:`spikeseq.data.temporal_task`), else 700. The whole file is read once.
    """

    def __init__(self, path: str | os.PathLike, dt: float | None = 10e-3, n_bins: int | None = None,
                 n_channels: int | None = None, downsample: int = 1, duration: float | None = None,
                 binary: bool = False, transform=None, target_transform=None) -> None:
        if n_bins is not None:
            dt = None
        if int(downsample) != downsample or downsample < 1:
            raise ParameterError(f"downsample must be a positive integer, got {downsample}")
        self.data = read_shd(path, raw=True)
        if len(self.data) == 0:
            raise DataError(f"{path} holds no sample (spikes/times, spikes/units and labels are empty); the file is "
                            "damaged or was written empty: re-download it or rewrite it with write_shd")
        if n_channels is None:
            n_channels = _meta_channels(self.data.meta, path)
        for i, u in enumerate(self.data.units):
            if u.size and u.max() >= n_channels:
                raise DataError(f"{path}: sample {i} has unit {u.max()} >= n_channels={n_channels}; pass the "
                                "n_channels the file was made for (SHD/SSC: 700)")
        self.dt, self.n_bins, self.duration, self.binary = dt, n_bins, duration, binary
        self.n_channels, self.downsample = n_channels, int(downsample)
        self.n_out = -(-n_channels // self.downsample)
        self.transform, self.target_transform = transform, target_transform

    @property
    def labels(self) -> np.ndarray:
        """Labels ``[N]`` as a numpy int array."""
        return self.data.labels

    @property
    def classes(self) -> list[str]:
        """Class names (the file's ``keys``)."""
        return self.data.keys

    def __len__(self) -> int:
        return len(self.data)

    def frames(self, i: int) -> torch.Tensor:
        """Sample ``i`` binned as ``[T, C]`` float32 (before ``transform``)."""
        t, u = self.data.sample(i)
        fr = bin_events(t, u // self.downsample, self.n_out, dt=self.dt, n_bins=self.n_bins, duration=self.duration,
                        binary=self.binary)
        return torch.from_numpy(fr)

    def __getitem__(self, i: int):
        x: Any = self.frames(i)
        y: Any = int(self.data.labels[i])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y


def load_frames(
    path: str | os.PathLike, *, dt: float | None = 10e-3, n_bins: int | None = None, duration: float | None = None,
    n_channels: int | None = None, downsample: int = 1, binary: bool = False,
    cache: bool | str | os.PathLike = True,
) -> FrameSet:
    """Bin a whole SHD/SSC file into a :class:`~spikeseq.data.events.FrameSet` (``x [N, T, C]`` counts, padded to
    the longest sample with ``lengths``), using the HDF5 cache keyed by these parameters and the file."""
    from spikeseq.data.cache import cached, fingerprint_files

    if n_bins is not None:
        dt = None
    path = Path(path)
    if not path.is_file():
        read_shd(path)  # raises the missing-file error
    params = {"dataset": "shd-format", "dt": dt, "n_bins": n_bins, "duration": duration, "n_channels": n_channels,
              "downsample": int(downsample), "binary": bool(binary), "source": fingerprint_files([path])}

    def build() -> dict[str, np.ndarray]:
        ds = SHDDataset(path, dt=dt, n_bins=n_bins, n_channels=n_channels, downsample=downsample,
                        duration=duration, binary=binary)
        counts, lengths = [], np.zeros(len(ds), np.int64)
        for i in range(len(ds)):
            t, u = ds.data.sample(i)
            c, T = bin_counts(t, u // ds.downsample, ds.n_out, dt=dt, n_bins=n_bins, duration=duration)
            if binary:
                np.minimum(c, 1, out=c)
            counts.append(c)
            lengths[i] = T
        m = max((int(c.max()) for c in counts if c.size), default=0)
        out = np.zeros((len(ds), int(lengths.max()) if len(ds) else 1, ds.n_out), compact_dtype(m))
        for i, c in enumerate(counts):
            out[i, : lengths[i]].reshape(-1)[:] = c
        keys = np.array([k.encode() for k in ds.data.keys], dtype=np.bytes_)
        return {"x": out, "y": ds.data.labels.astype(np.int64), "lengths": lengths, "keys": keys}

    arrays, hit = cached("shd", path.stem, params, build, cache)
    return FrameSet(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]),
                    torch.from_numpy(arrays["lengths"]), params, hit,
                    [k.decode() for k in arrays["keys"].tolist()])


def split_path(root: str | os.PathLike | None, split: str, name: str = "shd") -> Path:
    """``<root>/<name>_<split>.h5`` with ``root`` defaulting to the dataset's folder under the data root."""
    from spikeseq.data.manifest import dataset_dir

    splits = ("train", "test") if name == "shd" else ("train", "valid", "test")
    if split not in splits:
        raise ParameterError(f"{name} split must be one of {splits}, got {split!r}")
    base = Path(root) if root is not None else dataset_dir(name)
    return base / f"{name}_{split}.h5"


__all__ = ["N_CHANNELS", "SHDData", "SHDDataset", "load_frames", "read_shd", "split_path", "write_shd"]
