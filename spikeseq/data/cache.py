"""On-disk HDF5 cache of binned tensors, keyed by the transform parameters and a fingerprint of the source files.

The file name carries a hash of ``params`` (which include the source fingerprint); the parameters are also stored
in the file's attributes (``params`` JSON) and compared on every read, so a cache written by other parameters is
never used: an explicit ``cache=<path>`` written with other parameters raises :class:`DataError`. A cache is written
atomically and only after every source file decoded without error, so nothing corrupt is ever cached. Every
dataset's SHA-256 (of its dtype, shape and bytes) is stored with it (``sha256`` attribute) and checked on every
read. An unreadable automatic cache (e.g. truncated by a crash of another tool) and any cache whose content no
longer matches its checksums or lacks one of its datasets (damaged bytes) is rebuilt from the source files with a
:class:`~spikeseq.data.repair.DataRepairWarning` naming the file, never served. A cache that cannot be written
(read-only folder, ...) is skipped with the same warning: the data read from the source files is returned.

Old formats: the format version is part of the hashed parameters, so an entry of an older :data:`CACHE_FORMAT` has
another name and is never read again. Writing an entry into the automatic cache folder removes that folder's
old-format entries of the same dataset and split (:func:`remove_old_entries`): only regular files named
``<dataset>-<split>-<16 hex>.h5`` whose stored parameters hash to their own name and record an older format (files
this module wrote, that this version can never use; an older spikeseq sharing the folder would rebuild them). An
explicit ``cache=<path>`` holding the same parameters in an older format is rebuilt in place with a warning.
:func:`old_entries` lists them all, :func:`remove_old_entries` without arguments removes them all.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from spikeseq.data._atomic import atomic_path
from spikeseq.data.paths import ENV_CACHE, cache_dir
from spikeseq.data.repair import warn_repair
from spikeseq.errors import DataError

#: 2: per-dataset SHA-256 checksums (``sha256`` attribute); caches of format 1 are rebuilt
CACHE_FORMAT = 2


def _h5py():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a base dependency
        raise DataError("the HDF5 cache needs h5py: pip install h5py") from e
    return h5py


def params_json(params: dict[str, Any]) -> str:
    """Canonical JSON of the cache parameters (sorted keys, with the cache format version) stored in every cache."""
    return json.dumps({"cache_format": CACHE_FORMAT, **params}, sort_keys=True, default=str)


def fingerprint_files(paths: Iterable[str | os.PathLike]) -> str:
    """Cheap fingerprint of source files: count, names, sizes, modification and status-change times, inodes.

    ``st_ctime_ns`` (which ``os.utime``, ``cp -p``, ``rsync -t`` and ``tar`` cannot set back) and the inode catch a
    same-size rewrite whose modification time was restored. A missing file (or dangling link) or a folder where a
    file is expected raises :class:`DataError` naming it.
    """
    h = hashlib.sha256()
    n = 0
    for p in paths:
        st = _stat_file(Path(p))
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode())
        n += 1
    return f"{n}:{h.hexdigest()[:16]}"


def _stat_file(path: Path) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        what = "a link to a missing file" if path.is_symlink() else "missing"
        raise DataError(f"{path} is {what}; restore the data file (`spikeseq data check` lists what is missing)"
                        ) from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check the file and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path} is a folder, not a data file; put the original file there (or move the folder away)")
    return st


def cache_path(dataset: str, split: str, params: dict[str, Any], directory: Path | None = None) -> Path:
    """Cache file ``<dataset>-<split>-<hash of params>.h5`` in ``directory`` (default: the cache folder)."""
    key = hashlib.sha256(params_json(params).encode()).hexdigest()[:16]
    return (directory or cache_dir()) / f"{dataset}-{split}-{key}.h5"


def _mapped(path: Path, dset) -> np.ndarray | None:
    """A copy-on-write memory map of a contiguous, uncompressed dataset (None when that is not possible)."""
    try:
        offset = dset.id.get_offset()
    except Exception:
        return None
    if offset is None or dset.chunks is not None or dset.compression is not None or dset.size == 0:
        return None
    if dset.dtype.kind not in "biuf":
        return None
    return np.memmap(path, dtype=dset.dtype, mode="c", offset=offset, shape=dset.shape)


class DamagedCache(Exception):
    """A cache file that is valid HDF5 with the right parameters but lacks datasets it was written with, or whose
    content does not match the checksums written with it."""


class OldCacheFormat(DamagedCache):
    """A cache file holding the requested parameters, written in an older :data:`CACHE_FORMAT`."""


_ENTRY_KEY = re.compile(r"[0-9a-f]{16}")


def _old_format(path: Path) -> int | None:
    """The format of ``path`` when it is one of this cache's own entries of an older :data:`CACHE_FORMAT` (a
    regular file, not a link, named ``<...>-<key>.h5`` where ``key`` is the hash of the parameters stored in it,
    as :func:`cache_path` names them, recording a format below the current one), else ``None``."""
    name = path.name
    if not (name.endswith(".h5") and _ENTRY_KEY.fullmatch(name[-19:-3]) and name[-20:-19] == "-"):
        return None
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return None
        with _h5py().File(path, "r") as f:
            raw = f.attrs.get("params")
    except Exception:  # unreadable, not HDF5, vanished: not provably ours
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or hashlib.sha256(raw.encode()).hexdigest()[:16] != name[-19:-3]:
        return None
    try:
        fmt = json.loads(raw).get("cache_format")
    except (ValueError, AttributeError):
        return None
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt >= CACHE_FORMAT:
        return None
    return fmt


def old_entries(directory: Path | None = None, dataset: str | None = None, split: str | None = None) -> list[Path]:
    """This cache's own entries of an older :data:`CACHE_FORMAT` in ``directory`` (default: the cache folder),
    which this version never reads; with ``dataset`` (and ``split``) only those named ``<dataset>-<split>-...``.
    See the module docstring for how an entry is recognised as ours."""
    directory = directory or cache_dir()
    prefix = "" if dataset is None else f"{dataset}-" + ("" if split is None else f"{split}-")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for name in names:
        if not name.startswith(prefix):
            continue
        if split is not None and len(name) != len(prefix) + 19:  # "<dataset>-<split>-" + key + ".h5" exactly
            continue
        if _old_format(Path(directory) / name) is not None:
            out.append(Path(directory) / name)
    return out


def remove_old_entries(directory: Path | None = None, dataset: str | None = None,
                       split: str | None = None) -> list[Path]:
    """Delete the entries :func:`old_entries` lists (each one ``unlink``: atomic, a reader that has it open keeps
    its copy) and return those removed; one that cannot be removed (permissions) is left where it is."""
    removed = []
    for path in old_entries(directory, dataset, split):
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _same_but_older_format(have: str, want: str) -> bool:
    """Whether the stored parameters ``have`` are the requested ``want`` written in an older cache format."""
    try:
        h, w = json.loads(have), json.loads(want)
    except ValueError:
        return False
    if not (isinstance(h, dict) and isinstance(w, dict)):
        return False
    fmt = h.pop("cache_format", None)
    w.pop("cache_format", None)
    return isinstance(fmt, int) and not isinstance(fmt, bool) and fmt < CACHE_FORMAT and h == w


def array_digest(a: np.ndarray) -> str:
    """SHA-256 (hex) of an array's dtype, shape and C-order bytes: the checksum stored for every cached dataset."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}\0".encode())
    if a.size:
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _attr_json(f, name: str, default: str) -> Any:
    raw = f.attrs.get(name, default)
    return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))


