"""N-MNIST: the real 1,100-recording subset (facts of ../shared/data/README.md) and fixture files in the exact
5-byte format, including broken ones."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeseq.data import nmnist
from spikeseq.data.repair import DataRepairWarning
from spikeseq.errors import DataError
from tests.conftest import require_path


def _events(n: int, seed: int = 0, t_max: int = 300_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=nmnist.EVENT_DTYPE)
    ev["x"] = rng.integers(0, 34, n)
    ev["y"] = rng.integers(0, 34, n)
    ev["t"] = np.sort(rng.integers(0, t_max, n))
    ev["p"] = rng.integers(0, 2, n)
    return ev


def _read_list(path: Path) -> dict[int, int]:
    rows = np.loadtxt(path, comments="#", dtype=np.int64)
    return {int(a): int(b) for a, b in rows}


# ------------------------------------------------------------------------------------------- real subset
@pytest.fixture(scope="module")
def nmnist_root(data_root):
    return require_path(data_root / "nmnist" / "NMNIST")


def test_real_counts_and_labels_match_the_lists(nmnist_root, data_root):
    train, test = nmnist.NMNIST(nmnist_root, "train"), nmnist.NMNIST(nmnist_root, "test")
    assert (len(train), len(test)) == (1000, 100)
    lists = {"train": _read_list(data_root / "nmnist" / "train1K.txt"),
             "test": _read_list(data_root / "nmnist" / "test100.txt")}
    for ds, split, offset in ((train, "train", 0), (test, "test", 60000)):
        got = {r.index + offset: r.label for r in ds.recordings}
        assert got == lists[split]
    tr = np.bincount(train.labels, minlength=10)
    te = np.bincount(test.labels, minlength=10)
    assert (tr.min(), tr.max()) == (87, 117)
    assert (te.min(), te.max(), te[8]) == (2, 15, 2)
    assert tr.sum() == 1000 and te.sum() == 100


def test_real_event_statistics(nmnist_root):
    n_ev, t_max, on = [], 0, 0
    for split in ("train", "test"):
        for rec in nmnist.list_recordings(nmnist_root, split):
            raw = np.frombuffer(rec.path.read_bytes(), np.uint8)
            assert not (raw[1::5] == 240).any()  # no overflow markers in the real files
            ev = nmnist.read_events(rec.path)
            assert np.all(np.diff(ev["t"]) >= 0)
            n_ev.append(len(ev))
            t_max = max(t_max, int(ev["t"].max()))
            on += int(ev["p"].sum())
    n_ev = np.array(n_ev)
    assert (n_ev.min(), n_ev.max()) == (1069, 7152)
    assert 4000 < n_ev.mean() < 4200
    assert t_max <= 336_040
    assert 0.4 < on / n_ev.sum() < 0.6


def test_real_decoding_matches_tonic(nmnist_root):
    tonic_io = pytest.importorskip("tonic.io")
    for rec in nmnist.list_recordings(nmnist_root, "test")[:25]:
        ref = tonic_io.read_mnist_file(str(rec.path), dtype=nmnist.EVENT_DTYPE)
        ours = nmnist.read_events(rec.path)
        for k in "xytp":
            np.testing.assert_array_equal(ours[k], ref[k])


def test_real_frames_bin_every_event(nmnist_root):
    fs = nmnist.load_frames(nmnist_root, "test", n_bins=30, cache=False)
    assert tuple(fs.x.shape) == (100, 30, 2, 34, 34)
    n_ev = [len(nmnist.read_events(r.path)) for r in nmnist.list_recordings(nmnist_root, "test")]
    np.testing.assert_array_equal(fs.x.flatten(1).sum(1, dtype=torch.int64).numpy(), n_ev)
    x, y = fs[3]
    assert x.dtype == torch.float32 and y == int(fs.y[3])


# ------------------------------------------------------------------------------------------- format
def test_encode_decode_round_trip(tmp_path):
    ev = _events(500)
    path = tmp_path / "Train" / "3" / "00007.bin"
    nmnist.write_events(path, ev)
    assert path.stat().st_size == 5 * 500
    back = nmnist.read_events(path)
    assert back.dtype == nmnist.EVENT_DTYPE
    for k in "xytp":
        np.testing.assert_array_equal(back[k], ev[k])


def test_known_bytes():
    # x=3, y=33, p=1, t=0x012345 -> [3, 33, 0x80|0x01, 0x23, 0x45]
    ev = nmnist.decode(bytes([3, 33, 0x81, 0x23, 0x45]))
    assert (ev["x"][0], ev["y"][0], ev["p"][0], ev["t"][0]) == (3, 33, 1, 0x012345)


def test_overflow_marker_adds_2_13_to_later_events(tmp_path):
    raw = bytearray(nmnist.encode(_events(3, t_max=100)))
    marker = bytes([0, 240, 0, 0, 0])
    data = raw[:5] + marker + raw[5:] + marker + nmnist.encode(_events(1, seed=2, t_max=100))
    with pytest.warns(DataRepairWarning, match=r"2 record\(s\) with y=240 \(byte offset\(s\) 6, 21\)"):
        ev = nmnist.decode(bytes(data))  # real files hold no marker: one is announced
    last = nmnist.decode(nmnist.encode(_events(1, 2, 100)))["t"][0]
    base = [*nmnist.decode(bytes(raw))["t"][:3], last]
    np.testing.assert_array_equal(ev["t"], np.array(base) + np.array([0, 8192, 8192, 16384]))
    tonic_io = pytest.importorskip("tonic.io")
    (tmp_path / "m.bin").write_bytes(bytes(data))
    np.testing.assert_array_equal(tonic_io.read_mnist_file(str(tmp_path / "m.bin"), dtype=nmnist.EVENT_DTYPE)["t"],
                                  ev["t"])


def test_empty_file_is_refused_and_no_events_give_zero_frames(tmp_path):
    (tmp_path / "e.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.bin: the recording is empty \(0 bytes\).*spikeseq data fetch nmnist"):
        nmnist.read_events(tmp_path / "e.bin")
    ev = np.empty(0, dtype=nmnist.EVENT_DTYPE)
    fr = nmnist.to_frames(ev, n_bins=4)
    assert tuple(fr.shape) == (4, 2, 34, 34) and float(fr.sum()) == 0.0


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(nmnist.encode(_events(10)) + b"\x01\x02")
    with pytest.raises(DataError, match=r"t\.bin.*52 bytes is not a multiple of 5"):
        nmnist.read_events(path)
    with pytest.warns(DataRepairWarning, match=r"t\.bin"):
        ev = nmnist.read_events(path, repair=True)
    assert len(ev) == 10


def test_coordinates_outside_sensor_name_file_and_event(tmp_path):
    ev = _events(10)
    ev["x"][6] = 34
    path = tmp_path / "bad.bin"
    path.write_bytes(nmnist.encode(ev))
    with pytest.raises(DataError, match=r"bad\.bin: event 6 \(byte offset 30\) has x=34"):
        nmnist.read_events(path)


# ------------------------------------------------------------------------------------------- binning
def test_frames_by_dt_and_n_bins():
    ev = np.zeros(4, dtype=nmnist.EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = [1, 2, 3, 33], [0, 5, 5, 33], [0, 1, 1, 0], [0, 999, 1000, 2500]
    fr = nmnist.to_frames(ev, dt=1e-3)
    assert tuple(fr.shape) == (3, 2, 34, 34)
    assert fr[0, 0, 0, 1] == 1 and fr[0, 1, 5, 2] == 1 and fr[1, 1, 5, 3] == 1 and fr[2, 0, 33, 33] == 1
    fr = nmnist.to_frames(ev, dt=1e-3, duration=2e-3)  # the event at 2.5 ms falls outside
    assert tuple(fr.shape) == (2, 2, 34, 34) and float(fr.sum()) == 3
    fr = nmnist.to_frames(ev, n_bins=2)  # span 0..2500 inclusive: bins of 1250.5 us
    assert fr[0].sum() == 3 and fr[1].sum() == 1
    fr = nmnist.to_frames(ev, n_bins=1, downsample=2)
    assert tuple(fr.shape) == (1, 2, 17, 17) and fr[0, 1, 2, 1] == 2  # (x 2,3 ; y 5) pooled into (1, 2)


def test_uint8_frames_saturate_and_equal_float_counts():
    ev = np.zeros(300, dtype=nmnist.EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"] = 4, 4, np.arange(300)
    ev["x"][:10] = 5
    f = nmnist.to_frames(ev, n_bins=1)
    u = nmnist.ToFrames(n_bins=1, dtype=torch.uint8)(ev)
    assert u.dtype == torch.uint8 and int(u[0, 0, 4, 4]) == 255 and float(f[0, 0, 4, 4]) == 290
    assert int(u[0, 0, 4, 5]) == 10 == int(f[0, 0, 4, 5])


def test_binary_frames_clip_counts():
    ev = np.zeros(3, dtype=nmnist.EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"] = 4, 4, [0, 10, 20]
    assert nmnist.to_frames(ev, n_bins=1).max() == 3
    assert nmnist.to_frames(ev, n_bins=1, binary=True).max() == 1


def test_dataset_with_transform_and_zip_archive(tmp_path):
    root = tmp_path / "NMNIST"
    with zipfile.ZipFile(root.with_name("train.zip"), "w") as z:
        for label, idx in ((5, 1), (0, 2), (4, 3)):
            z.writestr(f"Train/{label}/{idx:05d}.bin", nmnist.encode(_events(50 + idx, seed=idx)))
    root.mkdir()
    (tmp_path / "train.zip").rename(root / "train.zip")
    ds = nmnist.NMNIST(root, "train", transform=nmnist.ToFrames(n_bins=5))
    assert len(ds) == 3 and ds.labels.tolist() == [5, 0, 4]
    x, y = ds[1]
    assert tuple(x.shape) == (5, 2, 34, 34) and y == 0 and float(x.sum()) == 52


def test_cache_second_pass_hits_and_equals(tmp_path):
    root = tmp_path / "NMNIST"
    for label, idx in ((1, 1), (2, 2), (3, 3), (1, 4)):
        nmnist.write_events(root / "Test" / str(label) / f"{idx:05d}.bin", _events(100, seed=idx))
    a = nmnist.load_frames(root, "test", dt=2e-3)
    b = nmnist.load_frames(root, "test", dt=2e-3)
    assert not a.cache_hit and b.cache_hit
    assert torch.equal(a.x, b.x) and torch.equal(a.lengths, b.lengths) and b.y.tolist() == [1, 2, 3, 1]
    c = nmnist.load_frames(root, "test", dt=4e-3)  # other parameters: a different cache entry
    assert not c.cache_hit and c.x.shape[1] < a.x.shape[1]
    explicit = tmp_path / "mine.h5"
    nmnist.load_frames(root, "test", n_bins=7, cache=explicit)
    with pytest.raises(DataError, match="written by other transform parameters"):
        nmnist.load_frames(root, "test", n_bins=8, cache=explicit)


def test_corrupt_source_is_never_cached(tmp_path, _tmp_cache):
    root = tmp_path / "NMNIST"
    nmnist.write_events(root / "Train" / "1" / "00001.bin", _events(10))
    (root / "Train" / "2").mkdir()
    (root / "Train" / "2" / "00002.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(DataError, match=r"00002\.bin"):
        nmnist.load_frames(root, "train")
    assert list(_tmp_cache.iterdir()) == []


def test_missing_split_names_files_url_and_variable(tmp_path):
    with pytest.raises(DataError) as e:
        nmnist.NMNIST(tmp_path, "test")
    msg = str(e.value)
    assert "Test" in msg and "test.zip" in msg and "SPIKESEQ_DATA" in msg and "data.mendeley.com" in msg


@pytest.mark.parametrize("kw", [
    {"n_bins": 7}, {"dt": 2e-3}, {"dt": 2e-3, "duration": 0.05}, {"n_bins": 5, "binary": True, "downsample": 2},
    {"n_bins": 4, "duration": 0.1}, {"dt": 1.5e-3, "downsample": 3},
])
def test_load_frames_equals_per_sample_frames(tmp_path, kw):
    root = tmp_path / "NMNIST"
    evs = {}
    for label, idx, n in ((1, 1, 300), (2, 2, 10), (3, 3, 700)):
        ev = _events(n, seed=idx, t_max=90_000 + 1000 * idx)
        ev["x"][:5], ev["y"][:5], ev["p"][:5] = 7, 7, 1  # repeated pixel: counts > 1
        evs[idx] = ev
        nmnist.write_events(root / "Train" / str(label) / f"{idx:05d}.bin", ev)
    fs = nmnist.load_frames(root, "train", cache=False, **kw)
    for i, idx in enumerate((1, 2, 3)):
        ref = nmnist.to_frames(evs[idx], **kw)
        x, _ = fs[i]
        assert torch.equal(x, ref), kw
