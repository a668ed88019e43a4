"""The fused C++ CPU scans against the functional reference: outputs, final state and all gradients.

Tolerances: float64 1e-10 absolute (only the summation order of the parameter gradients differs); float32 spikes
and membranes must be identical (same operations, no FMA), gradients within 1e-4 absolute.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from spikeseq import surrogate as sg
from spikeseq.functional import ALIFState, CubaLIFState, LIFState, LIState
from spikeseq.kernels.lif import cpu
from tests.kernels._compare import assert_same, run

pytestmark = pytest.mark.native  # skips without a C++ build; fails under SPIKESEQ_REQUIRE_NATIVE=1

D = torch.float64


def _x(T=40, B=3, N=5, dtype=D, scale=1.5):
    return torch.randn(T, B, N, dtype=dtype) * scale + 0.3


@pytest.mark.parametrize("reset,detach", [(r, d) for r in ("subtract", "zero", "none") for d in (False, True)])
def test_lif_matches_reference_all_gradients(reset, detach):
    x = _x()
    state = LIFState(torch.randn(3, 5, dtype=D))
    params = dict(beta=torch.rand(5, dtype=D) * 0.9 + 0.05, v_th=torch.rand(5, dtype=D) + 0.5, reset=reset,
                  detach_reset=detach)
    assert_same("lif_scan", "cpu", x, state, params, atol=1e-10)


@pytest.mark.parametrize("surrogate", [sg.ATan(5.0), sg.Sigmoid(), sg.FastSigmoid(), sg.Triangle(0.5)])
def test_lif_surrogates_scalar_tensor_params_and_rest_state(surrogate):
    x = _x(T=30, B=2, N=4)
    params = dict(beta=torch.tensor(0.8, dtype=D), v_th=torch.tensor(0.9, dtype=D), surrogate=surrogate)
    assert_same("lif_scan", "cpu", x, None, params, atol=1e-10)


def test_lif_python_float_params_and_multi_dim_neurons():
    x = torch.randn(20, 2, 3, 4, dtype=D) * 2
    assert_same("lif_scan", "cpu", x, None, dict(beta=0.9, v_th=1.0), atol=1e-10)
    # per-channel parameter broadcast over the last dims [3, 1]
    params = dict(beta=torch.rand(3, 1, dtype=D) * 0.5 + 0.4, v_th=torch.rand(3, 4, dtype=D) + 0.5)
    assert_same("lif_scan", "cpu", x, LIFState(torch.randn(2, 3, 4, dtype=D)), params, atol=1e-10)


def test_lif_float32_spikes_identical_and_grads_close():
    x = _x(T=100, B=8, N=64, dtype=torch.float32)
    params = dict(beta=torch.full((64,), 0.9), v_th=torch.full((64,), 1.0))
    (out_r, g_r), (out_k, g_k) = run("lif_scan", "torch", x, None, params), run("lif_scan", "cpu", x, None, params)
    assert out_r[0].sum() > 100  # a real number of spikes
    assert torch.equal(out_r[0], out_k[0]) and torch.equal(out_r[1], out_k[1])
    for a, b in zip(g_r, g_k, strict=True):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("reset,detach", [("subtract", False), ("zero", False), ("zero", True), ("none", False)])
def test_cuba_matches_reference_all_gradients(reset, detach):
    x = _x(N=6)
    state = CubaLIFState(torch.randn(3, 6, dtype=D), torch.randn(3, 6, dtype=D))
    params = dict(alpha=torch.rand(6, dtype=D) * 0.9, beta=torch.rand(6, dtype=D) * 0.9 + 0.05,
                  v_th=torch.rand(6, dtype=D) + 0.5, reset=reset, detach_reset=detach)
    assert_same("cuba_lif_scan", "cpu", x, state, params, atol=1e-10)


@pytest.mark.parametrize("learn", list(itertools.product([False, True], repeat=3)))
def test_cuba_each_parameter_gradient_subset(learn):
    x = _x(T=25, N=4)
    vals = dict(alpha=0.6, beta=0.85, v_th=0.8)
    params = {k: (torch.tensor(v, dtype=D) if on else v) for (k, v), on in zip(vals.items(), learn, strict=True)}
    assert_same("cuba_lif_scan", "cpu", x, None, params, atol=1e-10)


def test_li_matches_reference():
    x = _x(T=30, N=7)
    assert_same("li_scan", "cpu", x, LIState(torch.randn(3, 7, dtype=D)),
                dict(beta=torch.rand(7, dtype=D)), atol=1e-10)
    assert_same("li_scan", "cpu", x, None, dict(beta=0.5), atol=1e-10)


def test_single_step_and_long_large_sequence_multithreaded(monkeypatch):
    # T = 1 exercises the t == 0 branch of every reverse loop; the large case the threaded split.
    assert_same("lif_scan", "cpu", _x(T=1), None, dict(beta=torch.tensor(0.7, dtype=D)), atol=1e-12)
    monkeypatch.setattr(cpu, "_ELEMENTS_PER_THREAD", 1000)
    x = _x(T=6, B=4, N=3000)
    params = dict(beta=torch.full((3000,), 0.9, dtype=D), v_th=torch.full((3000,), 1.0, dtype=D))
    assert_same("lif_scan", "cpu", x, None, params, atol=1e-10)
    assert_same("cuba_lif_scan", "cpu", x, None, dict(alpha=0.5, **params), atol=1e-10)


def test_bytes_saved_for_backward_are_v_pre_only():
    x = torch.randn(50, 4, 8, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z, _ = cpu.lif_scan(x, beta=0.9, v_th=1.0)
    big = [t for t in saved if t.numel() >= x.numel()]
    assert len(big) == 1 and big[0].dtype == torch.float32  # v_pre; spikes are recomputed from it
    assert sum(t.numel() for t in saved if t.numel() < x.numel()) <= 2 * 4 * 8  # beta, v_th per element


def test_non_contiguous_input_and_state():
    x = torch.randn(3, 25, 5, dtype=D).transpose(0, 1) * 1.5  # [T, B, N] view with strides of [B, T, N]
    v0 = torch.randn(5, 3, dtype=D).t()
    assert not x.is_contiguous() and not v0.is_contiguous()
    assert_same("lif_scan", "cpu", x, LIFState(v0), dict(beta=torch.tensor(0.85, dtype=D)), atol=1e-10)
    assert_same("li_scan", "cpu", x, LIState(v0), dict(beta=0.5), atol=1e-10)


def test_nn_modules_pick_the_fast_backend_for_float32():
    from spikeseq.kernels import dispatch

    x = torch.randn(5, 2, 3)
    assert dispatch.resolve("lif_scan", "auto", x, None, beta=torch.tensor(0.9), v_th=torch.tensor(1.0)).name in (
        "cpu", "triton")
    assert dispatch.resolve("cuba_lif_scan", "auto", x, None, alpha=0.5, beta=0.9).name in ("cpu", "triton")
    assert dispatch.resolve("li_scan", "auto", x, None, beta=0.9).name in ("cpu", "triton")


@pytest.mark.parametrize("reset,detach", [("subtract", False), ("subtract", True), ("zero", False), ("none", False)])
def test_alif_matches_reference_all_gradients(reset, detach):
    x = _x(T=40, N=5)
    state = ALIFState(torch.randn(3, 5, dtype=D), torch.rand(3, 5, dtype=D))
    params = dict(beta=torch.rand(5, dtype=D) * 0.9 + 0.05, rho=torch.rand(5, dtype=D) * 0.9 + 0.05,
                  v_th=torch.rand(5, dtype=D) + 0.5, adapt=torch.rand(5, dtype=D) * 0.5, reset=reset,
                  detach_reset=detach)
    assert_same("alif_scan", "cpu", x, state, params, atol=1e-10)
    assert_same("alif_scan", "cpu", x, None, dict(beta=0.9, rho=0.95, v_th=1.0, adapt=1.8, reset=reset), atol=1e-10)
