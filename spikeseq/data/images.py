"""Static image datasets for the continual-learning recipes of users who have the files: MNIST and CIFAR-100.

Readers of the original file formats (no torchvision):

* **MNIST** (LeCun et al. 1998; ``datasets/mnist.toml``): the four IDX files ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, plain or gzipped (``.gz``,
  as downloaded). IDX: a big-endian header ``0x00 0x00 <type 0x08 = uint8> <ndim>``, ``ndim`` big-endian uint32
  sizes, then the data (Y. LeCun, "THE MNIST DATABASE of handwritten digits", file format section).
* **CIFAR-100** (Krizhevsky 2009; ``datasets/cifar100.toml``): the *binary version*, ``cifar-100-binary/train.bin``
  and ``test.bin``; each record is 1 byte coarse label, 1 byte fine label, 3,072 bytes of pixels (the red, green
  and blue 32 x 32 planes, row-major) (A. Krizhevsky, "The CIFAR-10 and CIFAR-100 datasets", binary version
  section). The binary version is read instead of the pickled Python one so that no pickle is ever loaded.

Both return :class:`ImageSet` (``x`` uint8 ``[N, H, W]`` or ``[N, 3, 32, 32]``, ``y`` int64): a missing file is a
:class:`~spikeseq.errors.DataError` naming it, the data root and ``spikeseq data fetch``; a file of the wrong
size or header is a DataError saying what was expected.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikeseq.errors import DataError

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CIFAR100_DIR = "cifar-100-binary"
CIFAR100_RECORD = 2 + 3 * 32 * 32
#: records per split of the official CIFAR-100 files
CIFAR100_SIZES = {"train": 50_000, "test": 10_000}


@dataclass
class ImageSet:
    """Images ``x`` (uint8, ``[N, H, W]`` or ``[N, C, H, W]``) and labels ``y`` (int64 ``[N]``)."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.y.shape[0])


def _base(name: str, root: str | os.PathLike | None) -> Path:
    from spikeseq.data.manifest import dataset_dir

    return Path(root) if root is not None else dataset_dir(name)


def _check_split(split: str, name: str) -> None:
    if split not in ("train", "test"):
        raise DataError(f"{name} has splits ('train', 'test'), not {split!r}")


def _find(base: Path, stem: str) -> Path | None:
    for p in (base / stem, base / f"{stem}.gz", base / "raw" / stem, base / "raw" / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The uint8 array of an IDX file (plain or ``.gz``); DataError for another header or a truncated file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: unreadable ({e}); download it again (spikeseq data fetch mnist)") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (header {raw[:4].hex()}, expected 000008xx)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: IDX header cut short")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path}: {len(body)} data bytes, the header {shape} says {int(np.prod(shape))}; the file "
                        "is truncated or damaged: download it again")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load_mnist(root: str | os.PathLike | None = None, split: str = "train") -> ImageSet:
    """MNIST ``split`` from ``root`` (default ``<data root>/mnist``): ``x [N, 28, 28]`` uint8, ``y [N]``."""
    _check_split(split, "mnist")
    base = _base("mnist", root)
    stems = MNIST_FILES[split]
    found = [_find(base, s) for s in stems]
    if any(p is None for p in found):
        from spikeseq.data.manifest import missing_files_error

        raise missing_files_error("mnist", [base / f"{s}.gz" for s, p in zip(stems, found) if p is None],
                                  root=root)
    x, y = read_idx(found[0]), read_idx(found[1])
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise DataError(f"mnist {split}: images {x.shape} and labels {y.shape} do not match ([N, 28, 28] and [N])")
    if y.size and int(y.max()) > 9:
        raise DataError(f"mnist {split}: label {int(y.max())} outside 0..9")
    return ImageSet(torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64)), [str(i) for i in range(10)])


def load_cifar100(root: str | os.PathLike | None = None, split: str = "train", *, label: str = "fine",
                  check_size: bool = False) -> ImageSet:
    """CIFAR-100 ``split`` from ``root`` (default ``<data root>/cifar100``, holding ``cifar-100-binary/``):
    ``x [N, 3, 32, 32]`` uint8, ``y [N]`` fine (100) or coarse (20) labels. ``check_size=True`` also requires the
    official record counts (50,000 / 10,000); by default any whole number of records is read (subsets)."""
    _check_split(split, "cifar100")
    if label not in ("fine", "coarse"):
        raise DataError(f"cifar100 label must be 'fine' or 'coarse', got {label!r}")
    base = _base("cifar100", root)
    path = base / CIFAR100_DIR / f"{split}.bin"
    if not path.is_file():
        from spikeseq.data.manifest import missing_files_error

        raise missing_files_error("cifar100", [path], root=root)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR100_RECORD:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {CIFAR100_RECORD}-byte records (1 coarse "
                        "label, 1 fine label, 3,072 pixels); the file is damaged or not the binary version")
    rec = raw.reshape(-1, CIFAR100_RECORD)
    if check_size and rec.shape[0] != CIFAR100_SIZES[split]:
        raise DataError(f"{path}: {rec.shape[0]} records, the official {split} split has {CIFAR100_SIZES[split]}; "
                        "download it again (or check_size=False for a subset)")
    y = rec[:, 1 if label == "fine" else 0].astype(np.int64)
    n_classes = 100 if label == "fine" else 20
    if int(y.max()) >= n_classes:
        raise DataError(f"{path}: {label} label {int(y.max())} outside 0..{n_classes - 1}")
    names = _label_names(base / CIFAR100_DIR / f"{label}_label_names.txt", n_classes)
    x = torch.from_numpy(rec[:, 2:].reshape(-1, 3, 32, 32).copy())
    return ImageSet(x, torch.from_numpy(y), names)


def _label_names(path: Path, n: int) -> list[str]:
    if path.is_file():
        names = [s.strip() for s in path.read_text().splitlines() if s.strip()]
        if len(names) == n:
            return names
    return [str(i) for i in range(n)]
