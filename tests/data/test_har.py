"""HAR: the real HAPT recordings and BasicMotions (facts of ../shared/data/README.md and specs/data-formats.md),
HAPT-format fixtures including broken ones, normalisation and time-first collation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq.data import hapt, har
from spikeseq.data.ucr_ts import read_ts
from spikeseq.errors import DataError, ShapeError
from tests.conftest import require_path

UCI_TRAIN_COUNTS = [1226, 1073, 986, 1286, 1374, 1407]  # specs/data-formats.md §1.4
UCI_TEST_COUNTS = [496, 471, 420, 491, 532, 537]


@pytest.fixture(scope="module")
def hapt_root(data_root):
    return require_path(data_root / "har" / "hapt" / "HAPT Data Set")


@pytest.fixture(scope="module")
def hapt_splits(hapt_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("hapt-cache") / "hapt.h5"
    return har.hapt_windows(hapt_root, "train", cache=cache), har.hapt_windows(hapt_root, "test", cache=cache)


def test_hapt_raw_facts(hapt_root):
    lab = hapt.read_labels(hapt_root / "RawData" / "labels.txt")
    assert lab.shape == (1214, 5)
    sessions = sorted({(int(e), int(u)) for e, u in lab[:, :2]})
    assert len(sessions) == 61 and len({u for _, u in sessions}) == 30
    rows = [(hapt_root / "RawData" / f"acc_exp{e:02d}_user{u:02d}.txt").read_bytes().count(b"\n") for e, u in sessions]
    assert sum(rows) == 1_122_772 and (min(rows), max(rows)) == (9898, 32089)


def test_hapt_windows_counts_split_and_units(hapt_splits, hapt_root):
    train, test = hapt_splits
    lab = hapt.read_labels(hapt_root / "RawData" / "labels.txt")
    seg = lab[lab[:, 2] <= 6]
    n = seg[:, 4] - seg[:, 3] + 1
    expected = int(np.where(n >= 128, (n - 128) // 64 + 1, 0).sum())  # windows per segment, counted independently
    assert len(train) + len(test) == expected == 10411
    assert tuple(train.x.shape[1:]) == (128, 6) and train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert set(test.subject.tolist()) == {2, 4, 9, 10, 12, 13, 18, 20, 24}
    assert set(train.subject.tolist()) == set(range(1, 31)) - {2, 4, 9, 10, 12, 13, 18, 20, 24}
    assert train.classes == har.ACTIVITIES and int(train.y.min()) == 0 and int(train.y.max()) == 5
    for got, ref in ((train.class_counts(), UCI_TRAIN_COUNTS), (test.class_counts(), UCI_TEST_COUNTS)):
        # rebuilt from HAPT's own (v2.1) segment labels, not UCI HAR's: each class within 5 % of UCI's count
        for g, r in zip(got, ref):
            assert abs(g - r) / r < 0.05
    gravity = train.x[..., :3].norm(dim=-1).mean()  # acc in g: the norm averages about 1
    assert 0.95 < float(gravity) < 1.08
    assert float(train.x[..., 3:].abs().mean()) < 1.0  # gyro in rad/s


def test_hapt_window_content_is_the_raw_rows(hapt_splits, hapt_root):
    train, _ = hapt_splits
    i = 123
    exp, start, user = int(train.meta["experiment"][i]), int(train.meta["start"][i]), int(train.subject[i])
    sig = hapt.read_session(hapt_root / "RawData", exp, user)
    torch.testing.assert_close(train.x[i], torch.from_numpy(sig[start: start + 128]), rtol=0, atol=0)


def test_basicmotions_real(data_root):
    require_path(data_root / "har" / "basicmotions" / "BasicMotions_TRAIN.ts")
    tr = har.basicmotions(data_root / "har" / "basicmotions", "train")
    te = har.basicmotions(data_root, "test")
    assert tuple(tr.x.shape) == (40, 100, 6) and tuple(te.x.shape) == (40, 100, 6)
    assert tr.classes == ["Standing", "Running", "Walking", "Badminton"]
    assert tr.class_counts() == [10, 10, 10, 10] and te.class_counts() == [10, 10, 10, 10]
    assert tr.x[0, :3, 0].tolist() == pytest.approx([0.079106, 0.079106, -0.903497], abs=1e-6)


# ------------------------------------------------------------------------------------------- fixtures
def _write_hapt(root, n_rows=400, labels="1 1 5 1 300\n1 1 7 301 340\n1 1 1 341 400\n", acc_rows=None):
    raw = root / "RawData"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    acc = rng.normal(size=(acc_rows or n_rows, 3))
    gyr = rng.normal(size=(n_rows, 3))
    np.savetxt(raw / "acc_exp01_user01.txt", acc)
    np.savetxt(raw / "gyro_exp01_user01.txt", gyr)
    (raw / "labels.txt").write_text(labels)
    return acc, gyr


def test_hapt_fixture_windows(tmp_path):
    acc, gyr = _write_hapt(tmp_path / "HAPT Data Set")
    w = har.hapt_windows(tmp_path, "train", cache=False)  # user 1 is a training subject
    # segment 1..300 (STANDING): starts 0, 64, 128 (3 windows); 341..400 is too short; activity 7 skipped
    assert len(w) == 3 and w.y.tolist() == [4, 4, 4] and w.meta["start"].tolist() == [0, 64, 128]
    np.testing.assert_allclose(w.x[2].numpy(), np.concatenate([acc, gyr], 1)[128:256], rtol=1e-6)
    assert len(har.hapt_windows(tmp_path, "train", window=50, stride=50, cache=False)) == 6 + 1


def test_hapt_broken_files(tmp_path):
    _write_hapt(tmp_path / "a", acc_rows=399)
    with pytest.raises(DataError, match=r"acc_exp01_user01\.txt has 399 rows but .*gyro_exp01_user01\.txt has 400"):
        har.hapt_windows(tmp_path / "a", cache=False)
    _write_hapt(tmp_path / "b", labels="1 1 5 1 300\n1 1 1 341 500\n")
    with pytest.raises(DataError, match="ends at sample 500 but the session has 400 rows"):
        har.hapt_windows(tmp_path / "b", cache=False)
    _write_hapt(tmp_path / "c")
    p = tmp_path / "c" / "RawData" / "gyro_exp01_user01.txt"
    lines = p.read_text().splitlines()
    lines[9] = " ".join(lines[9].split()[:2])
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"gyro_exp01_user01\.txt: line 10 has 2 values, expected 3"):
        har.hapt_windows(tmp_path / "c", cache=False)


def test_missing_hapt_names_path_url_and_variable(tmp_path):
    with pytest.raises(DataError) as e:
        har.hapt_windows(tmp_path / "nowhere")
    assert "labels.txt" in str(e.value) and "SPIKESEQ_DATA" in str(e.value) and "archive.ics.uci.edu" in str(e.value)


def test_ts_reader_fixture_and_errors(tmp_path):
    p = tmp_path / "X_TRAIN.ts"
    p.write_text("# comment\n@problemName X\n@dimensions 2\n@seriesLength 3\n@classLabel true b a\n@data\n"
                 "1,2,3:4,5,6:a\n7,?,9:1,1,1:b\n")
    ts = read_ts(p)
    assert ts.x.shape == (2, 2, 3) and ts.classes == ["b", "a"] and ts.y.tolist() == [1, 0]
    assert np.isnan(ts.x[1, 0, 1]) and ts.x[0, 1].tolist() == [4, 5, 6]
    p.write_text("@dimensions 2\n@classLabel true a\n@data\n1,2:3:a\n")
    with pytest.raises(DataError, match="case 0 has 2 dimensions of lengths"):
        read_ts(p)


# ------------------------------------------------------------------------------------------- utilities
def test_normalizer_uses_training_statistics_only():
    train = torch.tensor([[[1.0, 10.0], [3.0, 10.0]]])  # [N=1, T=2, C=2]; channel 1 constant
    norm = har.Normalizer.fit(train)
    assert norm.mean.tolist() == [2.0, 10.0] and norm.std.tolist() == [1.0, 1.0]
    test = torch.tensor([[[5.0, 12.0]]])
    assert norm.apply(test).tolist() == [[[3.0, 2.0]]]
    tb = torch.zeros(7, 4, 2)  # time-first batches normalise the same way (channels last)
    assert norm(tb)[0, 0].tolist() == [-2.0, -10.0]
    with pytest.raises(ShapeError):
        norm.apply(torch.zeros(3, 5))


def test_collate_time_first_and_padded():
    batch = [(torch.full((4, 3), float(i)), i) for i in range(5)]
    x, y = har.collate_time_first(batch)
    assert tuple(x.shape) == (4, 5, 3) and y.tolist() == [0, 1, 2, 3, 4] and x[2, 3, 0] == 3
    batch = [(torch.ones(2, 3), 1), (torch.ones(5, 3), 0)]
    x, y, lengths = har.collate_padded(batch)
    assert tuple(x.shape) == (5, 2, 3) and lengths.tolist() == [2, 5] and float(x[2:, 0].sum()) == 0
    with pytest.raises(ShapeError):
        har.collate_time_first(batch)
    loader = torch.utils.data.DataLoader(
        har.HARWindows(torch.randn(10, 8, 6), torch.arange(10) % 3, torch.zeros(10, dtype=torch.int64),
                       ["a", "b", "c"], [f"c{i}" for i in range(6)]),
        batch_size=4, collate_fn=har.collate_time_first)
    xb, yb = next(iter(loader))
    assert tuple(xb.shape) == (8, 4, 6) and yb.tolist() == [0, 1, 2, 0]


def test_banglejs_real(data_root):
    root = require_path(data_root / "har" / "banglejs_watch" / "Custom Dataset")
    tr, te = har.banglejs(root, "train"), har.banglejs(data_root, "test")
    assert tr.classes == ["running", "walking", "sitting", "lying"] and tr.x.shape[1:] == torch.Size([128, 3])
    lab = np.loadtxt(root / "labels.csv", dtype=np.int64)
    n = lab[:, 4] - lab[:, 3] + 1
    per_seg = (n - 128) // 64 + 1  # every segment is long enough
    assert len(tr) == per_seg[lab[:, 1] == 1].sum() and len(te) == per_seg[lab[:, 1] == 2].sum()
    assert set(tr.subject.tolist()) == {1} and set(te.subject.tolist()) == {2}
    lying = tr.x[tr.y == 3].norm(dim=-1).mean()
    assert 0.9 < float(lying) < 1.1  # at rest the acceleration norm is 1 g
