"""LMU memory maths: Legendre A/B, ZOH vs scipy, recurrent vs parallel (FFT) memory, the delay property."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import cont2discrete

from spikeseq.errors import NonFiniteError, ParameterError, ShapeError
from spikeseq.functional.lmu import (
    LMUState,
    legendre_matrices,
    lmu_impulse_response,
    lmu_matrices,
    lmu_memory_fft,
    lmu_memory_scan,
    lmu_memory_step,
    zoh,
)
from spikeseq.nn import LMUMemory


def test_legendre_matrices_order3_known_answer():
    a, b = legendre_matrices(3, theta=2.0)
    # A_ij = (2i+1) * (-1 if i<j else (-1)^(i-j+1)), B_i = (2i+1)(-1)^i, both / theta
    a_ref = torch.tensor([[-1.0, -1.0, -1.0], [3.0, -3.0, -3.0], [-5.0, 5.0, -5.0]], dtype=torch.float64) / 2
    b_ref = torch.tensor([[1.0], [-3.0], [5.0]], dtype=torch.float64) / 2
    assert torch.equal(a, a_ref)
    assert torch.equal(b, b_ref)


def test_order1_zoh_is_exponential_decay():
    theta = 5.0
    a_bar, b_bar = lmu_matrices(1, theta, dtype=torch.float64)
    assert a_bar.item() == pytest.approx(math.exp(-1 / theta), rel=1e-14)
    assert b_bar.item() == pytest.approx(1 - math.exp(-1 / theta), rel=1e-14)


@pytest.mark.parametrize("order,theta,dt", [(1, 1.0, 1.0), (4, 7.0, 1.0), (12, 128.0, 1.0), (6, 0.5, 0.01),
                                            (64, 128.0, 1.0)])
def test_zoh_matches_scipy(order, theta, dt):
    a, b = legendre_matrices(order, theta)
    ad, bd = zoh(a, b, dt)
    c, d = np.ones((1, order)), np.zeros((1, 1))
    ad_ref, bd_ref, *_ = cont2discrete((a.numpy(), b.numpy(), c, d), dt, method="zoh")
    np.testing.assert_allclose(ad.numpy(), ad_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bd.numpy(), bd_ref, rtol=1e-10, atol=1e-12)
    a32, b32 = lmu_matrices(order, theta, dt)
    assert a32.dtype == torch.float32 and b32.shape == (order,)
    np.testing.assert_allclose(b32.numpy(), bd_ref[:, 0], rtol=1e-6, atol=1e-7)


def test_impulse_response_is_matrix_powers():
    a, b = lmu_matrices(5, 9.0, dtype=torch.float64)
    h = lmu_impulse_response(a, b, 7)
    for k in (0, 1, 6):
        torch.testing.assert_close(h[k], torch.linalg.matrix_power(a, k) @ b, rtol=1e-12, atol=1e-14)


def test_step_matches_equation():
    a, b = lmu_matrices(3, 4.0)
    u = torch.tensor([[0.5, -1.0]])
    m0 = torch.randn(1, 2, 3)
    m, st = lmu_memory_step(u, LMUState(m0), a_bar=a, b_bar=b)
    expected = torch.einsum("ij,bnj->bni", a, m0) + u.unsqueeze(-1) * b
    torch.testing.assert_close(m, expected, rtol=1e-6, atol=1e-7)
    assert st.m is m


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_parallel_equals_recurrent(dtype, tol):
    torch.manual_seed(0)
    a, b = lmu_matrices(16, 40.0, dtype=dtype)
    u = torch.randn(128, 3, 5, dtype=dtype, requires_grad=True)
    m_rec, s_rec = lmu_memory_scan(u, a_bar=a, b_bar=b)
    m_fft, s_fft = lmu_memory_fft(u, a_bar=a, b_bar=b)
    torch.testing.assert_close(m_fft, m_rec, rtol=0, atol=tol)
    torch.testing.assert_close(s_fft.m, s_rec.m, rtol=0, atol=tol)
    w = torch.randn_like(m_rec)
    (g_rec,) = torch.autograd.grad((m_rec * w).sum(), u)
    (g_fft,) = torch.autograd.grad((m_fft * w).sum(), u)
    torch.testing.assert_close(g_fft, g_rec, rtol=0, atol=10 * tol)


def test_parallel_and_recurrent_forms_accept_an_empty_batch():
    # torch.nn.GRU returns empty outputs for a batch of 0; MKL's FFT refuses zero-size transforms, so the parallel
    # form must not call it (it raised "DFTI ERROR: Inconsistent configuration parameters")
    a, b = lmu_matrices(4, 10.0, dtype=torch.float64)
    u = torch.randn(6, 0, 3, dtype=torch.float64, requires_grad=True)
    for form in (lmu_memory_fft, lmu_memory_scan):
        m, st = form(u, a_bar=a, b_bar=b)
        assert m.shape == (6, 0, 3, 4) and st.m.shape == (0, 3, 4)
        (g,) = torch.autograd.grad(m.sum(), u, allow_unused=True, materialize_grads=True)
        assert g.shape == u.shape


def test_parallel_with_initial_state_continues_the_stream():
    torch.manual_seed(1)
    a, b = lmu_matrices(8, 20.0, dtype=torch.float64)
    u = torch.randn(40, 2, 3, dtype=torch.float64)
    m_all, _ = lmu_memory_scan(u, a_bar=a, b_bar=b)
    m1, s1 = lmu_memory_fft(u[:15], a_bar=a, b_bar=b)
    m2, s2 = lmu_memory_fft(u[15:], s1, a_bar=a, b_bar=b)
    torch.testing.assert_close(torch.cat([m1, m2]), m_all, rtol=0, atol=1e-12)
    torch.testing.assert_close(s2.m, m_all[-1], rtol=0, atol=1e-12)


def _shifted_legendre(i: int, r: float) -> float:
    """P~_i(r) = (-1)^i sum_j C(i,j) C(i+j,j) (-r)^j (Voelker et al. 2019, eq. 3)."""
    return (-1) ** i * sum(math.comb(i, j) * math.comb(i + j, j) * (-r) ** j for j in range(i + 1))


def test_memory_represents_the_delayed_window():
    """The LMU property: u(t - theta') ~= sum_i P~_i(theta'/theta) m_i(t) for a slow input."""
    order, theta = 12, 50.0
    a, b = lmu_matrices(order, theta, dtype=torch.float64)
    t = torch.arange(400, dtype=torch.float64)
    u = torch.sin(2 * math.pi * t / 100.0).view(-1, 1, 1)
    m, _ = lmu_memory_scan(u, a_bar=a, b_bar=b)
    for frac in (0.0, 0.5, 1.0):
        dec = torch.tensor([_shifted_legendre(i, frac) for i in range(order)], dtype=torch.float64)
        est = m[200:, 0, 0] @ dec
        delay = round(frac * theta)
        true = u[200 - delay:400 - delay, 0, 0]
        assert (est - true).abs().max().item() < 0.05, frac


def test_module_modes_agree_and_buffers_are_frozen():
    mem_fft = LMUMemory(6, 16.0, mode="fft")
    mem_rec = LMUMemory(6, 16.0, mode="recurrent")
    u = torch.randn(32, 4, 2)
    torch.testing.assert_close(mem_fft(u)[0], mem_rec(u)[0], rtol=0, atol=1e-5)
    assert list(mem_fft.parameters()) == []
    # "auto" streams one step at a time with the recurrence and gives the same memory
    mem = LMUMemory(6, 16.0)
    st, rows = None, []
    for k in range(32):
        y, st = mem(u[k:k + 1], st)
        rows.append(y)
    torch.testing.assert_close(torch.cat(rows), mem(u)[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("order,theta,dt", [(0, 7.0, 1.0), (-2, 7.0, 1.0), (2.5, 7.0, 1.0), (True, 7.0, 1.0),
                                            (4, 0.0, 1.0), (4, -3.0, 1.0), (4, float("nan"), 1.0),
                                            (4, 0.5, 1.0), (4, 7.0, 0.0)])
def test_bad_order_theta_dt(order, theta, dt):
    with pytest.raises(ParameterError):
        lmu_matrices(order, theta, dt)
    with pytest.raises(ParameterError):
        LMUMemory(order, theta, dt=dt)


def test_bad_inputs():
    a, b = lmu_matrices(4, 7.0)
    with pytest.raises(ShapeError):
        lmu_memory_scan(torch.zeros(5, 2), a_bar=a, b_bar=b)  # no channel axis
    with pytest.raises(ShapeError):
        lmu_memory_step(torch.zeros(2, 3), LMUState(torch.zeros(2, 3, 5)), a_bar=a, b_bar=b)
    u = torch.zeros(10, 2, 3)
    u[4, 1, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        lmu_memory_scan(u, a_bar=a, b_bar=b)
    with pytest.raises(NonFiniteError):
        lmu_memory_fft(u, a_bar=a, b_bar=b)
    with pytest.raises(ParameterError):
        LMUMemory(4, 7.0, mode="parallel")
