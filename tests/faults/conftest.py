"""Fixtures of the fault tests: a tiny trained run (with a NIR export) built once, copied per test, and a digest of
a whole file tree (to prove that a refused command changed nothing)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import tomli_w
import torch

from spikeseq.cli import main


def tree_digest(root: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file (``"<dir>"`` for folders, hidden temp files included)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def write_tiny_config(folder: Path, **train) -> Path:
    """A separable 2-class tensor-file dataset and a config that trains on it in about a second."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (48,), generator=g)
    x = torch.randn(48, 6, 3, generator=g) + 2.0 * y[:, None, None]
    torch.save({"train": {"x": x[:40], "y": y[:40]}, "test": {"x": x[40:], "y": y[40:]}}, folder / "d.pt")
    cfg = folder / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "model": {"name": "snn_mlp", "n_in": 3, "n_out": 2, "hidden": 8, "backend": "torch", "dt": 0.01,
                  "tau_mem": 0.02},
        "data": {"name": "tensor_file", "path": str(folder / "d.pt"), "val_fraction": 0.2},
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.02, "threads": 1, **train},
        "export": {"targets": ["nir"], "samples": 4}, "profile": {"tables": ["loihi"], "samples": 4}}))
    return cfg


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A finished run (eval.json, profile.json, export/nir.json + model.nir) of the tiny config."""
    folder = tmp_path_factory.mktemp("trained")
    cfg = write_tiny_config(folder)
    mp = pytest.MonkeyPatch()
    mp.setenv("SPIKESEQ_PROGRESS", "0")
    try:
        assert main(["train", str(cfg), "--out", str(folder / "run")]) == 0
        assert main(["export", str(folder / "run"), "--target", "nir"]) == 0
        assert main(["profile", str(folder / "run")]) == 0
    finally:
        mp.undo()
    return folder


@pytest.fixture
def workdir(trained_run: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the trained run's folder (config, data, run/) for a test to damage."""
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    dst = tmp_path / "w"
    shutil.copytree(trained_run, dst)
    cfg = dst / "c.toml"
    cfg.write_text(cfg.read_text().replace(str(trained_run), str(dst)))
    return dst


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path_factory, monkeypatch) -> Path:
    """Binned-data caches go to a fresh temporary folder (tests check that nothing is cached for bad data)."""
    d = tmp_path_factory.mktemp("spikeseq-cache")
    monkeypatch.setenv("SPIKESEQ_CACHE", str(d))
    return d
