"""Defects a probe with broken copies of real files found in the dataset readers: each damaged copy is refused
with a DataError naming the file (and line or sample) and what to do, or read with a DataRepairWarning saying what
was done. Real files come from ``$SPIKESEQ_DATA`` (copied into tmp_path, never modified); the rest are fixtures in
the real layouts."""

from __future__ import annotations

import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest

from spikeseq.data import banglejs, cache, hapt, nmnist, shd, text_lm, uci_har, wisdm
from spikeseq.data._text import read_table
from spikeseq.data.har import basicmotions
from spikeseq.data.repair import DataRepairWarning
from spikeseq.errors import DataError
from tests.conftest import require_path
from tests.faults import _real


# ------------------------------------------------------------------------------------------- 3. read_table
def test_read_table_checks_every_line_even_when_the_total_count_fits(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"1 2 3\n4 5\n6 7 8 9\n")  # 9 values = 3 x 3, but lines 2 and 3 are wrong
    with pytest.raises(DataError, match=r"t\.txt: line 2 has 2 values, expected 3: b'4 5'; restore"):
        read_table(p, 3)


def test_read_table_warns_when_the_file_may_be_truncated(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"1 2 3\n4 5 6.2")  # cut inside the last number, no final newline
    with pytest.warns(DataRepairWarning, match=r"t\.txt does not end with a newline: the file may be truncated "
                                               r"\(its last line, line 2"):
        a = read_table(p, 3)
    np.testing.assert_array_equal(a, [[1, 2, 3], [4, 5, 6.2]])


def test_read_table_integer_overflow_names_the_line(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_bytes(b"1 1 5 250 1232\n1 1 5 250 99999999999999999999\n")
    with pytest.raises(DataError, match=r"labels\.txt: line 2 is not numeric \(int64 values expected: .*too large"):
        read_table(p, 5, dtype=np.int64)


def test_real_labels_csv_without_final_newline_loads_without_warning(data_root, tmp_path, recwarn):
    root = _real.bangle_copy(data_root, tmp_path)
    assert not (root / "labels.csv").read_bytes().endswith(b"\n")  # how the real file ends
    ds = banglejs.load_windows(root, "train")
    assert len(ds) == 934 and ds.class_counts() == [234, 233, 234, 233]
    assert not [w for w in recwarn if issubclass(w.category, DataRepairWarning)]


# ------------------------------------------------------------------------------------------- 4. BasicMotions
def test_basicmotions_splits_numbering_classes_differently_are_refused(data_root, tmp_path):
    root = _real.basicmotions_copy(data_root, tmp_path / "bm")
    train = root / "BasicMotions_TRAIN.ts"
    lines = [ln for ln in train.read_text().splitlines(keepends=True) if not ln.lower().startswith("@classlabel")]
    train.write_text("".join(lines))  # no @classLabel: sorted names, Badminton first
    with pytest.raises(DataError, match=r"BasicMotions_TRAIN\.ts numbers its classes \['Badminton', 'Running', "
                                        r"'Standing', 'Walking'\] but .*BasicMotions_TEST\.ts numbers them "
                                        r"\['Standing', 'Running', 'Walking', 'Badminton'\]"):
        basicmotions(root, "train")
    with pytest.raises(DataError, match=r"BasicMotions_TEST\.ts numbers its classes \['Standing'"):
        basicmotions(root, "test")


def test_basicmotions_intact_splits_agree(data_root, tmp_path):
    root = _real.basicmotions_copy(data_root, tmp_path / "bm")
    a, b = basicmotions(root, "train"), basicmotions(root, "test")
    assert a.classes == b.classes == ["Standing", "Running", "Walking", "Badminton"]


# ------------------------------------------------------------------------------------------- 5. SHD / SSC
def _shd_edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


@pytest.mark.parametrize(("labels", "pattern"), [
    ([25, 1, 2, 3, 4, 5], r"sample 0 has label 25 \(1 such samples\), outside \[0, 20\) of the 20 class names"),
    ([0, 1, -1, 3, 4, 5], r"sample 2 has label -1 \(1 such samples\), outside \[0, 20\)"),
])
def test_shd_labels_outside_the_keys_are_refused(tmp_path, labels, pattern):
    path = _real.shd_fixture(tmp_path / "shd_train.h5")

    def relabel(f):
        del f["labels"]
        f["labels"] = np.array(labels, dtype=np.int16)
    _shd_edit(path, relabel)
    with pytest.raises(DataError, match=r"shd_train\.h5: " + pattern):
        shd.read_shd(path)
    with pytest.raises(DataError, match=pattern):
        shd.load_frames(path, cache=False)


def test_shd_absurd_spike_times_are_refused_before_binning(tmp_path, _tmp_cache):
    path = _real.shd_fixture(tmp_path / "shd_train.h5")

    def late(f):
        t = f["spikes/times"][1].copy()
        t[-1] = 60000.0
        f["spikes/times"][1] = t
    _shd_edit(path, late)
    with pytest.raises(DataError, match=r"sample 1, spike \d+ has time 60000\.0 s, beyond the plausible 10\.0 s "
                                        r"\(SHD samples last about 1\.4 s"):
        shd.load_frames(path)
    assert shd.MAX_TIME_S == 10.0 and list(_tmp_cache.iterdir()) == []


def test_shd_negative_units_name_file_and_sample(tmp_path):
    path = _real.shd_fixture(tmp_path / "shd_train.h5", n=4)

    def negative(f):
        units = [f["spikes/units"][i].astype(np.int16) for i in range(4)]
        units[2][0] = -5
        del f["spikes/units"]
        d = f.create_dataset("spikes/units", (4,), dtype=h5py.vlen_dtype(np.int16))
        for i in range(4):
            d[i] = units[i]
    _shd_edit(path, negative)
    with pytest.raises(DataError, match=r"shd_train\.h5: sample 2 has a negative unit id \(-5\)"):
        shd.SHDDataset(path)


@pytest.mark.parametrize("value", ["abc", 0, 2.5])
def test_shd_n_channels_attribute_must_be_a_positive_integer(tmp_path, value):
    path = _shd_edit(_real.shd_fixture(tmp_path / "shd_train.h5"), lambda f: f.attrs.__setitem__("n_channels", value))
    with pytest.raises(DataError, match=r"shd_train\.h5: the n_channels attribute is .*; it must be an integer >= 1"):
        shd.SHDDataset(path)


# ------------------------------------------------------------------------------------------- 6. class-name files
def _uci(tmp_path, n=6):
    rng = np.random.default_rng(1)
    for split, subj in (("train", 1), ("test", 2)):
        sig = {f"{s}_{a}": rng.normal(size=(n, 128)) for s in uci_har.SIGNALS for a in "xyz"}
        uci_har.write_split(tmp_path, split, signals=sig, y=np.arange(n) % 6 + 1, subject=np.full(n, subj))
    return tmp_path / "UCI HAR Dataset"


def test_uci_activity_labels_are_mapped_by_id(tmp_path):
    folder = _uci(tmp_path)
    p = folder / "activity_labels.txt"
    p.write_text("".join(reversed(p.read_text().splitlines(keepends=True))))
    assert p.read_text().startswith("6 LAYING")
    ds = uci_har.load_windows(tmp_path, "train")
    assert ds.classes == ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]


@pytest.mark.parametrize(("content", "pattern"), [
    (b"1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n",
     r"lists class ids \[1, 2, 3, 4, 5\], expected exactly \[1, 2, 3, 4, 5, 6\]"),
    (b"1\n2 A\n3 B\n4 C\n5 D\n6 E\n", r"line 1 is not 'id name': '1'"),
    (b"1 A\n2 B\n2 C\n4 D\n5 E\n6 F\n", r"line 3 repeats class id 2"),
    (b"1 WALK\xe9NG\n", r"not a UTF-8 text file \(byte 6\)"),
])
def test_uci_bad_activity_labels_are_refused(tmp_path, content, pattern):
    folder = _uci(tmp_path)
    (folder / "activity_labels.txt").write_bytes(content)
    with pytest.raises(DataError, match=r"activity_labels\.txt:? " + pattern):
        uci_har.load_windows(tmp_path, "train")


def test_bangle_classnames_mapped_by_id_and_checked(data_root, tmp_path):
    root = _real.bangle_copy(data_root, tmp_path)
    cn = root / "classnames.csv"
    cn.write_text("3 lying\n1 walking\n0 running\n2 sitting\n")
    assert banglejs.load_windows(root, "test").classes == ["running", "walking", "sitting", "lying"]
    cn.write_text("0 running\n1 walking\n3 lying\n")
    with pytest.raises(DataError, match=r"classnames\.csv: lists class ids \[0, 1, 3\], expected exactly "
                                        r"\[0, 1, 2\]"):
        banglejs.load_windows(root, "test")
    cn.write_bytes(b"0 r\xfcnning\n1 walking\n")
    with pytest.raises(DataError, match=r"classnames\.csv: not a UTF-8 text file"):
        banglejs.load_windows(root, "test")
    cn.unlink()
    with pytest.raises(DataError, match=r"banglejs: missing .*classnames\.csv\. The data root is SPIKESEQ_DATA"):
        banglejs.load_windows(root, "test")


