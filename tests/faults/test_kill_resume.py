"""Class 7: training killed (SIGKILL) at random points, including in the middle of a checkpoint write, resumes
to weights, optimizer state and metrics that are bitwise identical to an uninterrupted run; the temporary file of
the killed write is removed on resume."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import torch

from spikeseq.cli import main
from spikeseq.train import checkpoint
from tests.faults.conftest import write_tiny_config

ROOT = Path(__file__).resolve().parents[2]


def _child(mode: str, n: int, *argv: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPIKESEQ_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "tests.faults._train_child", mode, str(n), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


def _temps(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if p.is_file() and p.name.endswith(".tmp")]


def test_sigkill_at_random_points_resumes_bitwise_identically(tmp_path, monkeypatch):
    cfg = write_tiny_config(tmp_path, epochs=4)  # 32 training samples / batch 8: 4 steps per epoch, 16 in all
    full, run = tmp_path / "full", tmp_path / "run"
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    assert main(["train", str(cfg), "--out", str(full), "--no-eval"]) == 0  # uninterrupted, same thread count

    rng = random.Random(15)
    b = rng.randint(3, 4)  # a checkpoint write after epoch 1 (epoch 2's best.pt or last.pt, or epoch 3's)
    # 1. killed in the middle of a checkpoint write: half a temporary file is left behind, the target intact
    assert _child("save", b, "train", str(cfg), "--out", str(run), "--no-eval") == -signal.SIGKILL
    leftovers = _temps(run)
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    done = checkpoint.load(run / "checkpoints" / "last.pt")["position"]["step"]
    # 2. resumed (the leftover is removed) and killed between two later steps
    c = rng.randint(done + 1, 15)
    assert _child("step", c, "train", "--resume", "--out", str(run), "--no-eval") == -signal.SIGKILL
    assert not leftovers[0].exists()
    # 3. resumed to the end
    assert _child("none", 0, "train", "--resume", "--out", str(run), "--no-eval") == 0
    assert _temps(run) == []

    ca, cb = checkpoint.load(full / "checkpoints" / "last.pt"), checkpoint.load(run / "checkpoints" / "last.pt")
    assert ca["position"] == cb["position"] == {"epoch": 4, "batch": 0, "step": 16}
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k
    for (ka, va), (_, vb) in zip(ca["optimizer"]["state"].items(), cb["optimizer"]["state"].items()):
        for name in va:
            assert torch.equal(torch.as_tensor(va[name]), torch.as_tensor(vb[name])), (ka, name)
    strip = lambda p: [ln.split('"time_s"')[0] for ln in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert strip(full) == strip(run)
    assert checkpoint.load(full / "checkpoints" / "best.pt")["best"] == \
        checkpoint.load(run / "checkpoints" / "best.pt")["best"]
