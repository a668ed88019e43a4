"""`spikeseq export / profile / eval` refuse a run whose training did not finish (run.json status), saying what
is missing and how to go on; naming a checkpoint with --checkpoint uses it anyway, with a warning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spikeseq.cli import main
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir
from spikeseq.train.runs import UnfinishedRunWarning
from tests.train.conftest import tiny_raw, write_tiny_data


@pytest.fixture(scope="module")
def _trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unfinished")
    raw = tiny_raw(write_tiny_data(root / "tiny.pt", n_train=40, n_test=12), epochs=1)
    raw["export"] = {"samples": 4, "targets": ["nir"]}
    raw["profile"] = {"samples": 2, "tables": ["loihi"]}
    cfg = from_dict(raw)
    run = RunDir.prepare(root / "run", cfg, argv=["test"])
    fit(cfg, run, quiet=True)   # "finished"; each test sets the status it needs (_set_status)
    return run.path


@pytest.fixture
def run_dir(_trained: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    shutil.copytree(_trained, tmp_path / "run")
    return tmp_path / "run"


def _set_status(run: Path, status: str) -> None:
    meta = json.loads((run / "run.json").read_text())
    meta["status"] = status
    (run / "run.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("status", ["running", "interrupted", "failed"])
@pytest.mark.parametrize("command", ["export", "profile", "eval"])
def test_unfinished_run_is_refused_with_what_is_missing(run_dir, capsys, status, command):
    _set_status(run_dir, status)
    before = sorted(p.name for p in run_dir.rglob("*"))
    assert main([command, str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"is not a finished run: run.json status is '{status}'" in err
    assert "checkpoints/best.pt, checkpoints/last.pt, no eval.json" in err
    assert f"spikeseq train --resume --out {run_dir}" in err and "--checkpoint last" in err
    assert sorted(p.name for p in run_dir.rglob("*")) == before   # nothing written


def test_run_without_any_checkpoint_says_to_train_again(run_dir, capsys):
    _set_status(run_dir, "failed")
    shutil.rmtree(run_dir / "checkpoints")
    assert main(["export", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "it has no checkpoint, no eval.json" in err and "--force" in err and "--resume" not in err


def test_named_checkpoint_exports_an_unfinished_run_with_a_warning(run_dir):
    _set_status(run_dir, "interrupted")
    with pytest.warns(UnfinishedRunWarning, match=r"is not a finished run: run\.json status is 'interrupted'.*using "
                                         r"checkpoints/last\.pt as it is"):
        assert main(["export", str(run_dir), "--checkpoint", "last"]) == 0
    result = json.loads((run_dir / "export" / "nir.json").read_text())
    assert "error" not in result and (run_dir / "export" / "model.nir").is_file()


def test_finished_run_missing_its_checkpoint_names_the_other(run_dir, capsys):
    _set_status(run_dir, "finished")
    (run_dir / "checkpoints" / "best.pt").unlink()
    assert main(["profile", str(run_dir)]) == 2
    assert "checkpoints/best.pt is missing; pass --checkpoint last" in capsys.readouterr().err
    assert main(["profile", str(run_dir), "--checkpoint", "last"]) == 0
    assert json.loads((run_dir / "profile.json").read_text())["checkpoint"] == "last"