# ------------------------------------------------------------------------------------------- 7. Tiny Shakespeare
def _shakespeare(data_root, tmp_path, edit=None):
    src = require_path(data_root / "text" / "tinyshakespeare" / "input.txt").read_bytes()
    folder = tmp_path / "text" / "tinyshakespeare"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_bytes(edit(src) if edit else src)
    return tmp_path


def test_shakespeare_of_another_size_warns_with_both_sizes(data_root, tmp_path):
    root = _shakespeare(data_root, tmp_path, lambda b: b[: len(b) // 2])
    with pytest.warns(DataRepairWarning, match=r"input\.txt has 557,697 bytes, the manifest records 1,115,394 for "
                                               r"tinyshakespeare.*vocabulary and the train/test split point"):
        ds = text_lm.tinyshakespeare(root, "train")
    assert ds.x.shape[0] == (int(0.9 * 557697) - 1) // 100


def test_shakespeare_bom_is_stripped_with_a_warning_and_nul_refused(data_root, tmp_path, recwarn):
    ref = text_lm.tinyshakespeare(_shakespeare(data_root, tmp_path / "a"), "test")
    assert not [w for w in recwarn if issubclass(w.category, DataRepairWarning)]  # the real file: no warning
    root = _shakespeare(data_root, tmp_path / "b", lambda b: b"\xef\xbb\xbf" + b)
    with pytest.warns(DataRepairWarning, match=r"input\.txt starts with a UTF-8 byte-order mark .*stripped it"):
        ds = text_lm.tinyshakespeare(root, "test")
    assert ds.classes == ref.classes and (ds.x == ref.x).all()
    root = _shakespeare(data_root, tmp_path / "c", lambda b: b[:1000] + b"\0\0\0" + b[1003:])
    with pytest.raises(DataError, match=r"input\.txt: NUL byte at offset 1000 \(3 in all\)"):
        text_lm.tinyshakespeare(root, "train")


# ------------------------------------------------------------------------------------------- 8. N-MNIST
def test_nmnist_overflow_marker_is_announced(data_root, tmp_path):
    raw = bytearray(_real.nmnist_file(data_root).read_bytes())
    m = len(raw) // 2 // 5 * 5
    raw[m + 1] = 240
    p = tmp_path / "00002.bin"
    p.write_bytes(bytes(raw))
    with pytest.warns(DataRepairWarning, match=rf"00002\.bin: 1 record\(s\) with y=240 \(byte offset\(s\) {m + 1}\) "
                                               r"read as timestamp-overflow markers"):
        ev = nmnist.read_events(p)
    assert len(ev) == len(raw) // 5 - 1


def _nmnist_tree(data_root, tmp_path, n=2):
    base = tmp_path / "NMNIST"
    for d in range(10):
        src = require_path(data_root / _real.NMNIST / "Train" / str(d))
        (base / "Train" / str(d)).mkdir(parents=True)
        for f in sorted(src.iterdir())[:n]:
            shutil.copy(f, base / "Train" / str(d) / f.name)
    return base


def test_nmnist_listing_problems(data_root, tmp_path):
    base = _nmnist_tree(data_root, tmp_path)
    five = base / "Train" / "5"
    first = sorted(five.iterdir())[0]
    first.rename(first.with_suffix(".BIN"))  # upper-case extension: accepted
    shutil.copy(first.with_suffix(".BIN"), five / f"copy of {first.name}")
    with pytest.warns(DataRepairWarning, match=r"copy of \d+\.bin: skipped, the name is not <NNNNN>\.bin"):
        recs = nmnist.list_recordings(base, "train")
    assert len(recs) == 20 and all(r.index > 0 for r in recs)
    (five / f"copy of {first.name}").unlink()
    (base / "Train" / ".DS_Store").mkdir()  # hidden entries are ignored
    (five / "99999.bin").mkdir()
    with pytest.raises(DataError, match=r"5/99999\.bin is a folder, but N-MNIST recordings are 5-byte event files"):
        nmnist.list_recordings(base, "train")
    (five / "99999.bin").rmdir()
    (five / "88888.bin").symlink_to(tmp_path / "nowhere.bin")
    with pytest.raises(DataError, match=r"88888\.bin is not a readable file \(a dangling link\?\)"):
        nmnist.list_recordings(base, "train")
    (five / "88888.bin").unlink()
    shutil.rmtree(five)
    five.write_bytes(b"x")
    with pytest.raises(DataError, match=r"Train/5 is a file, but an N-MNIST split holds a folder of recordings per "
                                        r"digit"):
        nmnist.load_frames(base, "train", cache=False)


def test_nmnist_zip_with_a_corrupt_member_names_archive_and_member(data_root, tmp_path):
    base = _nmnist_tree(data_root, tmp_path / "src", n=1)
    out = tmp_path / "z"
    out.mkdir()
    with zipfile.ZipFile(out / "train.zip", "w", zipfile.ZIP_STORED) as zf:
        for f in sorted((base / "Train").rglob("*.bin")):
            zf.write(f, f"Train/{f.parent.name}/{f.name}")
    b = bytearray((out / "train.zip").read_bytes())
    for i in range(len(b) // 2, len(b) // 2 + 10):
        b[i] ^= 0x55
    (out / "train.zip").write_bytes(bytes(b))
    with pytest.raises(DataError, match=r"train\.zip: the member Train/\d/\d+\.bin cannot be read \(BadZipFile: "
                                        r".*the archive is corrupt: delete it and fetch it again"):
        nmnist.load_frames(out, "train", cache=False)


# ------------------------------------------------------------------------------------------- 9. folders, links
def test_folder_or_dangling_link_in_place_of_a_data_file(data_root, tmp_path):
    root = _real.mini_hapt(data_root, tmp_path / "h", max_rows=3000)
    acc = root / "RawData" / "acc_exp01_user01.txt"
    acc.unlink()
    acc.mkdir()
    with pytest.raises(DataError, match=r"acc_exp01_user01\.txt is a folder, not a data file"):
        hapt.load_windows(root, "all")
    acc.rmdir()
    acc.symlink_to(tmp_path / "gone.txt")
    with pytest.raises(DataError, match=r"acc_exp01_user01\.txt is a link to a missing file; restore the data file"):
        hapt.load_windows(root, "all")
    text = tmp_path / "t" / "text" / "tinyshakespeare"
    (text / "input.txt").mkdir(parents=True)
    with pytest.raises(DataError, match=r"input\.txt is a folder, not a data file"):
        text_lm.tinyshakespeare(tmp_path / "t", "train")


def _wisdm2019(tmp_path, subjects=(1600, 1645)):
    rng = np.random.default_rng(2)
    folder = tmp_path / "wisdm-dataset"
    for s in subjects:
        for sensor in ("accel", "gyro"):
            rows = [(c, 252207666810782 + k * 10**12 + i * 50_000_000, *rng.normal(size=3).round(5).tolist())
                    for k, c in enumerate("FG") for i in range(120)]
            wisdm.write_2019_raw(folder, s, sensor, rows)
    return folder


def test_wisdm2019_missing_gyro_file_and_stray_file(tmp_path):
    folder = _wisdm2019(tmp_path)
    accel = folder / "raw" / "watch" / "accel"
    shutil.copy(accel / "data_1600_accel_watch.txt", accel / "data_1600b_accel_watch.txt")
    with pytest.warns(DataRepairWarning, match=r"data_1600b_accel_watch\.txt: skipped, the name is not "
                                               r"data_<subject>_accel_watch\.txt"):
        ds = wisdm.load_2019(folder, "train", cache=False)
    assert sorted(set(ds.subject.tolist())) == [1600]
    (accel / "data_1600b_accel_watch.txt").unlink()
    (folder / "raw" / "watch" / "gyro" / "data_1645_gyro_watch.txt").unlink()
    with pytest.raises(DataError, match=r"wisdm2019: missing .*data_1645_gyro_watch\.txt.*spikeseq data fetch "
                                        r"wisdm2019"):
        wisdm.load_2019(folder, "train", cache=False)


# ------------------------------------------------------------------------------------------- 10. odd tokens
def test_wisdm_timestamp_overflow_names_the_line(tmp_path):
    rows = [(1, "Walking", 10_000 + 50_000_000 * i, 0.5, 9.8, 0.1) for i in range(40)]
    path = wisdm.write_v11(tmp_path / "WISDM_ar_v1.1_raw.txt", rows)
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = "1,Walking,99999999999999999999,0,1,2;\n"
    path.write_text("".join(lines))
    with pytest.raises(DataError, match=r"WISDM_ar_v1\.1_raw\.txt: line 5 has a subject or timestamp that does not "
                                        r"fit a 64-bit integer"):
        wisdm.load_v11(tmp_path, window=10, stride=5, cache=False)


@pytest.mark.parametrize(("row", "pattern"), [
    ("1 1 3 0 15000", r"line 1 is not a valid 'exp user class start end' row: \[1, 1, 3, 0, 15000\]; start must "
                      r"be >= 1"),
    ("1 1 3 15000 1", r"line 1 is not a valid 'exp user class start end' row: \[1, 1, 3, 15000, 1\]"),
])
def test_bangle_label_rows_with_bad_bounds_are_refused(data_root, tmp_path, row, pattern):
    root = _real.bangle_copy(data_root, tmp_path)
    lab = root / "labels.csv"
    lines = lab.read_text().splitlines()
    lab.write_text("\n".join([row, *lines[1:]]))
    with pytest.raises(DataError, match=r"labels\.csv: " + pattern):
        banglejs.load_windows(root, "train")


def test_hapt_label_overflow_names_the_line(data_root, tmp_path):
    root = _real.mini_hapt(data_root, tmp_path, max_rows=3000)
    lab = root / "RawData" / "labels.txt"
    lines = lab.read_text().splitlines()
    lab.write_text("\n".join([lines[0], "1 1 5 250 99999999999999999999", *lines[1:]]) + "\n")
    with pytest.raises(DataError, match=r"labels\.txt: line 2 is not numeric"):
        hapt.load_windows(root, "all", cache=False)


# ------------------------------------------------------------------------------------------- 11. cache
def test_same_size_rewrite_with_restored_mtime_is_not_served_from_the_cache(tmp_path, _tmp_cache):
    path = tmp_path / "shd_train.h5"
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0, 0.5, 30)) for _ in range(8)]
    units = [rng.integers(0, 700, 30) for _ in range(8)]
    shd.write_shd(path, times, units, np.zeros(8, int), keys=["a", "b"])
    st = path.stat()
    assert shd.load_frames(path).y.tolist() == [0] * 8
    shd.write_shd(path, times, units, np.ones(8, int), keys=["a", "b"])  # same size, other labels
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    again = shd.load_frames(path)
    assert not again.cache_hit and again.y.tolist() == [1] * 8
    assert shd.load_frames(path).cache_hit  # unchanged since: served from the cache


