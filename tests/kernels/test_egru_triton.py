"""The Triton EGRU forward (with its PyTorch backward) against the reference, under TRITON_INTERPRET=1 on CPU.

Forward: the Triton kernel; backward: PyTorch operations from the saved gate values. Outputs, final state and all
gradients in float64 within 1e-12 (summation order only).
"""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

pytest.importorskip("triton", reason="triton not installed (pip install 'spikeseq[gpu]')")

from spikeseq.kernels import dispatch
from tests.kernels._egru_compare import assert_same, make

_MOD = "spikeseq.kernels.egru._triton_kernels"


@pytest.fixture(scope="module", autouse=True)
def interpreter():
    mp = pytest.MonkeyPatch()
    mp.setenv("TRITON_INTERPRET", "1")
    if _MOD in sys.modules:
        importlib.reload(sys.modules[_MOD])
    yield
    mp.undo()
    if _MOD in sys.modules:
        importlib.reload(sys.modules[_MOD])


@pytest.mark.parametrize("case", [dict(T=4, B=2, I=3, H=5), dict(T=3, B=2, I=4, H=40, weight_density=0.3),
                                  dict(T=3, B=1, I=2, H=3, state=False, theta_scalar=True)])
def test_float64_matches_reference(case):
    x, st, p = make(**case)
    out = assert_same("triton", x, st, p, atol=1e-12)
    if out[1].numel() > 4:
        assert 0 < float(out[1].detach().mean()) < 1


def test_zoneout_and_eps():
    x, st, p = make(T=4, B=2, I=3, H=6, seed=3)
    mask = torch.rand(4, 2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert_same("triton", x, st, p, atol=1e-12, zoneout=mask, eps=3.6)


def test_float32_and_auto_picks_triton_under_the_interpreter():
    x, st, p = make(T=4, B=2, I=3, H=8, dtype=torch.float32, seed=2)
    assert_same("triton", x, st, p, atol=2e-5)
    assert dispatch.resolve("egru_scan", "auto", x, st, **p).name != "triton"      # opt-in until GPU-validated
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPIKESEQ_TRITON", "1")
        assert dispatch.resolve("egru_scan", "auto", x, st, **p).name == "triton"
