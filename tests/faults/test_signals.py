"""Class 5: Ctrl-C at any point, start-up included, ends the command with exit code 130 (never 0, never a
traceback); temporary files of a checkpoint write that was killed are removed on resume."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spikeseq import _signals
from spikeseq.cli import main
from tests.faults.conftest import write_tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_swallowed_by_an_extension_during_start_up_still_exits_130(tmp_path, capsys, monkeypatch):
    """torch's import can swallow the KeyboardInterrupt of a Ctrl-C (seen: exit code 0 and a full training run);
    here the data preparation swallows it the same way."""
    from spikeseq.train import datasets

    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    cfg = write_tiny_config(tmp_path)
    real = datasets.prepare

    def swallowing(*a, **k):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                time.sleep(0)
        except KeyboardInterrupt:
            pass  # what a C extension that clears the pending exception does
        return real(*a, **k)

    monkeypatch.setattr(datasets, "prepare", swallowing)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # stopped before the run directory was created
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # main restored the handler


def test_ctrl_c_inside_an_import_is_held_until_the_import_has_finished(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside torch's import aborted the process once (pybind11 ->
    std::terminate, SIGABRT); the interrupt now waits for the import to end and is raised after it."""
    (tmp_path / "spikeseq_slow_module.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "for _ in range(5000):\n    time.sleep(0)\n"
        "FINISHED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "spikeseq_slow_module", raising=False)
    previous = _signals.install()
    imported = False
    try:
        with pytest.raises(KeyboardInterrupt):
            module = importlib.import_module("spikeseq_slow_module")
            imported = module.FINISHED
            assert _signals.interrupted()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the held interrupt is delivered here
                time.sleep(0.001)
    finally:
        _signals.restore(previous)
    assert imported  # the import ran to its end, untouched by the Ctrl-C
    assert signal.getsignal(signal.SIGINT) is previous


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.5, 2.5])
def test_ctrl_c_at_any_moment_of_a_real_command_exits_130(tmp_path, delay):
    cfg = write_tiny_config(tmp_path, epochs=400)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPIKESEQ_PROGRESS": "0"}
    p = subprocess.Popen([sys.executable, "-m", "spikeseq.cli", "train", str(cfg), "--out", str(tmp_path / "run")],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    # 130, or death by SIGINT (-2), which a shell reports as 130 too: CPython ends that way when an extension
    # swallowed a KeyboardInterrupt during its import (it still exits through spikeseq's handler, see stderr)
    assert p.returncode in (130, -signal.SIGINT), (p.returncode, err)
    assert "Traceback" not in err and "interrupted" in err, err


def test_resume_removes_temporaries_of_a_killed_checkpoint_write(workdir, capsys):
    run = workdir / "run"
    stale = [run / "checkpoints" / ".last.pt.k1ll3d.tmp", run / ".run.json.abc123.tmp",
             run / "checkpoints" / ".best.pt.x9y8z7.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    keep = run / "checkpoints" / "notes.tmp"  # not a temporary of an atomic write: left alone
    keep.write_text("mine")
    assert main(["train", "--resume", "--out", str(run), "--no-eval"]) == 0
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"
