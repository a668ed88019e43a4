"""Run directories: refusal of occupied outputs, atomic checkpoints, metrics truncation on resume."""

from __future__ import annotations

import errno
import json

import pytest
import torch

from spikeseq.errors import ConfigError
from spikeseq.train import checkpoint
from spikeseq.train.rundir import RunDir


def test_prepare_writes_config_versions_seed(tmp_path, tiny_cfg):
    run = RunDir.prepare(tmp_path / "r", tiny_cfg, argv=["spikeseq", "train", "x.toml"])
    meta = json.loads(run.meta.read_text())
    assert meta["seed"] == 7 and meta["status"] == "running" and meta["command"] == ["spikeseq", "train", "x.toml"]
    assert meta["versions"]["torch"] == torch.__version__
    assert json.loads(run.config_json.read_text())["train"]["seed"] == 7
    assert (run.path / "config.toml").is_file()


def test_occupied_output_is_refused_unless_force_or_resume(tmp_path, tiny_cfg):
    RunDir.prepare(tmp_path / "r", tiny_cfg)
    with pytest.raises(ConfigError, match=r"already holds a run; pass --resume .* or --force"):
        RunDir.prepare(tmp_path / "r", tiny_cfg)
    with pytest.raises(ConfigError, match=r"no checkpoints/last\.pt yet"):
        RunDir.prepare(tmp_path / "r", tiny_cfg, resume=True)
    (tmp_path / "r" / "junk").write_text("x")
    RunDir.prepare(tmp_path / "r", tiny_cfg, force=True)
    assert not (tmp_path / "r" / "junk").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    for kw in ({}, {"force": True}):
        with pytest.raises(ConfigError, match="non-empty directory that is not a spikeseq run"):
            RunDir.prepare(other, tiny_cfg, **kw)
    assert (other / "thesis.tex").read_text() == "precious"
    with pytest.raises(ConfigError, match="not a spikeseq run directory"):
        RunDir.open(other)


def test_failed_checkpoint_write_keeps_previous_last(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save(path, {"w": torch.arange(4.0)})

    def disk_full(obj, f):
        f.write(b"\x80\x02partial")  # some bytes reach the temporary file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.save(path, {"w": torch.zeros(4)})
    monkeypatch.undo()
    assert torch.equal(checkpoint.load(path)["w"], torch.arange(4.0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary file left behind


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    p = tmp_path / "last.pt"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="is unreadable"):
        checkpoint.load(p)


def test_truncate_metrics_and_cut_lines(tmp_path, tiny_cfg):
    run = RunDir.prepare(tmp_path / "r", tiny_cfg)
    for e in (1, 2, 3):
        run.append_metrics({"epoch": e})
    with open(run.metrics, "a") as f:
        f.write('{"epoch": 4, "trunc')  # a line cut by a kill
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3]
    run.truncate_metrics(2)
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]
