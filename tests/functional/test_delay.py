"""Synaptic delays (functional): Gaussian kernel, gradients, integer path, known answers, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional import delay as fd


def _gauss_float64(delay: np.ndarray, sigma: float, max_delay: int, offset: float) -> np.ndarray:
    """Independent construction: explicit loops in float64, straight from the formula."""
    out, n = delay.shape
    g = np.zeros((out, n, max_delay + 1))
    s = abs(sigma) + offset
    for j in range(out):
        for i in range(n):
            d = min(max(delay[j, i], 0.0), max_delay)
            e = [math.exp(-0.5 * ((k - d) / s) ** 2) for k in range(max_delay + 1)]
            tot = sum(e)
            g[j, i] = [v / tot for v in e]
    return g


@pytest.mark.parametrize("sigma", [6.0, 1.3, 0.23, 0.0])
def test_gaussian_taps_match_float64_construction(sigma):
    d = torch.rand(5, 7, dtype=torch.float64) * 14 - 1  # includes out-of-range positions (clamped)
    got = fd.gaussian_taps(d.float(), sigma, 12)
    want = _gauss_float64(d.float().double().numpy(), sigma, 12, fd.SIGMA_OFFSET)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=2e-7)
    np.testing.assert_allclose(got.sum(-1).numpy(), 1.0, atol=1e-6)
    w = torch.randn(5, 7)
    np.testing.assert_allclose(fd.gaussian_kernel(w, d.float(), sigma, 12).numpy(),
                               w.numpy()[..., None] * want, rtol=0, atol=1e-6)


def test_gaussian_path_equals_explicit_convolution():
    """delay_gaussian(x) == sum_k kernel[:, :, k] x[t - k], written as an explicit loop in float64."""
    t, b, n, o, dmax = 20, 2, 3, 4, 5
    x = torch.rand(t, b, n, dtype=torch.float64)
    w, d = torch.randn(o, n, dtype=torch.float64), torch.rand(o, n, dtype=torch.float64) * dmax
    y, _ = fd.delay_gaussian(x, weight=w, delay=d, sigma=1.7, max_delay=dmax)
    kern = torch.from_numpy(_gauss_float64(d.numpy(), 1.7, dmax, fd.SIGMA_OFFSET)) * w.unsqueeze(-1)
    want = torch.zeros(t, b, o, dtype=torch.float64)
    for tt in range(t):
        for k in range(dmax + 1):
            if tt - k >= 0:
                want[tt] += x[tt - k] @ kern[:, :, k].t()
    torch.testing.assert_close(y, want, rtol=0, atol=1e-12)


def test_gradients_match_finite_differences():
    """Gradients w.r.t. positions (and weights, input) of the Gaussian path vs central finite differences."""
    x = torch.rand(9, 2, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    d = (torch.rand(2, 3, dtype=torch.float64) * 3.6 + 0.2).requires_grad_(True)  # inside (0, 4): no clamp kink

    def f(x, w, d):
        return fd.delay_gaussian(x, weight=w, delay=d, sigma=0.8, max_delay=4)[0]

    assert torch.autograd.gradcheck(f, (x, w, d), eps=1e-6, atol=1e-7, rtol=1e-5)
    # and the delay gradient alone, by hand, on a scalar loss
    loss = (f(x, w, d) * torch.linspace(-1, 1, 9 * 2 * 2, dtype=torch.float64).view(9, 2, 2)).sum()
    (gd,) = torch.autograd.grad(loss, d)
    eps = 1e-6
    for j, i in [(0, 0), (1, 2)]:
        dp, dm = d.detach().clone(), d.detach().clone()
        dp[j, i] += eps
        dm[j, i] -= eps
        lp = (f(x.detach(), w.detach(), dp) * torch.linspace(-1, 1, 36, dtype=torch.float64).view(9, 2, 2)).sum()
        lm = (f(x.detach(), w.detach(), dm) * torch.linspace(-1, 1, 36, dtype=torch.float64).view(9, 2, 2)).sum()
        assert abs(float(gd[j, i]) - float(lp - lm) / (2 * eps)) < 1e-7


def test_integer_path_is_the_sigma_to_zero_limit_with_rounded_positions():
    torch.manual_seed(1)
    t, b, n, o, dmax = 40, 3, 6, 5, 9
    x = (torch.rand(t, b, n, dtype=torch.float64) < 0.3).double()
    w = torch.randn(o, n, dtype=torch.float64)
    d = torch.rand(o, n, dtype=torch.float64) * dmax
    d_int = d.round()
    y_int, _ = fd.delay_integer(x, weight=w, delay=d_int, max_delay=dmax)
    y_ref, _ = fd.delay_shift_reference(x, weight=w, delay=d_int.long(), max_delay=dmax)
    y_lim, _ = fd.delay_gaussian(x, weight=w, delay=d_int, sigma=1e-3, max_delay=dmax, sigma_offset=0.0)
    torch.testing.assert_close(y_int, y_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(y_lim, y_ref, rtol=0, atol=1e-12)
    # the limit of the *unrounded* positions is the nearest tap too (no ties here)
    y_lim2, _ = fd.delay_gaussian(x, weight=w, delay=d, sigma=1e-4, max_delay=dmax, sigma_offset=0.0)
    torch.testing.assert_close(y_lim2, y_ref, rtol=0, atol=1e-12)


def test_integer_path_gradients_equal_reference():
    torch.manual_seed(2)
    x = torch.rand(15, 2, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    d = torch.randint(0, 6, (3, 4))
    gy = torch.randn(15, 2, 3, dtype=torch.float64)
    g1 = torch.autograd.grad((fd.delay_integer(x, weight=w, delay=d, max_delay=5)[0] * gy).sum(), (x, w))
    g2 = torch.autograd.grad((fd.delay_shift_reference(x, weight=w, delay=d, max_delay=5)[0] * gy).sum(), (x, w))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("d", [0, 1, 4, 7])
def test_single_synapse_shifts_a_spike_train_by_exactly_d_steps(d):
    x = torch.zeros(12, 1, 1)
    x[[0, 3, 4, 9], 0, 0] = 1.0
    w = torch.tensor([[0.75]])
    want = torch.zeros(12, 1, 1)
    for s in (0, 3, 4, 9):
        if s + d < 12:
            want[s + d] = 0.75
    dd = torch.tensor([[float(d)]])
    for path in (fd.delay_integer, fd.delay_shift_reference):
        y, _ = path(x, weight=w, delay=dd, max_delay=7)
        assert torch.equal(y, want)
    y, _ = fd.delay_gaussian(x, weight=w, delay=dd, sigma=1e-3, max_delay=7, sigma_offset=0.0)
    assert torch.equal(y, want)


def test_streaming_with_state_equals_whole_sequence():
    torch.manual_seed(3)
    x = torch.rand(30, 2, 4)
    w, d = torch.randn(3, 4), torch.rand(3, 4) * 6
    di = d.round()
    for fn, kw in ((fd.delay_integer, dict(delay=di)), (fd.delay_gaussian, dict(delay=d, sigma=2.0))):
        y, s = fn(x, weight=w, max_delay=6, **kw)
        ya, sa = fn(x[:11], weight=w, max_delay=6, **kw)
        yb, sb = fn(x[11:], sa, weight=w, max_delay=6, **kw)
        torch.testing.assert_close(torch.cat([ya, yb]), y, rtol=1e-6, atol=1e-6)
        assert torch.equal(sb.x, s.x) and torch.equal(s.x, x[-6:])
        # one step at a time from silence
        h = fd.DelayState(torch.zeros(6, 2, 4))
        steps = []
        for tt in range(30):
            yt, h = fn(x[tt:tt + 1], h, weight=w, max_delay=6, **kw)
            steps.append(yt)
        torch.testing.assert_close(torch.cat(steps), y, rtol=1e-6, atol=1e-6)


def test_integer_plan_reuse_matches_fresh_computation():
    x = torch.rand(25, 2, 4)
    w, d = torch.randn(3, 4), torch.randint(0, 8, (3, 4))
    plan = fd.integer_plan(w, d, 7, 25)
    y1, _ = fd.delay_integer(x, weight=w, delay=d, max_delay=7, plan=plan)
    y2, _ = fd.delay_shift_reference(x, weight=w, delay=d, max_delay=7)
    torch.testing.assert_close(y1, y2, rtol=1e-6, atol=1e-6)


def test_sigma_schedule_is_the_paper_geometric_decay():
    s = [fd.sigma_schedule(e, sigma_init=12.0, final_epoch=10) for e in range(15)]
    assert s[0] == 12.0
    assert abs(s[10] - 0.23) < 1e-12 and s[14] == s[10]
    ratios = [s[e + 1] / s[e] for e in range(9)]
    assert max(ratios) - min(ratios) < 1e-12
    assert abs(ratios[0] - (0.23 / 12.0) ** 0.1) < 1e-12


def test_bad_input_is_refused_with_clear_errors():
    w = torch.randn(2, 3)
    with pytest.raises(ParameterError, match="max_delay"):
        fd.delay_gaussian(torch.zeros(10, 1, 3), weight=w, delay=torch.zeros(2, 3), sigma=1.0, max_delay=0)
    with pytest.raises(ShapeError, match="delays span 6 steps"):
        fd.delay_integer(torch.zeros(4, 1, 3), weight=w, delay=torch.zeros(2, 3), max_delay=5)
    with pytest.raises(ParameterError, match="not integers"):
        fd.delay_integer(torch.zeros(10, 1, 3), weight=w, delay=torch.full((2, 3), 1.5), max_delay=5)
    with pytest.raises(ParameterError, match=r"\[0, max_delay=5\]"):
        fd.delay_integer(torch.zeros(10, 1, 3), weight=w, delay=torch.full((2, 3), 6.0), max_delay=5)
    with pytest.raises(ShapeError, match="input channels"):
        fd.delay_integer(torch.zeros(10, 1, 4), weight=w, delay=torch.zeros(2, 3), max_delay=5)
    with pytest.raises(ShapeError, match="delay state"):
        fd.delay_integer(torch.zeros(2, 1, 3), fd.DelayState(torch.zeros(4, 1, 3)), weight=w,
                         delay=torch.zeros(2, 3), max_delay=5)