def test_unwritable_cache_falls_back_to_no_cache_with_a_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("SPIKESEQ_CACHE", str(blocker))
    path = _real.shd_fixture(tmp_path / "shd_train.h5")
    with pytest.warns(DataRepairWarning, match=r"cannot write the cache .*cache-is-a-file is a file, not a "
                                               r"directory.*used without a cache"):
        fs = shd.load_frames(path)
    ref = shd.load_frames(path, cache=False)
    assert not fs.cache_hit and (fs.x == ref.x).all() and fs.y.tolist() == ref.y.tolist()


def test_cache_lacking_a_dataset_is_rebuilt(tmp_path, _tmp_cache):
    path = _real.shd_fixture(tmp_path / "shd_train.h5")
    ref = shd.load_frames(path)
    (cf,) = list(_tmp_cache.glob("*.h5"))
    with h5py.File(cf, "a") as f:
        del f["lengths"]
    with pytest.warns(DataRepairWarning, match=r"is unreadable \(it lacks the dataset\(s\) lengths\); rebuilding"):
        fs = shd.load_frames(path)
    assert not fs.cache_hit and (fs.lengths == ref.lengths).all()
    assert shd.load_frames(path).cache_hit
    assert cache.fingerprint_files([path]) == cache.fingerprint_files([path])


# ------------------------------------------------------------------------------------------- 12. empty, duplicates
def test_uci_empty_split_is_refused(tmp_path):
    folder = _uci(tmp_path)
    for p in (folder / "train").rglob("*.txt"):
        p.write_bytes(b"")
    with pytest.raises(DataError, match=r"y_train\.txt holds no label \(empty file\): the train split has no "
                                        r"windows"):
        uci_har.load_windows(tmp_path, "train")


def test_hapt_duplicated_label_rows_are_refused(data_root, tmp_path):
    root = _real.mini_hapt(data_root, tmp_path, max_rows=3000)
    lab = root / "RawData" / "labels.txt"
    n = len(lab.read_text().splitlines())
    lab.write_text(lab.read_text() * 2)
    with pytest.raises(DataError, match=rf"labels\.txt: line {n + 1} repeats line 1 \(.*{n} repeated rows in all\)"):
        hapt.load_windows(root, "all", cache=False)
