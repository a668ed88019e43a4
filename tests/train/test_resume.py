"""Resume after a kill (or Ctrl-C) reproduces an uninterrupted run bit for bit (same seed, CPU, one thread)."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from spikeseq.train import checkpoint
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir


class Killed(Exception):
    pass


def _run(tmp_path, name, cfg):
    return RunDir.prepare(tmp_path / name, cfg, argv=["test"])


def _assert_same_run(a: RunDir, b: RunDir):
    ca, cb = checkpoint.load(a.last), checkpoint.load(b.last)
    assert ca["position"] == cb["position"]
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k
    for (ka, va), (_, vb) in zip(ca["optimizer"]["state"].items(), cb["optimizer"]["state"].items()):
        for name in va:
            assert torch.equal(torch.as_tensor(va[name]), torch.as_tensor(vb[name])), (ka, name)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "time_s"} for r in rs]  # noqa: E731
    assert strip(a.read_metrics()) == strip(b.read_metrics())
    assert checkpoint.load(a.best)["best"] == checkpoint.load(b.best)["best"]


def test_resume_after_kill_is_bitwise_identical(tmp_path, tiny_data, tiny_raw):
    cfg = from_dict(tiny_raw(tiny_data, epochs=3))  # 96 training samples / 16 = 6 steps per epoch
    full = _run(tmp_path, "full", cfg)
    assert fit(cfg, full, quiet=True)["step"] == 18

    killed = _run(tmp_path, "killed", cfg)

    def kill_at(step):
        if step == 9:  # in the middle of epoch 2: the last checkpoint is the end of epoch 1
            raise Killed

    with pytest.raises(Killed):
        fit(cfg, killed, on_step=kill_at, quiet=True)
    assert checkpoint.load(killed.last)["position"] == {"epoch": 1, "batch": 0, "step": 6}
    summary = fit(cfg, killed, resume=True, quiet=True)
    assert summary == {**summary, "status": "finished", "step": 18}
    _assert_same_run(full, killed)
    # the uninterrupted run really trained: weights moved from their initial values
    checkpoint.seed_everything(cfg.train.seed)
    from spikeseq.train.loop import build_model
    init = build_model(cfg.model).state_dict()
    assert any(not torch.equal(v, checkpoint.load(full.last)["model"][k]) for k, v in init.items())


def test_ctrl_c_saves_mid_epoch_and_resumes_identically(tmp_path, tiny_data, tiny_raw):
    cfg = from_dict(tiny_raw(tiny_data, epochs=2))
    full = _run(tmp_path, "full", cfg)
    fit(cfg, full, quiet=True)

    part = _run(tmp_path, "part", cfg)

    def ctrl_c(step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    summary = fit(cfg, part, on_step=ctrl_c, quiet=True)
    assert summary["status"] == "interrupted" and summary["step"] == 4
    assert checkpoint.load(part.last)["position"] == {"epoch": 0, "batch": 4, "step": 4}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    fit(cfg, part, resume=True, quiet=True)
    _assert_same_run(full, part)


def test_max_steps_inside_an_epoch_validates_the_model_the_run_ends_with(tmp_path, tiny_data, tiny_raw):
    # 6 steps per epoch: max_steps 8 stops after 2 batches of epoch 2, which is validated like an epoch's end (a
    # run whose last steps were never validated could not pick them as its best), saved where it stopped
    cfg = from_dict(tiny_raw(tiny_data, epochs=5, max_steps=8))
    run = _run(tmp_path, "r", cfg)
    summary = fit(cfg, run, quiet=True)
    assert summary["step"] == 8 and summary["status"] == "finished"
    last = checkpoint.load(run.last)
    assert last["position"] == {"epoch": 1, "batch": 2, "step": 8}
    metrics = run.read_metrics()
    assert [(r["epoch"], r["step"], r.get("partial_epoch_batches")) for r in metrics] == [(1, 6, None), (2, 8, 2)]
    best = checkpoint.load(run.best)
    assert best["position"]["step"] == (8 if best["best"]["epoch"] == 2 else 6)
    # the validation at the stop leaves the random streams as they were: resuming with a larger budget gives the
    # run that never stopped
    longer = from_dict(tiny_raw(tiny_data, epochs=2))
    full = _run(tmp_path, "full", longer)
    fit(longer, full, quiet=True)
    fit(longer, run, resume=True, quiet=True)
    a, b = checkpoint.load(full.last), checkpoint.load(run.last)
    assert a["position"] == b["position"] == {"epoch": 2, "batch": 0, "step": 12}
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