def read_cache(path: Path, params: dict[str, Any], *, mmap: bool = True) -> dict[str, np.ndarray]:
    """Read every dataset of a cache file after checking its parameters; :class:`DataError` on mismatch.

    With ``mmap`` large contiguous datasets are memory-mapped copy-on-write instead of read: the pages come from
    the OS page cache on first use, and DataLoader workers share them. A cache that lacks one of the datasets it
    was written with, has no checksums, or whose dataset does not match its SHA-256 checksum (every dataset is
    read once to check it) raises :class:`DamagedCache`.
    """
    h5py = _h5py()
    want = params_json(params)
    with h5py.File(path, "r") as f:
        have = f.attrs.get("params", "")
        have = have.decode() if isinstance(have, bytes) else str(have)
        if have != want and _same_but_older_format(have, want):  # ours, for these parameters: safe to rebuild
            raise OldCacheFormat(f"was written in cache format {json.loads(have)['cache_format']} for the same "
                                 f"parameters; this version reads and writes format {CACHE_FORMAT}")
        if have != want:
            raise DataError(
                f"cache {path} was written by other transform parameters:\n  file:      {have}\n  requested: {want}\n"
                "delete the file or pass another cache path"
            )
        lost = sorted(set(_attr_json(f, "datasets", "[]")) - set(f.keys()))
        if lost:
            raise DamagedCache(f"it lacks the dataset(s) {', '.join(lost)}")
        sums = _attr_json(f, "sha256", "null")
        if not isinstance(sums, dict):
            raise DamagedCache("it has no SHA-256 checksums (attribute 'sha256')")
        out = {}
        for k in f.keys():
            d = f[k]
            m = _mapped(path, d) if mmap and d.nbytes >= 1 << 20 else None
            out[k] = m if m is not None else d[()]
    bad = sorted(k for k, v in out.items() if sums.get(k) != array_digest(v))
    if bad:
        raise DamagedCache(f"the content of dataset(s) {', '.join(bad)} does not match the SHA-256 checksum written "
                           "with it (damaged bytes)")
    return out


