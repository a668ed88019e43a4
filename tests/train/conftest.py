"""Fixtures of the train tests: a tiny, learnable tensor-file dataset written at test time and its config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeseq.train.config import RunConfig, from_dict


def write_tiny_data(path: Path, n_train: int = 120, n_test: int = 40, steps: int = 8, channels: int = 4,
                    classes: int = 3) -> Path:
    """Class c raises channel c of a noisy sequence: separable, so a few steps of training change the weights."""
    g = torch.Generator().manual_seed(1234)

    def split(n: int) -> dict[str, torch.Tensor]:
        y = torch.randint(0, classes, (n,), generator=g)
        x = 0.5 * torch.randn(n, steps, channels, generator=g)
        x += 1.5 * torch.nn.functional.one_hot(y, channels)[:, None, :].float()
        return {"x": x, "y": y}

    torch.save({"train": split(n_train), "test": split(n_test), "classes": [f"c{i}" for i in range(classes)]}, path)
    return path


def tiny_raw(data_path: Path, **train) -> dict:
    return {
        "name": "tiny",
        "model": {"name": "snn_mlp", "n_in": 4, "n_out": 3, "hidden": 16, "tau_mem": 0.01,
                  "backend": "torch"},
        "data": {"name": "tensor_file", "path": str(data_path), "val_fraction": 0.2},
        "train": {"epochs": 3, "batch_size": 16, "lr": 0.01, "seed": 7, "threads": 1, **train},
    }


@pytest.fixture(name="tiny_raw")
def tiny_raw_fixture():
    """The function :func:`tiny_raw` (tests import nothing from conftest)."""
    return tiny_raw


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_data(tmp_path / "tiny.pt")


@pytest.fixture
def tiny_cfg(tiny_data: Path) -> RunConfig:
    return from_dict(tiny_raw(tiny_data))
