"""N-MNIST (Orchard et al. 2015): the original 5-byte event files and zip archives.

File format (``specs/data-formats.md`` §1.1, checked against tonic 1.7 ``io.read_mnist_file`` and Orchard's
``eventvision.py``): a flat stream of 5-byte records ``[x, y, p<<7 | t[22:16], t[15:8], t[7:0]]``, ``t`` in µs.
A record with ``y == 240`` is a timestamp-overflow marker: it is dropped and ``2**13`` is added to every later
timestamp (the increment of the reference readers, kept for compatibility; the real files contain no marker,
so each one is announced with a :class:`~spikeseq.data.repair.DataRepairWarning` naming the file and offset).

Layout: ``<root>/{Train,Test}/<digit>/<NNNNN>.bin`` (NNNNN = 1-based MNIST index, label = the digit folder), or the
official archives ``<root>/train.zip`` / ``test.zip`` holding the same tree. ``root`` defaults to
``<data root>/nmnist/NMNIST``. No minimum file count is required (the shared subset has 1,000 + 100 files).

Events are tonic-style structured arrays with fields ``x, y, t, p`` (int64), ordering ``xytp``; frames are
time-first float tensors ``[T, 2, 34, 34]`` indexed ``[t, p, y, x]`` like tonic's ``ToFrame``.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from spikeseq.data._atomic import atomic_path
from spikeseq.data._progress import progress
from spikeseq.data.events import FrameSet, bin_counts, bin_events, compact_dtype, time_bins
from spikeseq.data.manifest import dataset_dir, missing_files_error
from spikeseq.data.repair import warn_incomplete, warn_repair
from spikeseq.errors import DataError, ParameterError

SENSOR_SIZE = (34, 34, 2)  # (W, H, P) as tonic
WIDTH = HEIGHT = 34
OVERFLOW_Y = 240
#: Added to later timestamps at each overflow marker: tonic 1.7 ``io.read_mnist_file`` / Orchard ``eventvision.py``.
OVERFLOW_INCREMENT_US = 2**13
EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
CLASSES = [str(d) for d in range(10)]
SPLIT_DIRS = {"train": "Train", "test": "Test"}


# ----------------------------------------------------------------------------------------------- decoding
def decode_arrays(
    raw: bytes | np.ndarray, source: str = "<bytes>", *, repair: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode raw bytes into ``(x, y, t, p)`` int64 arrays (markers removed, overflow applied).

    A length that is not a multiple of 5 raises :class:`DataError`; with ``repair=True`` the trailing partial
    record is dropped with a :class:`DataRepairWarning`. An empty recording, coordinates outside 34 x 34 and
    timestamps that go backwards (real recordings are time-ordered, ``specs/data-formats.md`` §1.1) always raise.
    """
    buf = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw.view(np.uint8).ravel()
    if buf.size == 0:
        raise DataError(f"{source}: the recording is empty (0 bytes); an N-MNIST .bin file holds 5-byte events "
                        "(about 4000 per recording): re-download it with `spikeseq data fetch nmnist` or delete it")
    extra = buf.size % 5
    if extra:
        msg = f"{source}: {buf.size} bytes is not a multiple of 5 (truncated N-MNIST file, {extra} trailing bytes)"
        if not repair:
            raise DataError(msg + "; re-download it, or read with repair=True to drop the partial last event")
        warn_repair(msg + "; dropped the partial last event")
        buf = buf[: buf.size - extra]
    rec = buf.reshape(-1, 5)
    y = rec[:, 1].astype(np.int64)
    b2 = rec[:, 2].astype(np.int64)
    t = ((b2 & 0x7F) << 16) | (rec[:, 3].astype(np.int64) << 8) | rec[:, 4].astype(np.int64)
    marker = y == OVERFLOW_Y
    x = rec[:, 0].astype(np.int64)
    p = b2 >> 7
    if marker.any():
        _warn_markers(source, np.flatnonzero(marker))
        t = t + np.cumsum(marker) * OVERFLOW_INCREMENT_US
        keep = ~marker
        x, y, t, p = x[keep], y[keep], t[keep], p[keep]
        idx = np.flatnonzero(keep)
    else:
        idx = None
    bad = (x >= WIDTH) | (y >= HEIGHT)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rec_i = int(idx[i]) if idx is not None else i
        raise DataError(
            f"{source}: event {rec_i} (byte offset {5 * rec_i}) has x={x[i]}, y={y[i]} outside the 34 x 34 sensor "
            f"({int(bad.sum())} such events); the file is corrupt or not an N-MNIST recording"
        )
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        rec_i = int(idx[i]) if idx is not None else i
        raise DataError(
            f"{source}: event {rec_i} (byte offset {5 * rec_i}) has timestamp {t[i]} us, earlier than the event "
            f"before it ({t[i - 1]} us; {back.size} such places); N-MNIST events are time-ordered, so the file is "
            "corrupt: re-download it with `spikeseq data fetch nmnist`"
        )
    return x, y, t, p


