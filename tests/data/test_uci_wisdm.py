"""UCI HAR and WISDM (v1.1, 2019 watch) readers on fixture files written in the exact text formats, including the
known malformed rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq.data import har, uci_har, wisdm
from spikeseq.data.repair import DataRepairWarning
from spikeseq.errors import DataError
from tests.conftest import require_path


# ------------------------------------------------------------------------------------------- UCI HAR
def _uci_fixture(tmp_path, n=5, seed=0):
    rng = np.random.default_rng(seed)
    signals = {f"{s}_{a}": rng.normal(size=(n, 128)) * 0.5 for s in uci_har.SIGNALS for a in "xyz"}
    y = (np.arange(n) % 6) + 1
    subj = np.full(n, 7)
    feats = rng.uniform(-1, 1, size=(n, 561))
    uci_har.write_split(tmp_path, "train", signals=signals, y=y, subject=subj, features=feats)
    return signals, y, subj, feats


def test_uci_number_format_is_the_original():
    assert uci_har.format_uci(np.array([[0.28858451, -0.020294171]])) == "  2.8858451e-001 -2.0294171e-002\n"


def test_uci_har_round_trip(tmp_path):
    signals, y, subj, feats = _uci_fixture(tmp_path)
    w = har.uci_har(tmp_path, "train")
    assert tuple(w.x.shape) == (5, 128, 9) and w.y.tolist() == (y - 1).tolist() and w.subject.tolist() == [7] * 5
    assert w.channels[0] == "body_acc_x (g)" and w.channels[3] == "body_gyro_x (rad/s)" and w.classes == har.ACTIVITIES
    np.testing.assert_allclose(w.x[:, :, 4].numpy(), signals["body_gyro_y"], rtol=1e-6, atol=1e-7)
    f = uci_har.load_features(tmp_path, "train")
    assert tuple(f.x.shape) == (5, 561) and len(f.names) == 561
    np.testing.assert_allclose(f.x.numpy(), feats, rtol=1e-6, atol=1e-7)


def test_uci_har_real_label_files_when_present(data_root):
    # no real UCI HAR files are available offline; the HAPT copy carries the same features.txt (561 names)
    feat = require_path(data_root / "har" / "hapt" / "HAPT Data Set" / "features.txt")
    names = [uci_har._feature_name(ln) for ln in feat.read_text().splitlines() if ln.strip()]
    assert names[0] == "tBodyAcc-Mean-1" and len(names) == 561
    assert uci_har._feature_name("1 tBodyAcc-mean()-X") == "tBodyAcc-mean()-X"


def test_uci_har_broken_rows(tmp_path):
    _uci_fixture(tmp_path)
    p = tmp_path / "UCI HAR Dataset" / "train" / "Inertial Signals" / "total_acc_z_train.txt"
    lines = p.read_text().splitlines()
    lines[3] = lines[3][:-16]  # one value short
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"total_acc_z_train\.txt: line 4 has 127 values, expected 128"):
        har.uci_har(tmp_path, "train")
    (tmp_path / "UCI HAR Dataset" / "train" / "y_train.txt").write_text("1\n2\n9\n1\n1\n")
    with pytest.raises(DataError, match=r"y_train\.txt: line 3 has label 9"):
        uci_har.load_features(tmp_path, "train")


# ------------------------------------------------------------------------------------------- WISDM v1.1
def _v11_rows(user, act, n, t0=1_000_000_000, seed=0):
    rng = np.random.default_rng(seed)
    return [(user, act, t0 + i * 50_000_000, *map(float, rng.normal(size=3))) for i in range(n)]


def test_wisdm_v11_round_trip_and_windows(tmp_path):
    rows = _v11_rows(1, "Walking", 250) + _v11_rows(1, "Sitting", 100, seed=1) + _v11_rows(33, "Jogging", 200, seed=2)
    wisdm.write_v11(tmp_path / "WISDM_ar_v1.1_raw.txt", rows)
    rec = wisdm.parse_records(tmp_path / "WISDM_ar_v1.1_raw.txt")
    assert rec.xyz.shape == (550, 3) and rec.xyz[0].tolist() == list(rows[0][3:])
    tr = har.wisdm(tmp_path, "train")  # user 1: 250 Walking -> one 200-sample window (stride 100); Sitting too short
    assert tr.y.tolist() == [0] and tr.subject.tolist() == [1]
    np.testing.assert_allclose(tr.x[0].numpy(), np.array([r[3:] for r in rows[:200]]), rtol=1e-6)
    te = har.wisdm(tmp_path, "test", window=50, stride=50)
    assert te.y.tolist() == [1] * 4 and te.subject.tolist() == [33] * 4
    assert len(har.wisdm(tmp_path, "train", window=50, stride=25)) == 9 + 3
    again = har.wisdm(tmp_path, "test", window=50, stride=50, cache=False)  # the cached windows equal a fresh parse
    assert torch.equal(again.x, te.x) and torch.equal(again.y, te.y)


def test_wisdm_v11_known_quirks_repaired_with_warning(tmp_path):
    p = tmp_path / "WISDM_ar_v1.1_raw.txt"
    good = [f"5,Walking,{1000000 + i * 50000000},1.0,2.0,{i}.5;" for i in range(6)]
    lines = [good[0], good[1] + good[2], "5,Walking,1200000000,1.0,2.0,;", good[3],
             "5,Walking,0,1.0,2.0,3.0;", good[4], "5,Walking,1300000000,1.0,2.0", good[5]]
    p.write_text("\n".join(lines) + "\n")
    with pytest.warns(DataRepairWarning, match=r"1 lines with several records split, 2 records with a missing field "
                                               r"dropped, 1 records with a zero timestamp dropped"):
        rec = wisdm.parse_records(p)
    assert rec.xyz[:, 2].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    with pytest.raises(DataError, match=r"line 2 holds 2 records"):
        wisdm.parse_records(p, strict=True)
    p.write_text(good[0] + "\n" + "5,Walking,1,1.0,2.0,3.0;\n5,Walking,0,1.0,2.0,3.0;\n")
    with pytest.raises(DataError, match=r"line 3 has a zero timestamp"):
        wisdm.parse_records(p, strict=True)
    p.write_text(good[0] + "\n5,Walking,7,1.0,abc,3.0;\n")
    with pytest.raises(DataError, match=r"WISDM_ar_v1\.1_raw\.txt: line 2 is not numeric"):
        wisdm.parse_records(p)
    p.write_text("5,Flying,7,1.0,2.0,3.0;\n")
    with pytest.raises(DataError, match="line 1 has unknown activity 'Flying'"):
        har.wisdm(tmp_path)


def test_wisdm_runs_split_at_gaps():
    s = np.array([1, 1, 1, 1, 2])
    a = np.array(["A", "A", "A", "B", "B"])
    t = np.array([0, 50, 5_000_000_000, 5_000_000_050, 5_000_000_100])
    assert wisdm.runs(s, a, t, 1e9) == [(0, 2), (2, 3), (3, 4), (4, 5)]


# ------------------------------------------------------------------------------------------- WISDM 2019
def test_wisdm2019_watch_hand_oriented(tmp_path):
    folder = tmp_path / "wisdm-dataset"
    rng = np.random.default_rng(0)
    for subj in (1600, 1645):
        for sensor, n_extra in (("accel", 0), ("gyro", 3)):
            rows = []
            t = 10**12
            for code in ("A", "F", "S"):  # A (walking) is not hand-oriented and must be left out
                for _ in range(100 + n_extra):
                    rows.append((code, t, *map(float, rng.normal(size=3))))
                    t += 50_000_000
            wisdm.write_2019_raw(folder, subj, sensor, rows)
    tr = har.wisdm2019(tmp_path, "train")
    te = har.wisdm2019(tmp_path, "test")
    # F and S: 100 paired samples each -> windows of 40 with stride 20: starts 0, 20, 40, 60 -> 4 each
    assert len(tr) == 8 and len(te) == 8 and tr.x.shape[1:] == torch.Size([40, 6])
    assert tr.classes[0] == "typing" and tr.classes[11] == "folding" and len(tr.classes) == 12
    assert tr.y.tolist() == [0] * 4 + [11] * 4 and set(te.subject.tolist()) == {1645}
    acc = wisdm.parse_records(wisdm.raw_2019_path(folder, 1600, "accel"))
    gyr = wisdm.parse_records(wisdm.raw_2019_path(folder, 1600, "gyro"))
    np.testing.assert_allclose(tr.x[0, :, :3].numpy(), acc.xyz[acc.activity == "F"][:40], rtol=1e-6)
    np.testing.assert_allclose(tr.x[0, :, 3:].numpy(), gyr.xyz[gyr.activity == "F"][:40], rtol=1e-6)
    assert len(har.wisdm2019(tmp_path, "train", sensors=("accel",), activities=("A",))) == 4
