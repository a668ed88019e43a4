"""The continual task trains through the one training loop (``spikeseq.train.loop.fit``): per-task loop runs, a
resume in the middle of a task continues bit for bit (plug-in state in the loop's checkpoints), the loop's
features apply (accumulation), and EWC's penalty is added once per optimizer step."""

from __future__ import annotations

import torch
from torch import nn

from spikeseq.continual.ewc import EWC, EWCConfig
from spikeseq.train import checkpoint, loop
from spikeseq.train import stream as S
from spikeseq.train.tasks import continual as C


class Killed(Exception):
    pass


def _recipe(method: str, **train) -> dict:
    raw = {"task": "continual", "name": f"t_{method}",
           "model": {"name": "snn_mlp", "hidden": [24], "tau_mem": 0.02, "dt": 1e-3},
           "stream": {"name": "digits_split", "steps": 3, "n_tasks": 2},
           "continual": {"method": method, "hlop": {"k_init": 6, "k_inc": 3}, "ewc": {"lam": 10.0}},
           "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "optimizer": "sgd", "momentum": 0.9, "seed": 3,
                     **train}}
    return raw


def test_every_task_is_one_fit_call(tmp_path, monkeypatch):
    calls = []
    real = loop.fit

    def spy(cfg, run, **kw):
        calls.append((run.path.name, kw["model"] is not None, kw["task"].name))
        return real(cfg, run, **kw)

    monkeypatch.setattr(loop, "fit", spy)  # stream.py calls loop.fit
    res = S.run(C.from_dict(_recipe("hlop")), tmp_path / "run")
    assert calls == [("task0", True, "continual"), ("task1", True, "continual")]
    for u in ("task0", "task1"):  # the loop's own per-epoch records, one line per epoch of each task
        lines = (tmp_path / "run" / "tasks" / u / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 2
    assert res["status"] == "finished" and len(res["train_time_s"]) == 2


def _final(path):
    ck = checkpoint.load(path / "checkpoints" / "last.pt")
    return ck["model"], ck["plugin"], ck["R"]


def test_resume_mid_task_is_bitwise_identical(tmp_path):
    cfg = C.from_dict(_recipe("hlop"))
    full = S.run(cfg, tmp_path / "full")

    def kill(unit, step):  # task 1 has 3 steps per epoch (about 180 samples / 64): step 5 is inside epoch 2
        if unit == 1 and step == 5:
            raise Killed

    try:
        S.run(cfg, tmp_path / "part", on_step=kill)
        raise AssertionError("the run was not killed")
    except Killed:
        pass
    ck = checkpoint.load(tmp_path / "part" / "tasks" / "task1" / "checkpoints" / "last.pt")
    assert ck["position"]["epoch"] == 1 and ck["hooks"]["plugin"]["in_task"]  # mid-task, subspaces in flight
    resumed = S.run(cfg, tmp_path / "part", resume=True)
    assert resumed["R"] == full["R"]
    (ma, pa, _), (mb, pb, _) = _final(tmp_path / "full"), _final(tmp_path / "part")
    for k, v in ma.items():
        assert torch.equal(v, mb[k]), k
    for name, sp in pa["spaces"].items():
        assert torch.equal(sp["h"], pb["spaces"][name]["h"]) and torch.equal(sp["m"], pb["spaces"][name]["m"])
    # the uninterrupted run trained: task 1 moved the weights away from the end of task 0
    t0 = checkpoint.load(tmp_path / "full" / "tasks" / "task0" / "checkpoints" / "last.pt")["model"]
    assert any(not torch.equal(v, ma[k]) for k, v in t0.items())


def test_ctrl_c_mid_task_then_resume(tmp_path):
    import os
    import signal

    cfg = C.from_dict(_recipe("ewc", epochs=1))
    full = S.run(cfg, tmp_path / "full")

    def ctrl_c(unit, step):
        if unit == 1 and step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    part = S.run(cfg, tmp_path / "part", on_step=ctrl_c)
    assert part["status"] == "interrupted" and part["unit"] == "task1"
    assert not (tmp_path / "part" / C.RESULT).exists()
    assert checkpoint.load(tmp_path / "part" / "tasks" / "task1" / "checkpoints" / "last.pt")["position"]["step"] == 2
    resumed = S.run(cfg, tmp_path / "part", resume=True)
    assert resumed["R"] == full["R"]
    (ma, _, _), (mb, _, _) = _final(tmp_path / "full"), _final(tmp_path / "part")
    assert all(torch.equal(v, mb[k]) for k, v in ma.items())


def test_accumulation_is_the_loops(tmp_path):
    # two micro-batches of 32 per step = one batch of 64 (mean over the window), up to float summation order
    a = S.run(C.from_dict(_recipe("finetune", epochs=1)), tmp_path / "a")
    b = S.run(C.from_dict(_recipe("finetune", epochs=1, batch_size=32, accumulate=2)), tmp_path / "b")
    (ma, _, _), (mb, _, _) = _final(tmp_path / "a"), _final(tmp_path / "b")
    for k, v in ma.items():
        torch.testing.assert_close(mb[k], v, rtol=0, atol=1e-5, msg=k)
    assert a["R"][0][0] is not None and b["R"][0][0] is not None


def test_ewc_penalty_once_per_step():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ewc = EWC(model, EWCConfig(lam=2.0))
    fisher = {n: torch.full_like(p, 0.5) for n, p in model.named_parameters()}
    theta = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    ewc.anchors.append((fisher, theta))
    ewc.task = 0
    ewc.begin_task(1)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    ewc.before_step()
    for p in model.parameters():  # g + lam * F * (theta - theta*) = 1 + 2 * 0.5 * p
        torch.testing.assert_close(p.grad, 1 + p.detach(), rtol=0, atol=0)


def test_two_processes_match_one(tmp_path):
    """``spikeseq train RECIPE --nproc 2``: every task data-parallel through the loop (gloo), the plug-in's
    Hebbian deltas averaged over ranks; the same weights as one process up to float summation order."""
    import os
    import subprocess
    import sys

    import tomli_w

    raw = _recipe("hlop", epochs=1)
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(raw))
    env = {**os.environ, "SPIKESEQ_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "spikeseq.cli", "train", str(path), "--out", str(tmp_path / "two"),
                           "--nproc", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = S.run(C.from_dict(raw), tmp_path / "one")
    (ma, pa, ra), (mb, pb, rb) = _final(tmp_path / "one"), _final(tmp_path / "two")
    for k, v in ma.items():
        torch.testing.assert_close(mb[k], v, rtol=0, atol=1e-5, msg=k)
    for name, sp in pa["spaces"].items():
        torch.testing.assert_close(pb["spaces"][name]["h"], sp["h"], rtol=0, atol=1e-5, msg=name)
    assert torch.allclose(ra, rb, atol=0.01, equal_nan=True) and one["status"] == "finished"
    ck = checkpoint.load(tmp_path / "two" / "tasks" / "task1" / "checkpoints" / "last.pt")
    assert ck["world_size"] == 2


def test_cli_resume_with_the_saved_recipe(tmp_path, monkeypatch, capsys):
    import tomli_w

    from spikeseq.cli import main

    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(_recipe("finetune", epochs=1)))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out)]) == 0
    first = checkpoint.load(out / "checkpoints" / "last.pt")
    assert main(["train", "--resume", "--out", str(out)]) == 0  # no recipe: the run's config.json
    assert torch.equal(checkpoint.load(out / "checkpoints" / "last.pt")["R"], first["R"])
    assert main(["train", str(path), "--resume", "--out", str(out), "--set", "train.lr=0.2"]) != 0
    assert "the recipe differs from the one saved" in capsys.readouterr().err
