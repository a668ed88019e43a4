"""Entries of an older cache format (``CACHE_FORMAT`` 1) are never read again: writing an entry removes the same
dataset's and split's old-format entries, and only files provably this cache's own (named by the hash of the
parameters stored in them, recording an older format); ``old_entries`` / ``remove_old_entries`` list and remove all
of them. Before, they stayed in the cache folder forever (the repository's cache held ~30 of them, ~400 MB). An
explicit cache path holding the same parameters in an older format is rebuilt with a warning (it was a DataError
claiming "other transform parameters")."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikeseq.data import cache, shd
from spikeseq.data.repair import DataRepairWarning
from spikeseq.errors import DataError


def _shd_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0.0, 0.5, 30)).astype(np.float16) for _ in range(8)]
    units = [rng.integers(0, 700, 30).astype(np.uint16) for _ in range(8)]
    return shd.write_shd(path, times, units, np.arange(8) % 3, keys=["a", "b", "c"])


def _format(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return int(json.loads(f.attrs["params"])["cache_format"])


def _old_entry(src: Path, monkeypatch, **kw) -> Path:
    """Load ``src`` under CACHE_FORMAT 1 (as the previous version did) and return the entry it wrote."""
    with monkeypatch.context() as m:
        m.setattr(cache, "CACHE_FORMAT", 1)
        before = set(cache.cache_dir().glob("*.h5"))
        shd.load_frames(src, **kw)
        (new,) = set(cache.cache_dir().glob("*.h5")) - before
    assert _format(new) == 1
    return new


def test_rebuilding_removes_only_this_caches_own_old_entries(tmp_path, _tmp_cache, monkeypatch):
    src = _shd_file(tmp_path / "shd_train.h5")
    other = _shd_file(tmp_path / "shd_test.h5")
    old = _old_entry(src, monkeypatch)
    old_coarse = _old_entry(src, monkeypatch, dt=20e-3)  # same dataset and split, other parameters: also dead
    old_other_split = _old_entry(other, monkeypatch)
    # look-alikes that are not provably ours: kept
    renamed = _tmp_cache / f"shd-shd_train-{'0' * 16}.h5"      # content of an old entry under another hash
    shutil.copy(old, renamed)
    not_hdf5 = _tmp_cache / f"shd-shd_train-{'a' * 16}.h5"
    not_hdf5.write_bytes(b"not a cache")
    link = _tmp_cache / "link"
    os.symlink(old, link)
    mine = _tmp_cache / "shd-shd_train-notes.txt"
    mine.write_text("user file")
    assert cache.old_entries(_tmp_cache, "shd", "shd_train") == sorted([old, old_coarse])

    fresh = shd.load_frames(src)   # no format-2 entry yet: built, written, and the old ones removed
    assert not fresh.cache_hit
    assert not old.exists() and not old_coarse.exists()
    (new,) = [p for p in _tmp_cache.glob("shd-shd_train-*.h5") if p not in (renamed, not_hdf5)]
    assert _format(new) == cache.CACHE_FORMAT == 2 and new.name == cache.cache_path("shd", "shd_train",
                                                                                     fresh.params).name
    assert renamed.is_file() and not_hdf5.is_file() and mine.is_file() and link.is_symlink()
    assert old_other_split.is_file()   # another split is removed when that split is rebuilt, or on request:
    assert cache.old_entries(_tmp_cache) == [old_other_split]
    assert cache.remove_old_entries(_tmp_cache) == [old_other_split] and not old_other_split.exists()
    assert cache.old_entries(_tmp_cache) == [] and shd.load_frames(src).cache_hit   # the new entry serves


def test_explicit_cache_of_an_older_format_is_rebuilt_with_a_warning(tmp_path, monkeypatch):
    src = _shd_file(tmp_path / "shd_train.h5")
    explicit = tmp_path / "mine.h5"
    with monkeypatch.context() as m:
        m.setattr(cache, "CACHE_FORMAT", 1)
        first = shd.load_frames(src, cache=explicit)
    with pytest.warns(DataRepairWarning, match=r"mine\.h5 was written in cache format 1 for the same parameters; "
                                               r"this version reads and writes format 2.*rebuilding"):
        again = shd.load_frames(src, cache=explicit)
    assert not again.cache_hit and np.array_equal(again.x.numpy(), first.x.numpy()) and _format(explicit) == 2
    assert shd.load_frames(src, cache=explicit).cache_hit
    # other parameters in an explicit file are still refused, never overwritten
    with pytest.raises(DataError, match="written by other transform parameters"):
        shd.load_frames(src, dt=20e-3, cache=explicit)
    assert _format(explicit) == 2


def test_an_unremovable_old_entry_is_left_and_still_listed(tmp_path, _tmp_cache, monkeypatch):
    src = _shd_file(tmp_path / "shd_train.h5")
    old = _old_entry(src, monkeypatch)

    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    assert not shd.load_frames(src).cache_hit   # the load itself is unaffected
    assert old.is_file() and cache.old_entries(_tmp_cache) == [old]
    assert cache.remove_old_entries(_tmp_cache) == []
