"""tonic interop: our structured arrays go through tonic transforms, tonic datasets through TonicFrames, and
tonic's NMNIST reads the same recordings as ours."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

from spikeseq.data import nmnist
from spikeseq.data.tonic_interop import NMNIST_DTYPE, TonicFrames, structured
from tests.conftest import require_path

tonic = pytest.importorskip("tonic")


def _fixture(root):
    rng = np.random.default_rng(0)
    for label, idx in ((3, 1), (8, 2)):
        ev = np.empty(200, dtype=nmnist.EVENT_DTYPE)
        ev["x"], ev["y"] = rng.integers(0, 34, 200), rng.integers(0, 34, 200)
        ev["t"], ev["p"] = np.sort(rng.integers(0, 100_000, 200)), rng.integers(0, 2, 200)
        nmnist.write_events(root / "Train" / str(label) / f"{idx:05d}.bin", ev)


def test_tonic_transform_on_our_events(tmp_path):
    _fixture(tmp_path / "NMNIST")
    ds = nmnist.NMNIST(tmp_path / "NMNIST", "train")
    ev, _ = ds[0]
    assert ev.dtype == NMNIST_DTYPE and ev.dtype.names == tuple(nmnist.NMNIST.ordering)
    frames = tonic.transforms.ToFrame(sensor_size=nmnist.SENSOR_SIZE, n_time_bins=5)(ev)
    # tonic slices n_time_bins windows of (t_last - t_first) // n us from t_first: later events are left out,
    # whereas spikeseq bins every event (documented in spikeseq.data.events)
    kept = ev[ev["t"] < ev["t"][0] + 5 * ((ev["t"][-1] - ev["t"][0]) // 5)]
    assert frames.shape == (5, 2, 34, 34) and frames.sum() == len(kept) < len(ev)
    ours = nmnist.to_frames(kept, n_bins=1)[0]
    np.testing.assert_array_equal(frames.sum(0), ours.numpy())  # same [p, y, x] layout
    assert float(nmnist.to_frames(ev, n_bins=5).sum()) == len(ev)


def test_tonic_dataset_through_tonicframes(tmp_path):
    _fixture(tmp_path / "NMNIST")
    with mock.patch.object(tonic.datasets.NMNIST, "_check_exists", lambda self: True):
        tds = tonic.datasets.NMNIST(str(tmp_path), train=True)
    wrapped = TonicFrames(tds, nmnist.ToFrames(n_bins=4))
    ours = nmnist.NMNIST(tmp_path / "NMNIST", "train", transform=nmnist.ToFrames(n_bins=4))
    got = {int(y): x for x, y in (wrapped[i] for i in range(len(wrapped)))}
    want = {int(y): x for x, y in (ours[i] for i in range(len(ours)))}
    assert sorted(got) == [3, 8]
    for k in got:
        assert got[k].dtype == torch.float32 and torch.equal(got[k], want[k])


def test_real_subset_through_tonic(data_root):
    root = require_path(data_root / "nmnist" / "NMNIST")
    with mock.patch.object(tonic.datasets.NMNIST, "_check_exists", lambda self: True):
        tds = tonic.datasets.NMNIST(str(root.parent), train=False)
    assert len(tds) == 100
    x, y = TonicFrames(tds, tonic.transforms.ToFrame(sensor_size=nmnist.SENSOR_SIZE, n_time_bins=10))[0]
    assert tuple(x.shape) == (10, 2, 34, 34) and 0 <= y <= 9


def test_structured_helper():
    a = structured(t=np.array([5, 6]), x=np.array([1, 2]), p=np.array([1, 1]))
    assert a.dtype.names == ("t", "x", "p") and a["x"].tolist() == [1, 2]
