"""Class 7: property tests that damage copies of real files (and of fixtures in the real layouts) for every reader
(truncate, flip bytes, insert NaN/Inf, reorder, change dtypes) and require either a spikeseq error or a result that
is identical to the undamaged one (or, where the damage leaves a well-formed file, a result that is well formed:
finite values, in-range ids, sorted times). Any other exception fails the test.

Hypothesis runs derandomized with a bounded number of examples per reader, so the file is reproducible and takes
well under a minute.
"""

from __future__ import annotations

import itertools
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeseq.data import hapt, nmnist, shd, uci_har, wisdm
from spikeseq.data.banglejs import read_recording
from spikeseq.data.har import basicmotions
from spikeseq.errors import SpikeseqError
from tests.faults import _real

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_count = itertools.count()


def _fresh(tmp_path: Path) -> Path:
    d = tmp_path / f"ex{next(_count)}"
    d.mkdir()
    return d


def _outcome(read: Callable[[], object]) -> object:
    """The reader's result, or the string "error" for a spikeseq error (anything else propagates)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # repair warnings are allowed; exceptions are what is checked
            return read()
    except SpikeseqError:
        return "error"


def _failed(out: object) -> bool:
    return isinstance(out, str) and out == "error"


# ----------------------------------------------------------------------------------------- byte-level damage
damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.floats(0.0, 1.0), st.integers(1, 255)),
)


def _apply(raw: bytes, how: tuple) -> bytes:
    pos = min(int(how[1] * len(raw)), len(raw) - 1)
    if how[0] == "truncate":
        return raw[:pos]
    b = bytearray(raw)
    b[pos] ^= how[2]
    return bytes(b)


def _text_damage(text: str, how: tuple, rng_pick: float) -> str:
    """Insert a non-finite value, turn a value into another type (``7`` -> ``7.5``, ``0.25`` -> ``0.25x``), or
    swap two lines."""
    lines = text.splitlines(keepends=True)
    i = min(int(rng_pick * len(lines)), len(lines) - 1)
    if how[0] == "retype":
        numeric = [m for m in re.finditer(r"-?\d+(\.\d+)?(e[-+]?\d+)?", lines[i])]
        if not numeric:
            return text
        m = numeric[int((rng_pick * 7919) % 1 * len(numeric))]
        new = m.group(0) + (".5" if how[1] == "float" and "." not in m.group(0) else "x")
        lines[i] = lines[i][: m.start()] + new + lines[i][m.end():]
        return "".join(lines)
    if how[0] == "nan":
        tokens = lines[i].replace(",", " , ").split(" ")
        numeric = [j for j, tok in enumerate(tokens) if _is_number(tok.strip().rstrip(";"))]
        if not numeric:
            return text
        k = numeric[int((rng_pick * 7919) % 1 * len(numeric))]  # any numeric field of the line
        tokens[k] = how[1] + (";" if tokens[k].strip().endswith(";") else "") + ("\n" if tokens[k].endswith("\n")
                                                                                  else "")
        lines[i] = " ".join(tokens).replace(" , ", ",")
        return "".join(lines)
    j = min(int(how[1] * len(lines)), len(lines) - 1)
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


text_damage = st.one_of(st.tuples(st.just("nan"), st.sampled_from(["nan", "NaN", "inf", "-inf"])),
                        st.tuples(st.just("swap"), st.floats(0.0, 1.0)),
                        st.tuples(st.just("retype"), st.sampled_from(["float", "text"])))


# ----------------------------------------------------------------------------------------------------- N-MNIST
@SETTINGS
@given(how=st.one_of(damage, st.tuples(st.just("swap"), st.integers(0, 4000), st.integers(0, 4000))))
def test_nmnist_bin(data_root, tmp_path, how):
    src = _real.nmnist_file(data_root)
    raw = src.read_bytes()
    good = nmnist.read_events(src)
    if how[0] == "swap":
        i, j = how[1] % len(good), how[2] % len(good)
        b = bytearray(raw)
        b[5 * i: 5 * i + 5], b[5 * j: 5 * j + 5] = raw[5 * j: 5 * j + 5], raw[5 * i: 5 * i + 5]
        bad = bytes(b)
    else:
        bad = _apply(raw, how)
    path = _fresh(tmp_path) / "00002.bin"
    path.write_bytes(bad)
    out = _outcome(lambda: nmnist.read_events(path))
    if _failed(out):
        return
    assert isinstance(out, np.ndarray) and len(out) > 0
    assert (out["x"] < 34).all() and (out["y"] < 34).all() and np.isin(out["p"], (0, 1)).all()
    assert (np.diff(out["t"]) >= 0).all()
    if how[0] == "truncate" or bad == raw:  # a whole-event prefix is read exactly as the prefix of the original
        np.testing.assert_array_equal(out, good[: len(out)])
    if how[0] == "swap":  # swapping events is accepted only where it changes nothing that binning sees
        np.testing.assert_array_equal(nmnist.to_frames(out, n_bins=10), nmnist.to_frames(good, n_bins=10))


# ------------------------------------------------------------------------------------------------------- HAPT
@pytest.fixture
def hapt_root(data_root, tmp_path):
    return _real.mini_hapt(data_root, tmp_path / "orig", max_rows=3000)


@SETTINGS
@given(which=st.sampled_from(["acc_exp01_user01.txt", "gyro_exp01_user01.txt", "labels.txt"]),
       how=st.one_of(damage, text_damage), pick=st.floats(0.0, 1.0))
def test_hapt_raw_and_labels(hapt_root, tmp_path, which, how, pick):
    good = hapt.load_windows(hapt_root, "all", cache=False)
    root = _fresh(tmp_path) / "HAPT Data Set"
    shutil.copytree(hapt_root, root)
    path = root / "RawData" / which
    if how[0] in ("nan", "swap", "retype"):
        path.write_text(_text_damage(path.read_text(), how, pick))
    else:
        path.write_bytes(_apply(path.read_bytes(), how))
    out = _outcome(lambda: hapt.load_windows(root, "all", cache=False))
    if how[0] == "nan" and which != "labels.txt":
        assert _failed(out)
    if _failed(out):
        return
    assert np.isfinite(out.x.numpy()).all() and out.x.shape[1:] == good.x.shape[1:]
    assert set(out.y.tolist()) <= set(range(6))
    if how[0] == "swap" and which == "labels.txt":  # reordered label rows: the same windows
        key = lambda w: sorted(zip(w.meta["start"].tolist(), w.y.tolist()))  # noqa: E731
        assert key(out) == key(good)


# ----------------------------------------------------------------------------------------------- BasicMotions
@SETTINGS
@given(how=st.one_of(damage, text_damage), pick=st.floats(0.0, 1.0))
def test_basicmotions_ts(data_root, tmp_path, how, pick):
    orig = _real.basicmotions_copy(data_root, tmp_path / "orig") if not (tmp_path / "orig").exists() \
        else tmp_path / "orig"
    good = basicmotions(orig, "train")
    root = _fresh(tmp_path)
    shutil.copy(orig / "BasicMotions_TRAIN.ts", root / "BasicMotions_TRAIN.ts")
    path = root / "BasicMotions_TRAIN.ts"
    if how[0] in ("nan", "swap", "retype"):
        path.write_text(_text_damage(path.read_text(), how, pick))
    else:
        path.write_bytes(_apply(path.read_bytes(), how))
    out = _outcome(lambda: basicmotions(root, "train"))
    if how[0] == "nan" and path.read_text(errors="replace") != (orig / "BasicMotions_TRAIN.ts").read_text():
        assert _failed(out)
    if _failed(out):
        return
    assert np.isfinite(out.x.numpy()).all() and out.x.shape[1:] == good.x.shape[1:]
    assert set(out.y.tolist()) <= set(range(len(out.classes)))
    if how[0] == "swap":  # swapping two cases (or header lines) keeps the set of cases
        a = sorted((y, x.tobytes()) for x, y in zip(out.x.numpy(), out.y.tolist()))
        b = sorted((y, x.tobytes()) for x, y in zip(good.x.numpy(), good.y.tolist()))
        assert a == b


# ------------------------------------------------------------------------------------------------- Bangle.js
@SETTINGS
@given(how=st.one_of(damage, text_damage), pick=st.floats(0.0, 1.0))
def test_banglejs_csv(data_root, tmp_path, how, pick):
    src = _real.bangle_copy(data_root, tmp_path / "orig") if not (tmp_path / "orig").exists() \
        else tmp_path / "orig" / "Custom Dataset"
    rec = src / "Raw Data" / "acc_exp01_user01.txt"
    text = "".join(rec.read_text().splitlines(keepends=True)[:2000])
    path = _fresh(tmp_path) / "acc.txt"
    if how[0] in ("nan", "swap", "retype"):
        bad = _text_damage(text, how, pick)
        path.write_text(bad)
    else:
        bad = _apply(text.encode(), how)
        path.write_bytes(bad)
    out = _outcome(lambda: read_recording(path))
    if how[0] == "nan" and bad != text:
        assert _failed(out)
    if _failed(out):
        return
    assert out.ndim == 2 and out.shape[1] == 3 and np.isfinite(out).all()


# ------------------------------------------------------------------------------------------------------ SHD
shd_damage = st.one_of(
    damage,
    st.tuples(st.just("dtype"), st.sampled_from(["spikes/times", "spikes/units", "labels", "extra/speaker"]),
              st.sampled_from(["string", "float64", "int32", "2d"])),
    st.tuples(st.just("value"), st.integers(0, 5), st.sampled_from([np.nan, np.inf, -0.25])),
    st.tuples(st.just("reverse"), st.integers(0, 5)),
)


def _rewrite(path: Path, name: str, kind: str) -> None:
    with h5py.File(path, "r+") as f:
        old = f[name]
        if old.dtype.kind == "O":  # vlen spikes
            vals = [np.asarray(v) for v in old[()]]
            del f[name]
            if kind == "string":
                f.create_dataset(name, data=np.array([b"x%d" % i for i in range(len(vals))]))
            elif kind == "2d":
                f.create_dataset(name, data=np.zeros((len(vals), 2)))
            else:
                ds = f.create_dataset(name, (len(vals),), dtype=h5py.vlen_dtype(np.dtype(kind)))
                for i, v in enumerate(vals):
                    ds[i] = v.astype(kind)
        else:
            vals = old[()]
            del f[name]
            data = {"string": np.array([b"s"] * len(vals)), "2d": np.stack([vals, vals], 1)}.get(kind)
            f.create_dataset(name, data=data if data is not None else vals.astype(kind))


@SETTINGS
@given(how=shd_damage)
def test_shd_h5(tmp_path, how):
    orig = tmp_path / "orig.h5"
    if not orig.exists():
        _real.shd_fixture(orig)
    good = shd.read_shd(orig)
    path = _fresh(tmp_path) / "shd_train.h5"
    if how[0] in ("truncate", "flip"):
        path.write_bytes(_apply(orig.read_bytes(), how))
    else:
        shutil.copy(orig, path)
        if how[0] == "dtype":
            _rewrite(path, how[1], how[2])
        elif how[0] == "value":
            with h5py.File(path, "r+") as f:
                t = f["spikes/times"][how[1]].astype(np.float64)
                t[len(t) // 2] = how[2]
                f["spikes/times"][how[1]] = t.astype(np.float16)
        else:
            with h5py.File(path, "r+") as f:
                f["spikes/times"][how[1]] = f["spikes/times"][how[1]][::-1]
                f["spikes/units"][how[1]] = f["spikes/units"][how[1]][::-1]
    out = _outcome(lambda: shd.read_shd(path, n_channels=700))
    if how[0] == "value" or (how[0] == "dtype" and how[2] in ("string", "2d")):
        assert _failed(out)
    if _failed(out):
        return
    assert len(out) == len(good)
    for i in range(len(out)):
        t, u = out.sample(i)
        assert np.isfinite(t).all() and (t >= 0).all() and (np.diff(t) >= 0).all() and ((u >= 0) & (u < 700)).all()
    if how[0] in ("dtype", "reverse"):  # a wider dtype or a no-op reversal (equal times) reads identically
        for i in range(len(out)):
            for a, b in zip(out.sample(i), good.sample(i)):
                np.testing.assert_array_equal(np.sort(a), np.sort(b))
        np.testing.assert_array_equal(out.labels, good.labels)


# --------------------------------------------------------------------------------------------- UCI HAR, WISDM
@SETTINGS
@given(which=st.sampled_from(["Inertial Signals/body_acc_x_train.txt", "y_train.txt", "subject_train.txt"]),
       how=st.one_of(damage, text_damage), pick=st.floats(0.0, 1.0))
def test_uci_har_fixture(tmp_path, which, how, pick):
    orig = tmp_path / "orig"
    if not orig.exists():
        rng = np.random.default_rng(1)
        sig = {f"{s}_{a}": rng.normal(size=(6, 128)) for s in uci_har.SIGNALS for a in "xyz"}
        uci_har.write_split(orig, "train", signals=sig, y=np.arange(6) % 6 + 1, subject=np.arange(6) % 2 + 1)
    good = uci_har.load_windows(orig, "train")
    root = _fresh(tmp_path)
    shutil.copytree(orig / "UCI HAR Dataset", root / "UCI HAR Dataset")
    path = root / "UCI HAR Dataset" / "train" / which
    if how[0] in ("nan", "swap", "retype"):
        path.write_text(_text_damage(path.read_text(), how, pick))
    else:
        path.write_bytes(_apply(path.read_bytes(), how))
    out = _outcome(lambda: uci_har.load_windows(root, "train"))
    if how[0] == "nan" and which.startswith("Inertial"):
        assert _failed(out)
    if _failed(out):
        return
    assert np.isfinite(out.x.numpy()).all() and out.x.shape == good.x.shape
    assert set(out.y.tolist()) <= set(range(6))


@SETTINGS
@given(how=st.one_of(damage, text_damage), pick=st.floats(0.0, 1.0))
def test_wisdm_fixture(tmp_path, how, pick):
    rows = [(1 + i // 50, ["Walking", "Jogging"][i // 25 % 2], 10_000 + 50_000_000 * i, 0.5 + i, 9.8, -0.1 * i)
            for i in range(150)]
    orig = wisdm.write_v11(tmp_path / "orig.txt", rows)
    good = wisdm.parse_records(orig)
    text = orig.read_text()
    path = _fresh(tmp_path) / "WISDM_ar_v1.1_raw.txt"
    if how[0] in ("nan", "swap", "retype"):
        bad = _text_damage(text, how, pick)
        path.write_text(bad)
    else:
        bad = _apply(text.encode(), how)
        path.write_bytes(bad)
    out = _outcome(lambda: wisdm.parse_records(path, activities=wisdm.V11_ACTIVITIES))
    if how[0] == "nan" and bad != text:
        assert _failed(out)
    if _failed(out):
        return
    assert np.isfinite(out.xyz).all() and set(out.activity.tolist()) <= set(wisdm.V11_ACTIVITIES)
    if how[0] == "swap":
        assert sorted(out.t.tolist()) == sorted(good.t.tolist())