def _warn_markers(source: str, where: np.ndarray) -> None:
    """Announce the overflow markers found: real recordings hold none (``specs/data-formats.md`` §1.1), so a
    marker is more likely a corrupt byte than a real overflow."""
    shown = ", ".join(str(5 * int(i) + 1) for i in where[:5]) + (" ..." if where.size > 5 else "")
    warn_repair(f"{source}: {where.size} record(s) with y=240 (byte offset(s) {shown}) read as timestamp-overflow "
                f"markers: dropped, and {OVERFLOW_INCREMENT_US} us added to every later timestamp (tonic's rule); "
                "real N-MNIST recordings contain no such marker, so the file may be corrupt: re-download it with "
                "`spikeseq data fetch nmnist` unless you wrote the markers yourself", stacklevel=4)


def to_structured(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Pack event columns into one structured array of ``EVENT_DTYPE`` (``x, y, t, p``)."""
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def decode(raw: bytes | np.ndarray, source: str = "<bytes>", *, repair: bool = False) -> np.ndarray:
    """Decode raw N-MNIST bytes into a tonic-style structured array (``x, y, t, p``)."""
    return to_structured(*decode_arrays(raw, source, repair=repair))


def read_events(path: str | os.PathLike, *, repair: bool = False) -> np.ndarray:
    """Read one ``.bin`` recording into a structured array with fields ``x, y, t`` (µs), ``p``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"N-MNIST file not found: {path}; check the path (or --root / SPIKESEQ_DATA), or "
                        "download the data set with `spikeseq data fetch nmnist`") from None
    return decode(raw, str(path), repair=repair)


