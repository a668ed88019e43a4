"""Broken copies of the real files (second adversarial probe): each case was a silent wrong result or a raw
exception before, and is now a :class:`~spikeseq.errors.DataError` / :class:`~spikeseq.errors.ParameterError`
naming the file (and line / sample) or a :class:`~spikeseq.data.repair.DataRepairWarning`. Every broken file is
built under ``tmp_path`` from the real data (``SPIKESEQ_DATA``); with ``SPIKESEQ_REQUIRE_DATA=1`` a missing data
root fails these tests instead of skipping them."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikeseq.data import hapt, har, nmnist, registry, shd, text_lm
from spikeseq.data.repair import DataRepairWarning
from spikeseq.errors import DataError, ParameterError
from tests.conftest import require_path
from tests.faults import _real


def _nmnist_tree(data_root: Path, dst: Path, n: int = 2, digits=range(10)) -> Path:
    """``dst/NMNIST/Train/<digit>/`` with the first ``n`` real recordings of each of ``digits``."""
    base = dst / "NMNIST"
    for d in digits:
        src = require_path(data_root / _real.NMNIST / "Train" / str(d))
        (base / "Train" / str(d)).mkdir(parents=True)
        for f in sorted(src.iterdir())[:n]:
            shutil.copy(f, base / "Train" / str(d) / f.name)
    return base


# ----------------------------------------------------------------------------------------------------- N-MNIST
def test_real_nmnist_listing_has_every_digit_once_and_no_warning(data_root):
    require_path(data_root / _real.NMNIST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataRepairWarning)
        for split, n in (("train", 1000), ("test", 100)):
            recs = nmnist.list_recordings(data_root / "nmnist", split)
            assert len(recs) == n and len({r.index for r in recs}) == n
            assert {r.label for r in recs} == set(range(10))


def test_nmnist_recording_copied_into_another_digit_folder_is_refused(data_root, tmp_path):
    base = _nmnist_tree(data_root, tmp_path)
    first = sorted((base / "Train" / "3").iterdir())[0]
    shutil.copy(first, base / "Train" / "4" / first.name)  # before: 21 samples, recording counted as a 3 and a 4
    with pytest.raises(DataError, match=rf"Train/3/{first.name} and .*Train/4/{first.name} are both recording "
                                        rf"{int(first.stem)} \(digits 3 and 4"):
        nmnist.load_frames(base, "train", cache=False)
    # the same index under two spellings in one folder (00008.bin and 8.bin) is one recording twice as well
    (base / "Train" / "4" / first.name).unlink()
    shutil.copy(first, base / "Train" / "3" / f"{int(first.stem)}.bin")
    with pytest.raises(DataError, match=r"are both recording"):
        nmnist.list_recordings(base, "train")


def test_nmnist_missing_or_empty_class_folder_is_announced(data_root, tmp_path):
    base = _nmnist_tree(data_root, tmp_path)
    shutil.rmtree(base / "Train" / "7")
    for f in (base / "Train" / "2").iterdir():
        f.unlink()
    with pytest.warns(DataRepairWarning, match=r"N-MNIST train under .* has no recording of digit\(s\) \[2, 7\] "
                                               r"\(class folder missing or empty\)"):
        fs = registry.load("nmnist", "train", root=base, cache=False)
    assert np.bincount(fs.y.numpy(), minlength=10).tolist() == [2, 2, 0, 2, 2, 2, 2, 0, 2, 2]


@pytest.mark.parametrize("k", [0, -2, 0.5, "2"])
def test_nmnist_bad_downsample_is_a_parameter_error_before_anything_is_cached(data_root, tmp_path, _tmp_cache, k):
    base = _nmnist_tree(data_root, tmp_path, n=1)
    with pytest.raises(ParameterError, match=r"downsample must be a positive integer"):  # was ZeroDivisionError
        nmnist.load_frames(base, "train", n_bins=5, downsample=k)
    assert list(Path(_tmp_cache).iterdir()) == []
    fs = nmnist.load_frames(base, "train", n_bins=5, downsample=2, cache=False)
    assert tuple(fs.x.shape[2:]) == (2, 17, 17)


# -------------------------------------------------------------------------------------------------------- HAPT
def _labels(root: Path) -> Path:
    return root / "RawData" / "labels.txt"


def test_real_hapt_labels_have_no_overlap(data_root):
    lab = hapt.read_labels(require_path(data_root / _real.HAPT / "RawData" / "labels.txt"))
    assert lab.shape == (1214, 5)


def test_hapt_overlapping_segments_are_refused_naming_both_lines(data_root, tmp_path):
    root = _real.mini_hapt(data_root, tmp_path, max_rows=3000)
    rows = _labels(root).read_text().splitlines()
    e, u, _, start, end = rows[1].split()
    # the same samples labelled again as WALKING (before: one more window, labelled 0, cut from a transition)
    _labels(root).write_text("\n".join([*rows, f"{e} {u} 1 {int(start) + 10} {int(end) + 300}"]) + "\n")
    with pytest.raises(DataError, match=rf"labels\.txt: line {len(rows) + 1} \({e} {u} 1 .*\) overlaps line 2 "
                                        rf"\({rows[1]};.* would get two labels"):
        hapt.load_windows(root, "all", cache=False)


@pytest.mark.parametrize("row", ["0 1 5 100 400", "1 -1 5 100 400"])
def test_hapt_exp_or_user_below_one_is_an_invalid_row(data_root, tmp_path, row):
    root = _real.mini_hapt(data_root, tmp_path, max_rows=3000)
    rows = _labels(root).read_text().splitlines()
    _labels(root).write_text("\n".join([*rows, row]) + "\n")  # before: "file not found: acc_exp00_user01.txt"
    with pytest.raises(DataError, match=rf"line {len(rows) + 1} is not a valid 'exp user activity start end' row: "
                                        r".*exp and user must be >= 1"):
        hapt.load_windows(root, "all", cache=False)


def test_hapt_labels_of_a_session_without_files_name_labels_and_files(data_root, tmp_path):
    root = _real.mini_hapt(data_root, tmp_path, max_rows=3000)
    with _labels(root).open("a") as f:
        f.write("3 2 5 100 400\n")
    with pytest.raises(DataError, match=r"labels\.txt labels session exp 3 user 2 \(1 rows\), but "
                                        r"acc_exp03_user02\.txt and gyro_exp03_user02\.txt are missing"):
        hapt.load_windows(root, "all", cache=False)
    shutil.copy(data_root / _real.HAPT / "RawData" / "acc_exp03_user02.txt", root / "RawData")
    with pytest.raises(DataError, match=r"but gyro_exp03_user02\.txt is missing"):
        hapt.load_windows(root, "all", cache=False)


def test_hapt_split_without_any_session_of_its_subjects_is_refused(data_root, tmp_path):
    root = _real.mini_hapt(data_root, tmp_path, max_rows=3000)  # user 1 only: a training subject
    assert len(hapt.load_windows(root, "train", cache=False)) == 25
    with pytest.raises(DataError, match=r"the test split is empty: no labelled session of a test subject \(test "
                                        r"subjects \[2, 4, 9, .*\], train: all others\), the labels.txt sessions "
                                        r"are of users \[1\]"):
        registry.load("hapt", "test", root=root, cache=False)  # before: 0 windows, silently


# ------------------------------------------------------------------------------------------------ BasicMotions
def test_basicmotions_with_a_dimension_dropped_from_every_case_names_the_file(data_root, tmp_path):
    folder = _real.basicmotions_copy(data_root, tmp_path / "bm")
    p = folder / "BasicMotions_TRAIN.ts"
    out, in_data = [], False
    for line in p.read_text().splitlines():
        if in_data and line.strip():
            line = line.split(":", 1)[1]  # drop acc_x of every case, consistently with the header
        elif line.lower().startswith("@dimensions"):
            line = "@dimensions 5"
        in_data = in_data or line.lower().startswith("@data")
        out.append(line)
    p.write_text("\n".join(out) + "\n")
    # before: ShapeError "x has 5 channels but 6 channel names", naming no file
    with pytest.raises(DataError, match=r"BasicMotions_TRAIN\.ts: the cases have 5 dimensions, but BasicMotions has "
                                        r"6 \(acc_x, .*gyro_z\)"):
        har.basicmotions(folder, "train")
    assert len(har.basicmotions(folder, "test")) == 40  # the intact split still loads


# --------------------------------------------------------------------------------------------------------- SHD
def _shd_with(path: Path, name: str, make) -> Path:
    _real.shd_fixture(path)
    with h5py.File(path, "a") as f:
        del f[name]
        make(f, name)
    return path


@pytest.mark.parametrize("make,what", [
    (lambda f, k: f.create_dataset(k, data=1.0), r"a dataset of shape \(\)"),
    (lambda f, k: f.create_dataset(k, data=np.zeros((6, 3), np.uint16)), r"a dataset of shape \(6, 3\)"),
    (lambda f, k: f.create_group(k), r"a group"),
])
@pytest.mark.parametrize("name", ["spikes/times", "spikes/units", "labels", "extra/speaker"])
def test_shd_dataset_of_the_wrong_kind_names_file_and_dataset(tmp_path, make, what, name):
    path = _shd_with(tmp_path / "shd_train.h5", name, make)  # scalar: IndexError before
    with pytest.raises(DataError, match=rf"shd_train\.h5: {name} is {what}; an SHD/SSC file holds it as a 1-D "
                                        "dataset"):
        shd.load_frames(path, cache=False)
    with pytest.raises(DataError, match=rf"{name} is {what}"):
        registry.load("shd", "train", root=tmp_path, cache=False)


def test_shd_file_without_samples_is_refused(tmp_path):
    path = shd.write_shd(tmp_path / "shd_train.h5", [], [], np.zeros(0, np.int64))
    assert len(shd.read_shd(path)) == 0  # the reader returns what is there
    with pytest.raises(DataError, match=r"shd_train\.h5 holds no sample"):  # before: an empty FrameSet
        registry.load("shd", "train", root=tmp_path, cache=False)


# ---------------------------------------------------------------------------------------------- Tiny Shakespeare
def _shakespeare(data_root: Path, dst: Path, data: bytes | None = None, cut: int | None = None) -> Path:
    src = require_path(data_root / "text" / "tinyshakespeare" / "input.txt").read_bytes()
    folder = dst / "text" / "tinyshakespeare"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_bytes(data if data is not None else src[:cut])
    return dst


def test_shakespeare_empty_or_not_utf8_names_the_file_and_the_fix(data_root, tmp_path):
    src = require_path(data_root / "text" / "tinyshakespeare" / "input.txt").read_bytes()
    root = _shakespeare(data_root, tmp_path / "a", data=b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRepairWarning)  # the size differs from the manifest's: warned, tested
        with pytest.raises(DataError, match=r"a/text/tinyshakespeare/input\.txt \(Tiny Shakespeare\) has only 0 "
                                            r"characters, .*`spikeseq data fetch tinyshakespeare --force`"):
            text_lm.tinyshakespeare(root, "train")
        k = src.index(b"\n", 5000) + 1  # the first byte of a line
        root = _shakespeare(data_root, tmp_path / "b", data=src[:k] + b"\xff" + src[k + 1:])  # same size
        line = src[:k].count(b"\n") + 1
        with pytest.raises(DataError, match=rf"input\.txt: byte {k} \(line {line}\) is 0xff, not UTF-8 text "
                                            r"\(invalid start byte\); .*spikeseq data fetch tinyshakespeare --force"):
            registry.load("tinyshakespeare", "train", root=root)
