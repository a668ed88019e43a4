"""``spikeseq.train.loop.fit`` (the Python API) records the run's status in ``run.json`` as ``spikeseq train``
does, so that a run trained from Python is recognised as finished by eval / export / profile, and one that stopped
(Ctrl-C, an escaped KeyboardInterrupt, an error) as unfinished. Before, fit left ``"running"`` whatever happened:
a completed run was refused by ``spikeseq eval`` and an interrupted one could not be told from a live one."""

from __future__ import annotations

import json
import os
import signal

import pytest

from spikeseq.errors import ConfigError
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir
from spikeseq.train.runs import load_run


def _prepared(tmp_path, tiny_data, tiny_raw, epochs=1):
    cfg = from_dict(tiny_raw(tiny_data, epochs=epochs))  # 6 optimizer steps per epoch
    return cfg, RunDir.prepare(tmp_path / "run", cfg, argv=["test"])


def _meta(run: RunDir) -> dict:
    return json.loads(run.meta.read_text())


def test_a_completed_fit_is_a_finished_run(tmp_path, tiny_data, tiny_raw):
    cfg, run = _prepared(tmp_path, tiny_data, tiny_raw)
    assert _meta(run)["status"] == "running"
    summary = fit(cfg, run, quiet=True)
    meta = _meta(run)
    assert meta["status"] == "finished" and meta["step"] == summary["step"] == 6
    assert meta["best"]["epoch"] == 1 and meta["seed"] == 7   # the rest of run.json is kept
    lr = load_run(run.path, None)   # what eval / export / profile load without --checkpoint: no ConfigError
    assert lr.which == "best"


def test_ctrl_c_inside_fit_is_an_interrupted_run(tmp_path, tiny_data, tiny_raw):
    cfg, run = _prepared(tmp_path, tiny_data, tiny_raw, epochs=2)

    def ctrl_c(step):
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    summary = fit(cfg, run, on_step=ctrl_c, quiet=True)
    meta = _meta(run)
    assert summary["status"] == meta["status"] == "interrupted" and meta["step"] == 1
    with pytest.raises(ConfigError, match=r"is not a finished run: run\.json status is 'interrupted'.*--resume"):
        load_run(run.path, None)
    # resuming from Python finishes it
    fit(cfg, run, resume=True, quiet=True)
    assert _meta(run)["status"] == "finished"
    load_run(run.path, None)


@pytest.mark.parametrize("error,status", [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_an_exception_out_of_fit_leaves_an_unfinished_run(tmp_path, tiny_data, tiny_raw, error, status):
    cfg, run = _prepared(tmp_path, tiny_data, tiny_raw)

    def boom(step):
        raise error("stopped by the test")

    with pytest.raises(error, match="stopped by the test"):   # the original exception, not a status error
        fit(cfg, run, on_step=boom, quiet=True)
    assert _meta(run)["status"] == status
    with pytest.raises(ConfigError, match=f"run.json status is '{status}'"):
        load_run(run.path, None)


def test_a_finished_run_trained_again_is_running_until_it_ends(tmp_path, tiny_data, tiny_raw):
    cfg, run = _prepared(tmp_path, tiny_data, tiny_raw)
    fit(cfg, run, quiet=True)
    seen = []
    fit(cfg, run, on_step=lambda step: seen.append(_meta(run)["status"]), quiet=True)
    assert seen == ["running"] * 6 and _meta(run)["status"] == "finished"


def test_a_folder_without_run_json_gets_no_status(tmp_path, tiny_data, tiny_raw):
    """The continual stream trains each task into a plain folder: fit must not turn it into a run directory."""
    cfg = from_dict(tiny_raw(tiny_data, epochs=1))
    run = RunDir(tmp_path / "task0")
    run.ckpt_dir.mkdir(parents=True)
    assert fit(cfg, run, quiet=True)["status"] == "finished"
    assert not run.meta.exists() and run.last.is_file()


def test_a_corrupt_run_json_is_refused_before_training(tmp_path, tiny_data, tiny_raw):
    cfg, run = _prepared(tmp_path, tiny_data, tiny_raw)
    run.meta.write_text("{not json")
    with pytest.raises(ConfigError, match=r"run\.json is corrupt.*nothing was changed"):
        fit(cfg, run, quiet=True)
    assert run.meta.read_text() == "{not json" and not any(run.ckpt_dir.iterdir())
