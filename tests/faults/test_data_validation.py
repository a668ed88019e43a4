"""Class 2: non-finite and out-of-order data is refused where it is read, with a DataError naming the file, the
line or sample and what to do; nothing is cached for data that failed validation."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from spikeseq.data import hapt, nmnist, shd, uci_har, wisdm
from spikeseq.data.har import banglejs, basicmotions
from spikeseq.errors import DataError
from tests.faults import _real


def _replace_line(path, line_no: int, new: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line_no - 1] = new + "\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity"])
def test_hapt_nan_or_inf_is_refused_and_not_cached(data_root, tmp_path, _tmp_cache, value):
    root = _real.mini_hapt(data_root, tmp_path)
    acc = root / "RawData" / "acc_exp01_user01.txt"
    _replace_line(acc, 300, f"1.0 {value} 0.5")
    with pytest.raises(DataError, match=r"acc_exp01_user01\.txt: line 300, value 2 is .*finite number.*restore"):
        hapt.load_windows(root, "all")
    assert list(_tmp_cache.iterdir()) == []  # no cache for data that failed validation


def test_uci_har_nan_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    sig = {f"{s}_{a}": rng.normal(size=(4, 128)) for s in uci_har.SIGNALS for a in "xyz"}
    bad = sig["body_gyro_y"].copy()
    bad[2, 17] = np.nan
    with pytest.raises(DataError, match="NaN or Inf"):  # the fixture writer refuses it too
        uci_har.format_uci(bad)
    uci_har.write_split(tmp_path, "train", signals=sig, y=np.array([1, 2, 3, 4]), subject=np.array([1, 1, 3, 3]))
    path = tmp_path / "UCI HAR Dataset" / "train" / "Inertial Signals" / "body_gyro_y_train.txt"
    rows = path.read_text().splitlines()
    tokens = rows[2].split()
    tokens[17] = "nan"
    rows[2] = "  " + "  ".join(tokens)
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"body_gyro_y_train\.txt: line 3, value 18 is nan"):
        uci_har.load_windows(tmp_path, "train")


def test_wisdm_nan_is_refused_naming_the_line(tmp_path, _tmp_cache):
    rows = [(1, "Walking", 10_000 + 50_000_000 * i, 0.5, 9.8, float("nan") if i == 7 else 0.1) for i in range(40)]
    path = wisdm.write_v11(tmp_path / "WISDM_ar_v1.1_raw.txt", rows)
    with pytest.raises(DataError, match=r"WISDM_ar_v1\.1_raw\.txt: line 8 holds NaN or Inf"):
        wisdm.load_v11(tmp_path, window=10, stride=5)
    assert path.is_file() and list(_tmp_cache.iterdir()) == []


@pytest.mark.parametrize(("value", "pattern"), [("nan", r"value 3 is 'nan': values must be finite"),
                                                ("?", r"value 3 is '\?': values must be finite")])
def test_ts_nan_and_missing_values_are_refused_for_basicmotions(data_root, tmp_path, value, pattern):
    root = _real.basicmotions_copy(data_root, tmp_path / "bm")
    path = root / "BasicMotions_TRAIN.ts"
    lines = path.read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "@data") + 1
    vals = lines[first].split(",")
    vals[2] = value
    lines[first] = ",".join(vals)
    path.write_text("\n".join(lines) + "\n")
    msg = rf"BasicMotions_TRAIN\.ts: line {first + 1} \(case 0\), dimension 0, {pattern}"
    with pytest.raises(DataError, match=msg):
        basicmotions(root, "train")


def test_bangle_nan_is_refused(data_root, tmp_path):
    root = _real.bangle_copy(data_root, tmp_path)
    _replace_line(root / "Raw Data" / "acc_exp01_user01.txt", 5, "01:42:00.078,nan,0.1,0.2;")
    with pytest.raises(DataError, match=r"acc_exp01_user01\.txt: line 5 holds NaN or Inf"):
        banglejs(root, "all")


def _set_sample(path, i, times=None, units=None):
    with h5py.File(path, "r+") as f:
        if times is not None:
            f["spikes/times"][i] = np.asarray(times, np.float16)
        if units is not None:
            f["spikes/units"][i] = np.asarray(units, np.uint16)


@pytest.mark.parametrize(("times", "pattern"), [
    ([0.1, np.nan, 0.3], r"sample 2, spike 1 has time nan .*finite and >= 0"),
    ([-0.5, 0.1, 0.3], r"sample 2, spike 0 has time -0.5 .*finite and >= 0"),
    ([0.1, 0.3, 0.2], r"sample 2, spike 2 at 0\.1999.* comes after a spike at 0\.3000.* must be sorted"),
])
def test_shd_bad_spike_times_are_refused_and_not_cached(tmp_path, _tmp_cache, times, pattern):
    path = _real.shd_fixture(tmp_path / "shd_train.h5")
    _set_sample(path, 2, times, [1, 2, 3])
    with pytest.raises(DataError, match=r"shd_train\.h5: " + pattern):
        shd.read_shd(path)
    with pytest.raises(DataError, match=pattern):
        shd.load_frames(path, dt=0.01)
    assert list(_tmp_cache.iterdir()) == []


def test_unsorted_shd_is_not_binned_silently(tmp_path):
    path = _real.shd_fixture(tmp_path / "ssc_valid.h5")
    t, u = shd.read_shd(path).sample(1)
    _set_sample(path, 1, t[::-1].copy(), u[::-1].copy())  # same spikes, reversed order
    with pytest.raises(DataError, match=r"sample 1, spike 1 .* must be sorted within a sample"):
        shd.SHDDataset(path)


def test_empty_nmnist_recording_is_reported(data_root, tmp_path):
    src = _real.nmnist_file(data_root)
    root = tmp_path / "NMNIST" / "Train"
    for d in "01":
        (root / d).mkdir(parents=True)
    (root / "0" / "00002.bin").write_bytes(src.read_bytes())
    (root / "1" / "00003.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"00003\.bin: the recording is empty \(0 bytes\).*spikeseq data fetch nmnist"):
        nmnist.load_frames(tmp_path / "NMNIST", "train", n_bins=5, cache=False)


def test_nmnist_timestamps_going_backwards_are_refused(data_root, tmp_path):
    raw = bytearray(_real.nmnist_file(data_root).read_bytes())
    raw[5 * 100: 5 * 101], raw[5 * 2000: 5 * 2001] = raw[5 * 2000: 5 * 2001], raw[5 * 100: 5 * 101]  # swap 2 events
    path = tmp_path / "swapped.bin"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"swapped\.bin: event 101 \(byte offset 505\) has timestamp .* earlier"):
        nmnist.read_events(path)


def test_tensor_file_with_nan_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import torch

    from spikeseq.cli import main
    from tests.faults.conftest import write_tiny_config

    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    cfg = write_tiny_config(tmp_path)
    blob = torch.load(tmp_path / "d.pt")
    blob["train"]["x"][7, 2, 1] = float("nan")
    torch.save(blob, tmp_path / "d.pt")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    assert "train: sample 7 holds NaN or Inf" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
