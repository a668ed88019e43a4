"""SHD/SSC HDF5: exact layout written by write_shd, round trips, other integer dtypes, broken files, binning,
tonic reading our files offline."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from spikeseq.data import shd
from spikeseq.data.events import collate_events_frames
from spikeseq.errors import DataError


def _samples(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        k = 20 + 7 * i
        times.append(np.sort(rng.uniform(0, 1.4, k)))
        units.append(rng.integers(0, 700, k))
    labels = np.arange(n) % 20
    return times, units, labels


def test_write_exact_layout_and_round_trip(tmp_path):
    times, units, labels = _samples()
    keys = [f"k{i}" for i in range(20)]
    path = shd.write_shd(tmp_path / "shd_train.h5", times, units, labels, keys=keys, speakers=[3, 1, 4, 1, 5, 9],
                         meta={"note": "fixture"}, meta_info={"age": np.array([30, 40])})
    with h5py.File(path) as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float16
        assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.uint16
        assert f["labels"].dtype == np.uint16 and f["extra/speaker"].dtype == np.uint16
        assert f["extra/keys"][()].tolist()[:2] == [b"k0", b"k1"]
        assert f["extra/meta_info/age"][()].tolist() == [30, 40]
    d = shd.read_shd(path)
    assert len(d) == 6 and d.keys == keys and d.speakers.tolist() == [3, 1, 4, 1, 5, 9]
    assert d.labels.dtype == np.int64 and d.labels.tolist() == labels.tolist() and d.meta["note"] == "fixture"
    r = shd.read_shd(path, raw=True)
    assert r.times[0].dtype == np.float16 and r.units[0].dtype == np.uint16
    t, u = r.sample(2)
    assert t.dtype == np.float64 and u.dtype == np.int64 and np.array_equal(t, d.times[2])
    for i in range(6):
        assert d.times[i].dtype == np.float64
        np.testing.assert_array_equal(d.times[i], times[i].astype(np.float16).astype(np.float64))
        np.testing.assert_array_equal(d.units[i], units[i])


def test_float16_times_are_cast_before_scaling(tmp_path):
    path = shd.write_shd(tmp_path / "s.h5", [np.array([0.5, 1.3994])], [np.array([0, 699])], [3])
    ev = shd.read_shd(path).events(0)
    assert ev["t"].tolist() == [500_000, int(np.float64(np.float16(1.3994)) * 1e6)]
    assert ev["x"].tolist() == [0, 699] and ev["p"].tolist() == [1, 1]


def test_any_integer_dtypes_are_accepted(tmp_path):
    path = tmp_path / "ints.h5"
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.int32))
        t[0], t[1] = np.array([0.1, 0.2], np.float16), np.array([0.3], np.float16)
        u[0], u[1] = np.array([5, 6], np.int32), np.array([7], np.int32)
        f.create_dataset("labels", data=np.array([1, 0], np.int64))
        f.create_dataset("extra/speaker", data=np.array([2, 2], np.uint8))
    d = shd.read_shd(path)
    assert d.units[0].tolist() == [5, 6] and d.labels.tolist() == [1, 0] and d.speakers.tolist() == [2, 2]
    assert d.keys == ["0", "1"]  # no extra/keys: class ids as names


def test_missing_dataset_names_file_and_dataset(tmp_path):
    path = tmp_path / "broken.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=np.array([0], np.uint16))
        f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float16))
    with pytest.raises(DataError, match=r"broken\.h5: missing HDF5 dataset\(s\) spikes/units"):
        shd.read_shd(path)


def test_mismatched_times_units_names_sample(tmp_path):
    path = tmp_path / "mism.h5"
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.uint16))
        t[0], u[0] = np.array([0.1], np.float16), np.array([1], np.uint16)
        t[1], u[1] = np.array([0.1, 0.2, 0.3], np.float16), np.array([1, 2], np.uint16)
        f.create_dataset("labels", data=np.array([0, 1], np.uint16))
    with pytest.raises(DataError, match=r"mism\.h5: sample 1 has 3 spike times but 2 units"):
        shd.read_shd(path)


def test_different_sample_counts_and_non_hdf5(tmp_path):
    path = tmp_path / "count.h5"
    shd.write_shd(path, *_samples(3))
    with h5py.File(path, "a") as f:
        del f["labels"]
        f.create_dataset("labels", data=np.array([0, 1], np.uint16))
    with pytest.raises(DataError, match="different numbers of samples"):
        shd.read_shd(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match=r"junk\.h5: not a readable HDF5 file"):
        shd.read_shd(tmp_path / "junk.h5")


def test_missing_file_names_url_and_variable(tmp_path):
    with pytest.raises(DataError) as e:
        shd.read_shd(tmp_path / "shd_train.h5")
    assert "shd_train.h5" in str(e.value) and "SPIKESEQ_DATA" in str(e.value) and "zenkelab.org" in str(e.value)


def test_dataset_binning_and_downsampling(tmp_path):
    times = [np.array([0.0, 0.0049, 0.005, 0.0234]), np.array([0.001])]
    units = [np.array([0, 4, 699, 5]), np.array([10])]
    path = shd.write_shd(tmp_path / "b.h5", times, units, [2, 7])
    ds = shd.SHDDataset(path, dt=5e-3)
    x, y = ds[0]
    assert tuple(x.shape) == (5, 700) and y == 2 and x.dtype == torch.float32
    assert x[0, 0] == 1 and x[0, 4] == 1 and x[1, 699] == 1 and x[4, 5] == 1 and float(x.sum()) == 4
    ds = shd.SHDDataset(path, dt=5e-3, downsample=5)
    x, _ = ds[0]
    assert tuple(x.shape) == (5, 140) and x[0, 0] == 2 and x[1, 139] == 1 and x[4, 1] == 1
    xb, yb, lengths = collate_events_frames([ds[0], ds[1]])
    assert tuple(xb.shape) == (5, 2, 140) and lengths.tolist() == [5, 1] and yb.tolist() == [2, 7]
    assert float(xb[1:, 1].sum()) == 0
    ds = shd.SHDDataset(path, n_bins=10, duration=1.0)
    assert tuple(ds[1][0].shape) == (10, 700)


def test_tonic_reads_our_file_offline(tmp_path):
    tonic = pytest.importorskip("tonic")
    times, units, labels = _samples(4)
    folder = tmp_path / "SHD"
    shd.write_shd(folder / "shd_test.h5", times, units, labels, keys=[f"c{i}" for i in range(20)])
    (folder / "shd_test.h5.zip").write_bytes(b"")  # placeholder: tonic then skips its download
    ds = tonic.datasets.SHD(str(tmp_path), train=False)
    ours = shd.read_shd(folder / "shd_test.h5")
    assert len(ds) == 4
    for i in range(4):
        ev, target = ds[i]
        np.testing.assert_array_equal(ev["t"], ours.events(i)["t"])
        np.testing.assert_array_equal(ev["x"], ours.events(i)["x"])
        assert int(target) == ours.labels[i]


def test_load_frames_cached_equals_dataset(tmp_path):
    times, units, labels = _samples(5)
    path = shd.write_shd(tmp_path / "shd_test.h5", times, units, labels)
    a = shd.load_frames(path, dt=0.1, downsample=5)
    b = shd.load_frames(path, dt=0.1, downsample=5)
    assert not a.cache_hit and b.cache_hit and torch.equal(a.x, b.x)
    assert a.classes == b.classes == [str(i) for i in range(5)]
    ds = shd.SHDDataset(path, dt=0.1, downsample=5)
    for i in range(5):
        x, y = b[i]
        assert torch.equal(x, ds[i][0]) and y == labels[i]
    assert tuple(b.x.shape) == (5, int(b.lengths.max()), 140)
    c = shd.load_frames(path, n_bins=3, binary=True)
    assert not c.cache_hit and tuple(c.x.shape) == (5, 3, 700) and int(c.x.max()) == 1
