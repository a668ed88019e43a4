"""``spikeseq bench gpu`` refuses cleanly where there is no GPU: a message naming the reason, exit status 2,
nothing written. (On a GPU it checks and times every Triton kernel; see spikeseq/bench/gpu.py.)"""

from __future__ import annotations

import pytest
import torch

from spikeseq.bench import gpu
from spikeseq.cli import main


def test_refuses_without_a_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "results" / "gpu"
    assert main(["bench", "gpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "Nothing was written" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_refusal_names_a_missing_triton(monkeypatch):
    import importlib.util

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "triton" else real(name, *a))
    assert "triton is not installed" in gpu.refusal()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the command refuses without one)")
def test_checks_pass_at_a_small_size_on_the_gpu(tmp_path):
    assert main(["bench", "gpu", "--T", "20", "--B", "4", "--N", "300", "--reps", "2", "--no-compile",
                 "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("bench_gpu_*.json"))) == 1
