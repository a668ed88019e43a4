"""The binned-data cache checks its own content: a cache file with damaged bytes or cut short (under its right
name) is rebuilt from the source files with a warning naming it, never served."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from spikeseq.data import cache, shd
from spikeseq.data.repair import DataRepairWarning


def _shd_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0.0, 0.5, 30)).astype(np.float16) for _ in range(8)]
    units = [rng.integers(0, 700, 30).astype(np.uint16) for _ in range(8)]
    return shd.write_shd(path, times, units, np.arange(8) % 3, keys=["a", "b", "c"])


def _flip_bytes_of(cf: Path, name: str) -> None:
    with h5py.File(cf, "r") as f:
        offset, n = f[name].id.get_offset(), f[name].nbytes
    raw = bytearray(cf.read_bytes())
    for i in range(offset, offset + n, 97):
        raw[i] ^= 0xFF
    cf.write_bytes(bytes(raw))


def _same(a, b) -> bool:
    return (torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.lengths, b.lengths)
            and a.classes == b.classes)


@pytest.mark.parametrize("dt", [10e-3, 1e-3])  # x of 280 kB (read) and of 2.8 MB (memory-mapped)
def test_cache_with_flipped_bytes_is_rebuilt_with_a_warning(tmp_path, _tmp_cache, dt):
    path = _shd_file(tmp_path / "shd_train.h5")
    first = shd.load_frames(path, dt=dt)
    (cf,) = _tmp_cache.glob("*.h5")
    assert shd.load_frames(path, dt=dt).cache_hit  # intact: served from the cache
    _flip_bytes_of(cf, "x")
    with pytest.warns(DataRepairWarning, match=rf"cache .*{cf.name} is unreadable \(the content of dataset\(s\) x "
                                               r"does not match the SHA-256 checksum.*rebuilding it"):
        again = shd.load_frames(path, dt=dt)
    assert not again.cache_hit and _same(again, first)
    assert shd.load_frames(path, dt=dt).cache_hit  # the rebuilt cache is intact


def test_truncated_cache_is_rebuilt_with_a_warning(tmp_path, _tmp_cache):
    path = _shd_file(tmp_path / "shd_train.h5")
    first = shd.load_frames(path)
    (cf,) = _tmp_cache.glob("*.h5")
    cf.write_bytes(cf.read_bytes()[: cf.stat().st_size // 2])
    with pytest.warns(DataRepairWarning, match=rf"cache .*{cf.name} is unreadable \(truncated or damaged HDF5"):
        again = shd.load_frames(path)
    assert not again.cache_hit and _same(again, first)


def test_explicit_cache_with_damaged_content_is_rebuilt(tmp_path):
    path = _shd_file(tmp_path / "shd_train.h5")
    explicit = tmp_path / "mine.h5"
    first = shd.load_frames(path, cache=explicit)
    _flip_bytes_of(explicit, "y")
    with pytest.warns(DataRepairWarning, match=r"mine\.h5 is unreadable \(the content of dataset\(s\) y"):
        again = shd.load_frames(path, cache=explicit)
    assert not again.cache_hit and _same(again, first)


def test_cache_without_checksums_is_not_served(tmp_path, _tmp_cache):
    path = _shd_file(tmp_path / "shd_train.h5")
    first = shd.load_frames(path)
    (cf,) = _tmp_cache.glob("*.h5")
    with h5py.File(cf, "a") as f:
        del f.attrs["sha256"]
    with pytest.warns(DataRepairWarning, match=r"has no SHA-256 checksums"):
        assert _same(shd.load_frames(path), first)


def test_array_digest_sees_dtype_shape_and_bytes():
    a = np.arange(6, dtype=np.uint8)
    d = cache.array_digest(a)
    assert d == cache.array_digest(a.copy())
    assert len({d, cache.array_digest(a.reshape(2, 3)), cache.array_digest(a.astype(np.int8)),
                cache.array_digest(a[::-1])}) == 4
    assert cache.array_digest(np.array([b"ab", b"c"])) != cache.array_digest(np.array([b"ab", b"d"]))