def encode(events: np.ndarray) -> bytes:
    """Encode a structured event array (``x, y, t, p``) into the 5-byte format (no overflow markers)."""
    x, y, t, p = (np.asarray(events[k], dtype=np.int64) for k in ("x", "y", "t", "p"))
    if t.size and (t.min() < 0 or t.max() >= 2**23):
        raise DataError(f"timestamps must lie in [0, 2**23) µs to be encoded, got [{t.min()}, {t.max()}]")
    if x.size and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 255 or not np.isin(p, (0, 1)).all()):
        raise DataError("x and y must fit in a byte and p must be 0 or 1")
    rec = np.empty((t.size, 5), dtype=np.uint8)
    rec[:, 0], rec[:, 1] = x, y
    rec[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    rec[:, 3] = (t >> 8) & 0xFF
    rec[:, 4] = t & 0xFF
    return rec.tobytes()


def write_events(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write a recording in the original 5-byte format, atomically."""
    data = encode(events)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# ----------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class Recording:
    """One recording: where its bytes are (a file, or a member of a zip archive), its label and MNIST index."""

    file: str  # the .bin file, or the zip archive holding ``member``
    label: int
    index: int
    member: str | None = None  # zip member name when ``file`` is an archive

    @property
    def path(self) -> Path:
        """``file`` as a ``Path``."""
        return Path(self.file)

    @property
    def source(self) -> str:
        """``file`` or ``file:member``, as named in error messages."""
        return f"{self.file}:{self.member}" if self.member else self.file


_NAME = re.compile(r"(?:^|/)(Train|Test)/(\d)/(\d+)\.[bB][iI][nN]$")


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The folder holding ``Train``/``Test`` or ``train.zip``/``test.zip`` (accepts the data root too)."""
    if root is None:
        return dataset_dir("nmnist")
    root = Path(root)
    for cand in (root, root / "NMNIST", root / "nmnist" / "NMNIST"):
        if any((cand / n).exists() for n in ("Train", "Test", "train.zip", "test.zip")):
            return cand
    return root


def list_recordings(root: str | os.PathLike | None = None, split: str = "train") -> list[Recording]:
    """All recordings of ``split``, sorted by MNIST index: from ``<root>/<Split>/`` or else ``<root>/<split>.zip``."""
    if split not in SPLIT_DIRS:
        raise ParameterError(f"split must be 'train' or 'test', got {split!r}")
    base = resolve_root(root)
    folder = base / SPLIT_DIRS[split]
    recs: list[Recording] = []
    if folder.is_dir():
        for label, dpath in _digit_folders(folder):
            recs.extend(_folder_recordings(dpath, label))
    else:
        archive = base / f"{split}.zip"
        if not archive.is_file():
            raise missing_files_error("nmnist", [folder, archive], root=root)
        try:
            with zipfile.ZipFile(archive) as z:
                names = z.namelist()
        except zipfile.BadZipFile as e:
            raise DataError(f"{archive}: not a valid zip archive ({e}); delete it and fetch it again") from e
        for n in names:
            m = _NAME.search(n)
            if m and m.group(1) == SPLIT_DIRS[split]:
                recs.append(Recording(str(archive), int(m.group(2)), int(m.group(3)), member=n))
    if not recs:
        raise DataError(f"no N-MNIST .bin recordings found for split {split!r} under {base}; expected "
                        f"{SPLIT_DIRS.get(split, split)}/<digit>/<NNNNN>.bin files: `spikeseq data fetch nmnist` "
                        "downloads them")
    recs.sort(key=lambda r: (r.index, r.label, r.member or r.file))
    _check_listing(recs, split, base)
    return recs


def _check_listing(recs: list[Recording], split: str, base: Path) -> None:
    """:class:`DataError` when two recordings share an MNIST index (a copied file: one sample counted twice, maybe
    under two labels); a :class:`~spikeseq.data.repair.DataIncompleteWarning` (a ``DataRepairWarning`` that
    ``spikeseq data check`` counts as a problem) naming the digits without any recording (a missing or emptied class
    folder: a classifier trained on the split would never see them)."""
    idx = np.fromiter((r.index for r in recs), np.int64, len(recs))
    dup = np.flatnonzero(idx[1:] == idx[:-1])
    if dup.size:
        a, b = recs[int(dup[0])], recs[int(dup[0]) + 1]
        raise DataError(f"N-MNIST {split}: {a.source} and {b.source} are both recording {a.index} (digits {a.label} "
                        f"and {b.label}; {dup.size} repeated indices in all); each MNIST index is one recording of "
                        "one digit: delete the copy, or restore the split with `spikeseq data fetch nmnist --force`")
    missing = sorted(set(range(len(CLASSES))) - {r.label for r in recs})
    if missing:
        warn_incomplete(f"N-MNIST {split} under {base} has no recording of digit(s) {missing} (class folder missing "
                        "or empty): the split is incomplete and a classifier trained on it never sees those digits; "
                        "restore them with `spikeseq data fetch nmnist`", stacklevel=4)


def _digit_folders(folder: Path) -> list[tuple[int, str]]:
    """``(digit, path)`` of the class folders of a split folder; hidden entries and stray files are ignored, a
    file named like a class folder or another folder raise :class:`DataError`."""
    out = []
    with os.scandir(folder) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    for e in entries:
        digit = re.fullmatch(r"\d", e.name) is not None
        if e.is_dir():
            if not digit:
                raise DataError(f"{e.path}: unexpected folder in an N-MNIST split (expected digit folders 0..9); "
                                "move it elsewhere")
            out.append((int(e.name), e.path))
        elif digit:
            raise DataError(f"{e.path} is a file, but an N-MNIST split holds a folder of recordings per digit "
                            f"({SPLIT_DIRS.get(folder.name.lower(), folder.name)}/<digit>/<NNNNN>.bin): remove it "
                            "and restore the folder (`spikeseq data fetch nmnist`)")
    return out


def _folder_recordings(dpath: str, label: int) -> list[Recording]:
    """The ``<NNNNN>.bin`` recordings of one digit folder (the extension in any case). A name whose stem is not
    a number is skipped with a :class:`~spikeseq.data.repair.DataRepairWarning`; a folder or a dangling link
    named like a recording raises :class:`DataError`."""
    recs = []
    with os.scandir(dpath) as it:
        entries = sorted((e for e in it if e.name.lower().endswith(".bin")), key=lambda e: e.name)
    for e in entries:
        if not e.is_file():
            what = "a folder" if e.is_dir() else "not a readable file (a dangling link?)"
            raise DataError(f"{e.path} is {what}, but N-MNIST recordings are 5-byte event files: restore it "
                            "(`spikeseq data fetch nmnist`) or remove it")
        stem = e.name[:-4]
        if not stem.isdigit():
            warn_repair(f"{e.path}: skipped, the name is not <NNNNN>.bin (the 1-based MNIST index); rename it if "
                        "it is a recording", stacklevel=4)
            continue
        recs.append(Recording(e.path, label, int(stem)))
    return recs


class _ZipCache:
    """Per-process open zip handles (safe with DataLoader workers: re-opened after a fork)."""

    def __init__(self) -> None:
        self.pid = -1
        self.handles: dict[str, zipfile.ZipFile] = {}

    def read(self, rec: Recording) -> bytes:
        if self.pid != os.getpid():
            self.pid, self.handles = os.getpid(), {}
        z = self.handles.get(rec.file)
        if z is None:
            z = self.handles[rec.file] = zipfile.ZipFile(rec.file)
        return z.read(rec.member)  # type: ignore[arg-type]

    def __getstate__(self) -> dict[str, Any]:
        return {"pid": -1, "handles": {}}


def read_bytes(rec: Recording, zips: _ZipCache | None = None) -> bytes:
    """The raw bytes of recording ``rec``, from its file or its zip member (``zips`` caches open archives)."""
    if rec.member is None:
        try:
            with open(rec.file, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise DataError(f"N-MNIST file not found: {rec.file}; it was listed but is gone: restore it or run "
                            "`spikeseq data fetch nmnist`") from None
        except IsADirectoryError:
            raise DataError(f"{rec.file} is a folder, not an N-MNIST recording; restore the file") from None
    try:
        return (zips or _ZipCache()).read(rec)
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, OSError) as e:
        raise DataError(f"{rec.file}: the member {rec.member} cannot be read ({type(e).__name__}: {e}); the archive "
                        "is corrupt: delete it and fetch it again with `spikeseq data fetch nmnist --force`") from e


# ----------------------------------------------------------------------------------------------- frames
def _check_downsample(downsample: object) -> int:
    """``downsample`` as an int; :class:`ParameterError` unless it is a positive integer (checked before anything
    is read or divided by it)."""
    try:
        k = int(downsample)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        k = 0
    if k != downsample or k < 1:
        raise ParameterError(f"downsample must be a positive integer (k pools k x k pixels; 1 keeps the 34 x 34 "
                             f"sensor), got {downsample!r}")
    return k


def _channels(x: np.ndarray, y: np.ndarray, p: np.ndarray, downsample: int) -> tuple[np.ndarray, tuple[int, int]]:
    k = _check_downsample(downsample)
    h, w = -(-HEIGHT // k), -(-WIDTH // k)
    return (p * h + y // k) * w + x // k, (h, w)


def frames_from_arrays(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray, *, dt: float | None = None,
    n_bins: int | None = None, duration: float | None = None, binary: bool = False, downsample: int = 1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Frames ``[T, 2, H, W]`` (numpy) from decoded arrays; ``dt``/``duration`` in seconds."""
    ch, (h, w) = _channels(x, y, p, downsample)
    dt_us = None if dt is None else dt * 1e6
    if dt_us is not None and abs(dt_us - round(dt_us)) < 1e-6:
        dt_us = round(dt_us)
    dur_us = None if duration is None else duration * 1e6
    fr = bin_events(t, ch, 2 * h * w, dt=dt_us, n_bins=n_bins, duration=dur_us, binary=binary, dtype=dtype)
    return fr.reshape(-1, 2, h, w)


def to_frames(
    events: np.ndarray, *, dt: float | None = None, n_bins: int | None = None, duration: float | None = None,
    binary: bool = False, downsample: int = 1, dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Time-first frames ``[T, 2, 34/k, 34/k]`` (float32 by default) of one recording, by fixed ``dt`` (seconds)
    or ``n_bins``.

    See :mod:`spikeseq.data.events` for the binning rules; ``downsample=k`` pools k x k pixels (counts add up).
    ``dtype=torch.uint8`` (counts saturate at 255) makes DataLoader workers ship a quarter of the bytes; convert
    the batch with ``.float()``.
    """
    np_dtype = {torch.float32: np.float32, torch.float64: np.float64, torch.uint8: np.uint8,
                torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64}.get(dtype)
    if np_dtype is None:
        raise ParameterError(f"unsupported frame dtype {dtype}")
    fr = frames_from_arrays(events["x"], events["y"], events["t"], events["p"], dt=dt, n_bins=n_bins,
                            duration=duration, binary=binary, downsample=downsample, dtype=np.int64)
    if np_dtype == np.uint8:
        np.minimum(fr, 255, out=fr)
    return torch.from_numpy(fr.astype(np_dtype))


@dataclass(frozen=True)
class ToFrames:
    """Picklable transform (structured events -> ``[T, 2, H, W]`` float tensor) for :class:`NMNIST`."""

    dt: float | None = None
    n_bins: int | None = None
    duration: float | None = None
    binary: bool = False
    downsample: int = 1
    dtype: torch.dtype = torch.float32

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        """Bin one recording's events into frames with this transform's settings (:func:`to_frames`)."""
        return to_frames(events, dt=self.dt, n_bins=self.n_bins, duration=self.duration, binary=self.binary,
                         downsample=self.downsample, dtype=self.dtype)


# ----------------------------------------------------------------------------------------------- datasets
class NMNIST(torch.utils.data.Dataset):
    """N-MNIST recordings of one split, yielding ``(events, label)`` (or transformed events).

    ``transform`` takes the structured event array (tonic transforms work too); ``target_transform`` the label.
    Reads ``<root>/{Train,Test}`` or the official zip archives. ``repair=True`` tolerates truncated files.
    """

    sensor_size = SENSOR_SIZE
    classes = CLASSES
    ordering = "xytp"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", transform=None,
                 target_transform=None, *, repair: bool = False) -> None:
        self.split = split
        self.recordings = list_recordings(root, split)
        self.transform = transform
        self.target_transform = target_transform
        self.repair = repair
        self._zips = _ZipCache()

    @property
    def labels(self) -> np.ndarray:
        """Labels of the split's recordings ``[N]`` (digits 0-9), without decoding any event."""
        return np.array([r.label for r in self.recordings], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, i: int):
        rec = self.recordings[i]
        ev = decode(read_bytes(rec, self._zips), rec.source, repair=self.repair)
        label: Any = rec.label
        if self.transform is not None:
            ev = self.transform(ev)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return ev, label


def load_frames(
    root: str | os.PathLike | None = None, split: str = "train", *, dt: float | None = None,
    n_bins: int | None = None, duration: float | None = None, binary: bool = False, downsample: int = 1,
    cache: bool | str | os.PathLike = True, repair: bool = False, show_progress: bool | None = None,
) -> FrameSet:
    """Decode and bin every recording of a split into a :class:`FrameSet`, using the HDF5 cache.

    Give ``dt`` (seconds) or ``n_bins`` (default 30 when neither is given). With ``dt`` and no ``duration`` the
    frames are padded to the longest recording and ``lengths`` says how many bins each one has. ``cache``: True
    (automatic, keyed by these parameters and the source files), False, or an explicit HDF5 path.
    """
    from spikeseq.data.cache import cached, fingerprint_files

    if dt is None and n_bins is None:
        n_bins = 30
    if dt is not None and n_bins is not None:
        raise ParameterError("give dt (seconds) or n_bins, not both")
    _check_downsample(downsample)
    recs = list_recordings(root, split)
    srcs = sorted({r.file for r in recs})
    params = {
        "dataset": "nmnist", "split": split, "dt": dt, "n_bins": n_bins, "duration": duration,
        "binary": bool(binary), "downsample": int(downsample), "repair": bool(repair),
        "source": fingerprint_files(r.file for r in recs) if recs[0].member is None else fingerprint_files(srcs),
    }

    def build() -> dict[str, np.ndarray]:
        zips = _ZipCache()
        h, w = -(-HEIGHT // int(downsample)), -(-WIDTH // int(downsample))
        n_ch = 2 * h * w
        dt_us = None if dt is None else (round(dt * 1e6) if abs(dt * 1e6 - round(dt * 1e6)) < 1e-6 else dt * 1e6)
        dur_us = None if duration is None else duration * 1e6
        counts, lengths = [], np.zeros(len(recs), np.int64)
        out = np.zeros((len(recs), n_bins or 1, 2, h, w), np.uint8) if (n_bins or duration) else None
        if out is not None and duration is not None and dt is not None:
            out = np.zeros((len(recs), max(1, math.ceil(duration / dt - 1e-9)), 2, h, w), np.uint8)
        for i, rec in enumerate(progress(recs, desc=f"N-MNIST {split}: binning", total=len(recs),
                                         enabled=show_progress)):
            x, y, t, p = decode_arrays(read_bytes(rec, zips), rec.source, repair=repair)
            ch, _ = _channels(x, y, p, downsample)
            c, T = bin_counts(t, ch, n_ch, dt=dt_us, n_bins=n_bins, duration=dur_us)
            if binary:
                np.minimum(c, 1, out=c)
            lengths[i] = T
            if out is None:  # dt without duration: lengths differ, pad afterwards
                counts.append(c.astype(compact_dtype(int(c.max()) if c.size else 0)))
                continue
            m = int(c.max()) if c.size else 0
            if m > np.iinfo(out.dtype).max:
                out = out.astype(compact_dtype(m))
            out[i].reshape(-1)[:] = c
        if out is None:
            dtype = np.result_type(*[c.dtype for c in counts])
            out = np.zeros((len(recs), int(lengths.max()), 2, h, w), dtype)
            for i, c in enumerate(counts):
                out[i, : lengths[i]].reshape(-1)[:] = c
        return {"x": out, "y": np.array([r.label for r in recs], np.int64), "lengths": lengths}

    arrays, hit = cached("nmnist", split, params, build, cache)
    return FrameSet(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]),
                    torch.from_numpy(arrays["lengths"]), params, hit, list(CLASSES))


class Counts(NamedTuple):
    """Recordings per class of a split (``per_class[d]`` = number with label ``d``)."""

    total: int
    per_class: list[int]


def class_counts(root: str | os.PathLike | None = None, split: str = "train") -> Counts:
    """Number of recordings and count per digit in ``split``, from the file names only."""
    labels = np.array([r.label for r in list_recordings(root, split)])
    return Counts(int(labels.size), np.bincount(labels, minlength=10).tolist())


__all__ = [
    "CLASSES", "EVENT_DTYPE", "SENSOR_SIZE", "NMNIST", "FrameSet", "Recording", "ToFrames", "class_counts",
    "decode", "decode_arrays", "encode", "frames_from_arrays", "list_recordings", "load_frames", "read_events",
    "time_bins", "to_frames", "write_events",
]