def write_cache(path: Path, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> None:
    """Write ``arrays``, the ``params`` attribute, the list of dataset names and their SHA-256 checksums to the
    HDF5 file ``path`` atomically (temp file + rename)."""
    h5py = _h5py()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["params"] = params_json(params)
            f.attrs["datasets"] = json.dumps(sorted(arrays))
            f.attrs["sha256"] = json.dumps({k: array_digest(v) for k, v in arrays.items()}, sort_keys=True)
            for k, v in arrays.items():
                f.create_dataset(k, data=v)


def cached(
    dataset: str,
    split: str,
    params: dict[str, Any],
    build: Callable[[], dict[str, np.ndarray]],
    cache: bool | str | os.PathLike = True,
) -> tuple[dict[str, np.ndarray], bool]:
    """Return ``(arrays, hit)``: the cached arrays for ``params`` or ``build()``'s, cached afterwards.

    ``cache``: True (automatic file under :func:`~spikeseq.data.paths.cache_dir`), False (no cache) or a path.
    """
    if cache is False:
        return build(), False
    explicit = not isinstance(cache, bool)
    path = Path(cache) if explicit else cache_path(dataset, split, params)
    if path.is_file():
        try:
            return read_cache(path, params), True
        except OldCacheFormat as e:  # our file for these parameters, an older format: safe to overwrite
            warn_repair(f"cache {path} {e}; rebuilding it from the source files")
        except DamagedCache as e:  # our file for these parameters, with damaged content: safe to overwrite
            warn_repair(f"cache {path} is unreadable ({e}); rebuilding it from the source files")
        except DataError:
            raise
        except Exception as e:  # unreadable / truncated HDF5
            if explicit:  # maybe not a cache at all: never overwrite a file the user named
                raise DataError(f"cache {path} is unreadable ({type(e).__name__}: {e}); it is truncated or not a "
                                "spikeseq cache: delete it (it is rebuilt) or pass another cache path") from e
            warn_repair(f"cache {path} is unreadable (truncated or damaged HDF5: {type(e).__name__}: {e}); "
                        "rebuilding it from the source files")
    arrays = build()
    try:
        write_cache(path, arrays, params)
    except OSError as e:  # OutputError (read-only folder, a file where the folder should be), disk full, ...
        warn_repair(f"cannot write the cache {path} ({e}); the data was read from the source files and is used "
                    f"without a cache (set {ENV_CACHE} to a writable folder to cache it)")
        return arrays, False
    if not explicit:  # the rebuilt entry replaces this dataset's and split's entries of older formats
        remove_old_entries(path.parent, dataset, split)
    return arrays, False
