"""Leftovers of review session 13 in the data loaders: the missing-file message with an explicit root, incomplete
N-MNIST copies counted by ``spikeseq data check``, and ``.ts`` files with time stamps refused."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from spikeseq.cli import main
from spikeseq.data import har, images, nmnist, registry, shd, ucr_ts
from spikeseq.data.repair import DataIncompleteWarning, DataRepairWarning
from spikeseq.errors import DataError
from tests.conftest import require_path


# ----------------------------------------------------------------------- 1. missing files under an explicit root
@pytest.mark.parametrize("load", [
    lambda r: nmnist.list_recordings(r, "train"),
    lambda r: har.basicmotions(r, "train"),
    lambda r: images.load_mnist(r, "train"),
    lambda r: registry.load("shd", "train", root=r),
], ids=["nmnist", "basicmotions", "mnist", "shd"])
@pytest.mark.parametrize("env", [None, "set"])
def test_missing_files_under_an_explicit_root_name_that_root(tmp_path, monkeypatch, load, env):
    if env is None:
        monkeypatch.delenv("SPIKESEQ_DATA", raising=False)
    else:
        monkeypatch.setenv("SPIKESEQ_DATA", str(tmp_path / "the-data-root"))
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as e:
        load(root)
    msg = str(e.value)
    assert f"Searched the root passed explicitly, root={str(root)!r}" in msg
    assert "was not used" in msg and f"put the dataset's files in {root}" in msg
    assert "--root DIR" in msg and "or pass no root to read <data root>/" in msg
    assert "The data root is" not in msg  # was "The data root is SPIKESEQ_DATA=None (unset, so .../datasets)"


def test_a_file_path_outside_the_data_root_is_said_to_be_explicit(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKESEQ_DATA", str(tmp_path / "the-data-root"))
    with pytest.raises(DataError, match=r"shd: missing .*shd_train\.h5\. The data root is SPIKESEQ_DATA='.*the-data-"
                                        r"root', but that path is outside it: it came from a root or file path passed "
                                        r"explicitly, and only that was searched"):
        shd.read_shd(tmp_path / "elsewhere" / "shd_train.h5")


def test_missing_files_under_the_data_root_keep_the_data_root_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKESEQ_DATA", str(tmp_path))
    with pytest.raises(DataError, match=rf"shd: missing .*shd_train\.h5\. The data root is SPIKESEQ_DATA="
                                        rf"'{tmp_path}'; put the dataset in <data root>/shd, or run `spikeseq data "
                                        r"fetch shd`"):
        registry.load("shd", "train")


# ----------------------------------------------------------------- 2. `data check` counts an incomplete N-MNIST
def _nmnist_copy(data_root: Path, dst: Path, digits) -> Path:
    """``dst/nmnist/NMNIST/{Train,Test}/<digit>/`` with the first real recording of each of ``digits``."""
    base = dst / "nmnist" / "NMNIST"
    for split in ("Train", "Test"):
        for d in digits:
            src = require_path(data_root / "nmnist" / "NMNIST" / split / str(d))
            (base / split / str(d)).mkdir(parents=True)
            f = sorted(src.iterdir())[0]
            shutil.copy(f, base / split / str(d) / f.name)
    return base


def test_data_check_counts_missing_nmnist_digits(data_root, tmp_path, capsys):
    _nmnist_copy(data_root, tmp_path, [d for d in range(10) if d != 3])  # 5 and 7 hold the manifest's [[check]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRepairWarning)  # counting must not depend on the display filters
        rc = main(["data", "check", "nmnist", "--root", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1  # was 0 with "check: all good": the warning went to stderr only
    assert "LOAD     train: 9 samples, per class [1, 1, 1, 0, 1, 1, 1, 1, 1, 1]" in out and "MISSING" not in out
    assert out.count("WARNING  ") == 2
    assert "WARNING  train: N-MNIST train under " in out and "has no recording of digit(s) [3]" in out
    assert "WARNING  test: N-MNIST test under " in out and "check: 2 problem(s)" in out


def test_summary_lists_incomplete_warnings_and_passes_other_warnings_on(data_root, tmp_path):
    _nmnist_copy(data_root, tmp_path, range(9))
    s = registry.summary("nmnist", tmp_path / "nmnist" / "NMNIST")
    assert s["train"]["n"] == 9 and len(s["train"]["warnings"]) == 1 and len(s["test"]["warnings"]) == 1
    assert "has no recording of digit(s) [9]" in s["train"]["warnings"][0]
    # a complete copy: no "warnings" key; a plain DataRepairWarning (a stray file skipped) still reaches the caller
    _nmnist_copy(data_root, tmp_path / "full", range(10))
    full = tmp_path / "full" / "nmnist" / "NMNIST"
    (full / "Train" / "3" / "notes.bin").write_bytes(b"")
    with pytest.warns(DataRepairWarning, match=r"notes\.bin: skipped") as rec:
        s = registry.summary("nmnist", full)
    assert not any(issubclass(w.category, DataIncompleteWarning) for w in rec)
    assert s["train"] == {"n": 10, "per_class": [1] * 10}


def test_the_missing_digits_warning_is_still_a_data_repair_warning(data_root, tmp_path):
    base = _nmnist_copy(data_root, tmp_path, range(8))
    with pytest.warns(DataIncompleteWarning, match=r"no recording of digit\(s\) \[8, 9\]") as rec:
        fs = registry.load("nmnist", "train", root=base, cache=False)
    assert all(issubclass(w.category, DataRepairWarning) for w in rec)
    assert np.bincount(fs.y.numpy(), minlength=10).tolist() == [1] * 8 + [0, 0]


def test_data_check_of_the_real_nmnist_stays_good(data_root, capsys):
    require_path(data_root / "nmnist" / "NMNIST")
    assert main(["data", "check", "nmnist", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out and "check: all good" in out


# ------------------------------------------------------------------------------ 3. .ts files with time stamps
def _ts(tmp_path: Path, data_root: Path, old: str, new: str) -> Path:
    src = require_path(data_root / "har" / "basicmotions" / "BasicMotions_TRAIN.ts").read_text(encoding="utf-8")
    assert old in src
    p = tmp_path / "BasicMotions_TRAIN.ts"
    p.write_text(src.replace(old, new), encoding="utf-8")
    return p


@pytest.mark.parametrize("header", ["@timeStamps true", "@TIMESTAMPS True", "@timeStamps yes"])
def test_ts_with_time_stamps_is_refused_naming_file_and_line(data_root, tmp_path, header):
    p = _ts(tmp_path, data_root, "@timeStamps false", header)
    with pytest.raises(DataError, match=rf"{p.name}: line 6 reads '{header}': series with time stamps .* are not "
                                        r"supported by this reader.*write '@timeStamps false'"):
        ucr_ts.read_ts(p)  # was accepted: (40, 6, 100) values read as if sampled at a fixed rate


def test_ts_without_time_stamps_still_reads(data_root, tmp_path):
    real = ucr_ts.read_ts(require_path(data_root / "har" / "basicmotions" / "BasicMotions_TRAIN.ts"))
    assert real.x.shape == (40, 6, 100) and real.header["timestamps"] == "false"
    p = _ts(tmp_path, data_root, "@timeStamps false\n", "")  # no @timeStamps line: plain values as before
    again = ucr_ts.read_ts(p)
    assert "timestamps" not in again.header and np.array_equal(again.x, real.x)
