"""Small copies of real files from ``$SPIKESEQ_DATA`` and fixture writers, for the tests that damage them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tests.conftest import require_path

HAPT = Path("har/hapt/HAPT Data Set")
BASICMOTIONS = Path("har/basicmotions")
BANGLE = Path("har/banglejs_watch/Custom Dataset")
NMNIST = Path("nmnist/NMNIST")


def mini_hapt(data_root: Path, dst: Path, exp: int = 1, user: int = 1, max_rows: int | None = None) -> Path:
    """``dst/HAPT Data Set`` with one real session (acc + gyro files and its rows of labels.txt); ``max_rows``
    keeps only the first rows of the session and the labelled segments inside them."""
    src = require_path(data_root / HAPT / "RawData")
    raw = dst / "HAPT Data Set" / "RawData"
    raw.mkdir(parents=True)
    for kind in ("acc", "gyro"):
        name = f"{kind}_exp{exp:02d}_user{user:02d}.txt"
        if max_rows is None:
            shutil.copy(src / name, raw / name)
        else:
            (raw / name).write_text("".join((src / name).read_text().splitlines(keepends=True)[:max_rows]))
    rows = [ln for ln in (src / "labels.txt").read_text().splitlines()
            if ln.split()[:2] == [str(exp), str(user)] and (max_rows is None or int(ln.split()[4]) <= max_rows)]
    (raw / "labels.txt").write_text("\n".join(rows) + "\n")
    return dst / "HAPT Data Set"


def basicmotions_copy(data_root: Path, dst: Path) -> Path:
    src = require_path(data_root / BASICMOTIONS / "BasicMotions_TRAIN.ts")
    dst.mkdir(parents=True, exist_ok=True)
    for split in ("TRAIN", "TEST"):
        shutil.copy(src.with_name(f"BasicMotions_{split}.ts"), dst / f"BasicMotions_{split}.ts")
    return dst


def bangle_copy(data_root: Path, dst: Path) -> Path:
    src = require_path(data_root / BANGLE)
    shutil.copytree(src, dst / "Custom Dataset")
    return dst / "Custom Dataset"


def nmnist_file(data_root: Path, name: str = "Train/0/00002.bin") -> Path:
    return require_path(data_root / NMNIST / name)


def shd_fixture(path: Path, n: int = 6, seed: int = 0) -> Path:
    """An SHD-layout file (vlen float16 times, sorted within each sample; vlen uint16 units) with ``n`` samples."""
    from spikeseq.data.shd import write_shd

    rng = np.random.default_rng(seed)
    times, units = [], []
    for _ in range(n):
        k = int(rng.integers(5, 40))
        times.append(np.sort(rng.uniform(0.0, 0.9, k)).astype(np.float16))
        units.append(rng.integers(0, 700, k).astype(np.uint16))
    labels = np.arange(n) % 20
    return write_shd(path, times, units, labels, keys=[f"k{i}" for i in range(20)])
