"""The SHD-format timing-only task: metadata, determinism, equal spike counts per channel in every class, and
spikes placed at the class latencies."""

from __future__ import annotations

import numpy as np
import pytest

from spikeseq.data import shd, temporal_task
from spikeseq.errors import ParameterError


def test_metadata_and_determinism(tmp_path):
    a = temporal_task.generate(tmp_path / "a.h5", n_samples=40, n_classes=4, n_channels=12, seed=7, jitter=1e-3)
    b = temporal_task.generate(tmp_path / "b.h5", n_samples=40, n_classes=4, n_channels=12, seed=7, jitter=1e-3)
    da, db = shd.read_shd(a), shd.read_shd(b)
    assert da.meta["seed"] == 7 and da.meta["n_channels"] == 12 and da.meta["jitter"] == 1e-3
    assert da.meta["generator"] == "spikeseq.data.temporal_task" and da.meta["noise_spikes"] == 1
    assert np.bincount(da.labels).tolist() == [10, 10, 10, 10]
    for i in range(40):
        np.testing.assert_array_equal(da.times[i], db.times[i])
        np.testing.assert_array_equal(da.units[i], db.units[i])
        assert np.all(np.diff(da.times[i]) >= 0)
    c = shd.read_shd(temporal_task.generate(tmp_path / "c.h5", n_samples=40, n_channels=12, seed=8))
    assert not np.array_equal(c.extra["latencies"], da.extra["latencies"])


def test_only_timing_differs_between_classes(tmp_path):
    path = temporal_task.generate(tmp_path / "t.h5", n_samples=60, n_classes=3, n_channels=16, seed=1,
                                  spikes_per_channel=2, burst_interval=0.01, noise_spikes=2)
    d = shd.read_shd(path)
    for i in range(60):  # every channel fires exactly 2 + 2 times in every sample of every class
        assert np.bincount(d.units[i], minlength=16).tolist() == [4] * 16
    table = d.extra["latencies"]
    assert table.shape == (3, 16)
    for c in range(3):  # every class uses the same set of latencies (same population rate over time)
        np.testing.assert_allclose(np.sort(table[c]), np.sort(table[0]))
    # within a group (channels ch % 4) the relative timing is the same in every class: only the group order differs
    for g in range(4):
        rel = table[:, g::4] - table[:, g::4].min(1, keepdims=True)
        np.testing.assert_allclose(rel, np.broadcast_to(rel[0], rel.shape), atol=1e-12)
        assert rel.max() <= 0.01 + 1e-12
    onsets = table[:, ::4].min(1)  # group 0's onset per class is a multiple of group_gap
    np.testing.assert_allclose(onsets / 0.05, np.round(onsets / 0.05), atol=1e-9)
    assert len({tuple(np.argsort(table[c, :4])) for c in range(3)}) == 3  # distinct group orders


def test_pattern_spikes_sit_at_the_class_latencies(tmp_path):
    path = temporal_task.generate(tmp_path / "p.h5", n_samples=8, n_classes=2, n_channels=10, seed=4, jitter=0.0,
                                  noise_spikes=0, duration=0.3, n_groups=5, group_gap=0.04)
    d = shd.read_shd(path)
    for i in range(8):
        rel = np.empty(10)
        rel[d.units[i]] = d.times[i]
        rel -= rel.min()
        expected = d.extra["latencies"][d.labels[i]]
        np.testing.assert_allclose(rel, expected - expected.min(), atol=3e-4)  # float16 steps at 0.3 s: 2.4e-4


def test_split_shares_classes_not_samples(tmp_path):
    paths = temporal_task.generate_split(tmp_path, n_train=20, n_test=8, seed=2, n_channels=8)
    tr, te = shd.read_shd(paths["train"]), shd.read_shd(paths["test"])
    assert paths["train"].name == "temporal_train.h5" and (len(tr), len(te)) == (20, 8)
    np.testing.assert_array_equal(tr.extra["latencies"], te.extra["latencies"])
    assert not np.array_equal(tr.times[0], te.times[0])
    ds = shd.SHDDataset(paths["test"], dt=1e-3)
    x, _ = ds[0]
    assert x.shape[1] == 8 and float(x.sum()) == 16  # n_channels from the file's metadata


def test_bad_parameters():
    with pytest.raises(ParameterError, match="duration"):
        temporal_task.generate("/nonexistent/x.h5", duration=0.1, group_gap=0.05)
    with pytest.raises(ParameterError, match="multiple of n_groups"):
        temporal_task.generate("/nonexistent/x.h5", n_channels=10, n_groups=4)
    with pytest.raises(ParameterError, match="only 2 distinct classes"):
        temporal_task.generate("/nonexistent/x.h5", n_channels=10, n_groups=2, n_classes=3)
