"""Class 1: a command that fails or is refused loses or changes no existing file (validate first, then write
through a temporary file + rename)."""

from __future__ import annotations

import json

import pytest
import torch

from spikeseq.cli import main
from spikeseq.errors import ConfigError
from spikeseq.train import checkpoint
from spikeseq.train.cmd_export import export_run
from tests.faults.conftest import tree_digest


def _err(capsys) -> str:
    return capsys.readouterr().err


def test_eval_on_a_corrupt_run_json_changes_nothing(workdir, capsys):
    run = workdir / "run"
    (run / "run.json").write_text('{"status": "finished", "seed"')  # cut by a crash
    before = tree_digest(workdir)
    assert main(["eval", str(run)]) == 2
    err = _err(capsys)
    assert f"{run / 'run.json'} is corrupt" in err and "nothing was changed" in err
    assert tree_digest(workdir) == before


@pytest.mark.parametrize("content", ["[1, 2]", "\xff\xfe not json"])
def test_every_command_refuses_a_run_json_that_is_not_an_object(workdir, capsys, content):
    run = workdir / "run"
    (run / "run.json").write_bytes(content.encode("latin-1"))
    before = tree_digest(workdir)
    for argv in (["eval", str(run)], ["profile", str(run)], ["export", str(run)], ["report", str(run)],
                 ["train", "--resume", "--out", str(run)]):
        assert main(argv) == 2, argv
        assert "run.json is corrupt" in _err(capsys), argv
        assert tree_digest(workdir) == before, argv


def test_resume_on_a_truncated_last_pt_does_not_rewrite_run_json(workdir, capsys):
    run = workdir / "run"
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    before = tree_digest(workdir)
    assert main(["train", "--resume", "--out", str(run)]) == 2
    assert f"checkpoint {last} is unreadable" in _err(capsys)
    assert tree_digest(workdir) == before  # run.json keeps status "finished" and no "resumed" count


def test_export_with_invalid_samples_keeps_the_existing_export(workdir, capsys):
    run = workdir / "run"
    before = tree_digest(workdir)
    for bad in ("-3", "0", "x"):
        with pytest.raises(SystemExit) as e:
            main(["export", str(run), "--target", "nir", "--samples", bad])
        assert e.value.code == 2
        assert "argument --samples: must be an integer >= 1" in _err(capsys)
        assert tree_digest(workdir) == before
    for bad in (-3, 0):
        with pytest.raises(ConfigError, match="--samples must be an integer >= 1"):
            export_run(run, ["nir"], samples=bad)
        assert tree_digest(workdir) == before


def test_force_keeps_the_old_run_when_the_new_one_cannot_be_written(workdir, monkeypatch):
    from spikeseq.train import rundir

    run = workdir / "run"
    before = tree_digest(workdir)

    def broken():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir, "versions", broken)
    assert main(["train", str(workdir / "c.toml"), "--out", str(run), "--force"]) == 2
    assert tree_digest(workdir) == before  # the old run is deleted only once the new one is complete


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    from spikeseq import _atomic

    target = tmp_path / "last.pt"
    checkpoint.save(target, {"model": {"w": torch.ones(2)}})
    good = target.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises, the old file must survive
        checkpoint.save(target, {"model": lambda: None})
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    with pytest.raises(KeyboardInterrupt), _atomic.atomic_open(target, "wb") as f:
        f.write(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_atomic_writer_errors_name_the_path_and_the_fix(tmp_path):
    from spikeseq import _atomic
    from spikeseq.errors import OutputError

    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OutputError, match=r"blocker is a file, not a directory; remove or rename that file"):
        _atomic.write_text(tmp_path / "blocker" / "sub" / "eval.json", "{}")
    (tmp_path / "adir").mkdir()
    with pytest.raises(OutputError, match=r"adir: it is a directory"):
        _atomic.write_text(tmp_path / "adir", "{}")
    assert isinstance(OutputError("x"), OSError)  # callers that catch OSError keep working


def test_a_folder_that_cannot_be_created_is_named_as_a_folder(tmp_path):
    from spikeseq import _atomic
    from spikeseq.errors import OutputError

    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OutputError) as e:
        _atomic.ensure_dir(tmp_path / "blocker" / "sub")
    assert str(e.value).startswith(f"cannot create the folder {tmp_path / 'blocker' / 'sub'}: ")  # was ".../sub/x"
    with pytest.raises(OutputError, match=r"it is a directory"):
        _atomic.check_writable(tmp_path)  # refused up front (spikeseq bench --json)
    _atomic.check_writable(tmp_path / "new" / "out.json")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == []  # the probe file is gone


def test_eval_json_is_replaced_only_after_a_successful_evaluation(workdir, capsys, monkeypatch):
    from spikeseq.train import runs

    run = workdir / "run"
    before = tree_digest(workdir)

    def broken(*a, **k):
        raise ConfigError("dataset vanished")

    monkeypatch.setattr(runs, "spike_stats", broken)
    assert main(["eval", str(run)]) == 2
    assert tree_digest(workdir) == before
    assert json.loads((run / "eval.json").read_text())["test"]["n"] == 8


def test_new_run_directory_appears_complete_and_keeps_a_symlinked_folder(tmp_path):
    from spikeseq.train.config import load_config
    from spikeseq.train.rundir import RunDir
    from tests.faults.conftest import write_tiny_config

    cfg = load_config(write_tiny_config(tmp_path))
    (tmp_path / "disk").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "disk")
    run = RunDir.prepare(tmp_path / "link", cfg, argv=["test"])
    assert (tmp_path / "link").is_symlink() and (tmp_path / "disk" / "run.json").is_file()
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["checkpoints", "config.json", "config.toml",
                                                                     "run.json"]
    assert run.read_meta()["status"] == "running"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind
