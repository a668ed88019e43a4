"""Permuted MNIST and split CIFAR-100 streams on tiny local fixtures written in the original file formats (IDX,
gzipped; CIFAR-100 binary records), their recipes end to end, and the errors for missing or damaged files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeseq.data import images, registry, streams
from spikeseq.errors import DataError
from spikeseq.train import stream as S
from spikeseq.train.tasks import continual as C

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hlop"


def _idx(path: Path, arr: np.ndarray) -> None:
    head = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_root(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "mnist"
    root.mkdir()
    for split, n in (("train", 40), ("t10k", 20)):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 28, 28))
        x[:, 2 + y, 3] = 255  # a class-dependent bright pixel: learnable
        _idx(root / f"{split}-images-idx3-ubyte.gz", x)
        _idx(root / f"{split}-labels-idx1-ubyte.gz", y)
    return root


@pytest.fixture
def cifar_root(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    d = tmp_path / "cifar100" / images.CIFAR100_DIR
    d.mkdir(parents=True)
    for split, per in (("train", 3), ("test", 2)):
        fine = np.repeat(np.arange(20), per)
        rec = np.zeros((fine.size, images.CIFAR100_RECORD), np.uint8)
        rec[:, 0] = fine // 5
        rec[:, 1] = fine
        rec[:, 2:] = rng.integers(0, 256, (fine.size, 3072))
        rec.tofile(d / f"{split}.bin")
    return tmp_path / "cifar100"


def test_idx_reader_known_answer(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _idx(tmp_path / "a.gz", a)
    assert np.array_equal(images.read_idx(tmp_path / "a.gz"), a)
    raw = tmp_path / "b"
    raw.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([7, 8, 9]))  # plain (not gzipped)
    assert images.read_idx(raw).tolist() == [7, 8, 9]


def test_pmnist_stream(mnist_root):
    s = streams.build("pmnist", root=str(mnist_root), steps=3, n_tasks=3)
    assert s.setting == "domain" and s.sample_shape == (3, 784) and [len(t.train_y) for t in s.tasks] == [40] * 3
    x0, x1 = s.tasks[0].train_x, s.tasks[1].train_x
    assert x0.stride(1) == 0  # the time axis is a view, not 3 copies
    assert float(x0.max()) == 1.0 and torch.equal(x0[:, 0], x0[:, 2])
    # task 0 unpermuted (row 2 + y, column 3 is bright), task 1 the same pixels permuted
    y = s.tasks[0].train_y
    assert torch.all(x0[torch.arange(40), 0, (2 + y) * 28 + 3] == 1.0)
    assert torch.equal(x0.sort(-1).values, x1.sort(-1).values) and not torch.equal(x0, x1)
    assert len(streams.pmnist(mnist_root, steps=1, n_tasks=2, max_train=7).tasks[1].train_y) == 7


def test_cifar100_split_stream(cifar_root):
    s = streams.build("cifar100_split", root=str(cifar_root), steps=2, n_tasks=2)
    assert s.setting == "task" and s.n_outputs == 20 and s.sample_shape == (2, 3, 32, 32)
    assert [t.classes for t in s.tasks] == [list(range(10)), list(range(10, 20))]
    assert s.tasks[1].train_y.tolist() == list(np.repeat(np.arange(10), 3)) and len(s.tasks[1].test_y) == 20
    ds = registry.load("cifar100", "test", cifar_root, label="coarse")
    assert ds.x.dtype == torch.uint8 and ds.y.tolist() == list(np.repeat(np.arange(20), 2) // 5)


@pytest.mark.parametrize("recipe,method", [("pmnist", "hlop"), ("pmnist", "multitask"), ("cifar100_split", "gpm")])
def test_recipes_run_on_the_fixture(tmp_path, mnist_root, cifar_root, recipe, method):
    root = mnist_root if recipe == "pmnist" else cifar_root
    ov = [f"continual.method={method}", f"stream.root={str(root)!r}", "stream.n_tasks=2", "stream.steps=2",
          "model.hidden=[16,16]", "train.epochs=1", "train.batch_size=16"]
    if method != "multitask":
        m = method
        ov += [f'continual.{m}.k_init={{"layers.1"=4,"layers.3"=4,"layers.5"=4}}',
               f'continual.{m}.k_inc={{"layers.1"=2,"layers.3"=2,"layers.5"=2}}']
    cfg = C.load(EXAMPLES / f"{recipe}.toml", ov)
    res = S.run(cfg, tmp_path / "run")
    assert res["status"] == "finished" and len(res["R"]) == 2 and 0.0 <= res["acc"] <= 1.0
    if method != "multitask":
        n_in = 784 if recipe == "pmnist" else 3072  # stored lateral weights / bases: sum k n
        assert res["memory"] == {"layers.1": 6, "layers.3": 6, "layers.5": 6, "floats": 6 * n_in + 6 * 16 + 6 * 16}


def test_missing_and_damaged_files(tmp_path, mnist_root, cifar_root):
    with pytest.raises(DataError, match=r"mnist: missing .*t10k-labels-idx1-ubyte.gz.*spikeseq data fetch mnist"):
        (mnist_root / "t10k-labels-idx1-ubyte.gz").unlink()
        images.load_mnist(mnist_root, "test")
    with pytest.raises(DataError, match=r"cifar100: missing .*train.bin.*spikeseq data fetch cifar100"):
        images.load_cifar100(tmp_path / "nowhere", "train")
    bad = mnist_root / "train-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(bytes([0, 0, 0x0D, 3]) + struct.pack(">3I", 1, 28, 28))  # floats, not bytes
    with pytest.raises(DataError, match="not an IDX file of unsigned bytes"):
        images.load_mnist(mnist_root, "train")
    _idx(bad, np.zeros((40, 28, 28)))
    with gzip.open(bad, "rb") as f:
        cut = f.read()[:-5]
    with gzip.open(bad, "wb") as f:
        f.write(cut)
    with pytest.raises(DataError, match="truncated or damaged"):
        images.load_mnist(mnist_root, "train")
    path = cifar_root / images.CIFAR100_DIR / "test.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="whole number of 3074-byte records"):
        images.load_cifar100(cifar_root, "test")
    with pytest.raises(DataError, match="official train split has 50000"):
        images.load_cifar100(cifar_root, "train", check_size=True)
