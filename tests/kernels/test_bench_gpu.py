"""``spikeseq bench gpu`` refuses cleanly where there is no GPU: a message naming the reason, exit status 2,
nothing written. (On a GPU it checks and times every Triton kernel; see spikeseq/bench/gpu.py.)"""

from __future__ import annotations

import dataclasses

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


@pytest.mark.parametrize("which", ["lif_scan", "cuba_lif_scan", "alif_scan", "li_scan", "egru_scan", "wkv"])
def test_the_bench_checks_run_on_the_cpu_under_the_triton_interpreter(monkeypatch, which):
    """The checking code of the bench itself (every output, final state and gradient, torch vs triton), run at a
    tiny size on CPU tensors through TRITON_INTERPRET=1: it passes on correct kernels, and a perturbed Triton
    result is caught."""
    pytest.importorskip("triton")
    import importlib
    import sys

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    mods = [m for m in ("spikeseq.kernels.lif._triton_kernels", "spikeseq.kernels.egru._triton_kernels",
                        "spikeseq.kernels.wkv._triton_kernels") if m in sys.modules]
    for m in mods:
        importlib.reload(sys.modules[m])
    from spikeseq.kernels.lif import gpu as lif_gpu

    lif_gpu._ops = None
    try:
        def run_check(dtype, atol):
            if which == "egru_scan":
                return gpu.check_egru(4, 2, 6, dtype, atol, device="cpu")
            if which == "wkv":
                return gpu.check_wkv(5, 2, 4, dtype, atol, device="cpu")
            return gpu.check(which, "subtract", 6, 2, 5, dtype, atol, device="cpu")

        r = run_check(torch.float64, 1e-9)
        assert r["passed"], r
        assert (any(k.startswith("grad.") for k in r["max_abs_error"]) and "grad.x" in r["max_abs_error"]) or \
            "grad.k" in r["max_abs_error"]
        from spikeseq.kernels import dispatch

        b = dispatch.backends(which)["triton"]
        broken = dataclasses.replace(b, fn=lambda *a, **k: _perturbed(b.fn(*a, **k)))
        monkeypatch.setitem(dispatch._REGISTRY[which], "triton", broken)
        assert not run_check(torch.float64, 1e-9)["passed"]
    finally:
        monkeypatch.undo()
        for m in mods:
            importlib.reload(sys.modules[m])
        lif_gpu._ops = None


def _perturbed(res):
    """The Triton result with its final state off by a relative 1e-6 (far above float64 rounding)."""
    y, state = res
    return y, type(state)(*(s * (1 + 1e-6) for s in state))
