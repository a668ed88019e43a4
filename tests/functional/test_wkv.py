"""The WKV reference (functional.wkv): known answers, the step form, the chunked form and gradcheck in float64."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import NonFiniteError, ParameterError, ShapeError
from spikeseq.functional import WKVState, initial_wkv_state, wkv_chunked, wkv_scan, wkv_step
from tests.kernels._wkv_compare import assert_float32_within_1e5, assert_matches_reference, inputs

D = torch.float64


def _naive(k, v, w, u):
    """The defining sum of the module docstring, unstabilised, in float64 (small |k| only)."""
    T = len(k)
    ys = []
    for t in range(T):
        num = math.exp(u + k[t]) * v[t]
        den = math.exp(u + k[t])
        for i in range(t):
            e = math.exp(-(t - 1 - i) * w + k[i])
            num += e * v[i]
            den += e
        ys.append(num / den)
    return ys


def test_known_answer_by_hand():
    # T = 2, one channel: wkv[0] = v0 (only the bonus term); wkv[1] = (e^{k0} v0 + e^{u+k1} v1)/(e^{k0} + e^{u+k1})
    k = torch.tensor([[[0.5]], [[-0.25]]], dtype=D)
    v = torch.tensor([[[2.0]], [[-1.0]]], dtype=D)
    w, u = torch.tensor([0.7], dtype=D), torch.tensor([0.3], dtype=D)
    y, st = wkv_scan(k, v, w=w, u=u)
    e0, e1 = math.exp(0.5), math.exp(0.3 - 0.25)
    assert y[0, 0, 0].item() == pytest.approx(2.0, abs=1e-15)
    assert y[1, 0, 0].item() == pytest.approx((e0 * 2 - e1) / (e0 + e1), abs=1e-15)
    # state after 2 tokens: A = e^{-w} e^{k0} v0 + e^{k1} v1, stored as a e^p with p = max(k0 - w, k1) = k1
    A = math.exp(-0.7 + 0.5) * 2 + math.exp(-0.25) * -1
    assert st.p.item() == pytest.approx(-0.2, abs=1e-15)
    assert (st.a * torch.exp(st.p)).item() == pytest.approx(A, abs=1e-14)


def test_reference_equals_defining_sum():
    k, v, w, u, _ = inputs(T=12, B=1, C=3, state=False)
    y, _ = wkv_scan(k, v, w=w, u=u)
    for c in range(3):
        want = _naive(k[:, 0, c].tolist(), v[:, 0, c].tolist(), w[c].item(), u[c].item())
        torch.testing.assert_close(y[:, 0, c], torch.tensor(want, dtype=D), atol=1e-13, rtol=0)


def test_stable_for_huge_keys():
    # e^{k} overflows float32 at k > 88: the stabilised form still gives the weighted mean of the values
    k = torch.tensor([[[200.0]], [[1000.0]], [[990.0]]])
    v = torch.tensor([[[1.0]], [[3.0]], [[5.0]]])
    y, _ = wkv_scan(k, v, w=torch.tensor([1.0]), u=torch.tensor([0.0]))
    assert torch.isfinite(y).all()
    assert y[1].item() == pytest.approx(3.0)  # e^{1000} dominates e^{200}
    assert y[2].item() == pytest.approx((3 + 5 * math.exp(-10)) / (1 + math.exp(-10)), rel=1e-6)  # no decay at lag 0


def test_step_equals_scan_and_carries_state():
    k, v, w, u, st = inputs(T=9)
    y, final = wkv_scan(k, v, st, w=w, u=u)
    s = st
    for t in range(9):
        yt, s = wkv_step(k[t], v[t], s, w=w, u=u)
        torch.testing.assert_close(yt, y[t], atol=0, rtol=0)
    for a, b in zip(s, final, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    # splitting the sequence and carrying the state is the same as one call
    y1, s1 = wkv_scan(k[:4], v[:4], st, w=w, u=u)
    y2, _ = wkv_scan(k[4:], v[4:], s1, w=w, u=u)
    torch.testing.assert_close(torch.cat((y1, y2)), y, atol=0, rtol=0)


@pytest.mark.parametrize("T,chunk", [(23, 8), (32, 8), (5, 8), (1, 4), (40, 1), (37, 16)])
def test_chunked_matches_reference_float64(T, chunk):
    args = inputs(T=T)
    assert_matches_reference(lambda *a, **kw: wkv_chunked(*a, **kw, chunk=chunk), *args, atol=1e-12)


def test_chunked_float32_within_1e5():
    args = inputs(T=130, B=2, C=16, dtype=torch.float32, k_scale=3.0)
    assert_float32_within_1e5(wkv_scan, *args)
    assert_float32_within_1e5(lambda *a, **kw: wkv_chunked(*a, **kw, chunk=32), *args)


def test_chunked_wide_keys_fall_back_exactly():
    # spreads of 200 inside a chunk: those series go through the reference loop; result still exact
    args = inputs(T=40, B=2, C=3, k_scale=80.0)
    assert_matches_reference(lambda *a, **kw: wkv_chunked(*a, **kw, chunk=16), *args, atol=1e-10, rtol=1e-10)


def test_chunked_capped_state_weight():
    # keys drop by 45 from one chunk to the next (spread inside each chunk small): the incoming state outweighs the
    # chunk's own terms by more than e^30, the fp32 cap of its weight; outputs and gradients still exact
    k, v, w, u, st = inputs(T=24, B=2, C=3)
    k = k * 0.5 - 45.0 * (torch.arange(24, dtype=D) // 8)[:, None, None]
    w = w * 0.01
    assert_matches_reference(lambda *a, **kw: wkv_chunked(*a, **kw, chunk=8), k, v, w, u, st, atol=1e-12)
    assert_float32_within_1e5(lambda *a, **kw: wkv_chunked(*a, **kw, chunk=8), k.float(), v.float(), w.float(),
                              u.float(), WKVState(*(s.float() for s in st)))


def test_gradcheck_reference_and_chunked():
    k, v, w, u, st = inputs(T=6, B=2, C=2)
    leaves = [t.clone().requires_grad_() for t in (k, v, w, u, *st)]

    def f(fn):
        def g(k, v, w, u, a, b, p):
            y, s = fn(k, v, WKVState(a, b, p), w=w, u=u)
            return y, s.a, s.b, s.p
        return g

    assert torch.autograd.gradcheck(f(wkv_scan), leaves)
    assert torch.autograd.gradcheck(f(lambda *a, **kw: wkv_chunked(*a, **kw, chunk=4)), leaves)


def test_bad_input():
    k, v, w, u, _ = inputs(T=4, B=1, C=3, state=False)
    with pytest.raises(ShapeError, match="shape \\[C\\]"):
        wkv_scan(k, v, w=w[:2], u=u)
    with pytest.raises(ShapeError, match="same shape"):
        wkv_scan(k, v[:, :, :2], w=w, u=u)
    with pytest.raises(ParameterError, match="w must be >= 0"):
        wkv_scan(k, v, w=-w, u=u)
    with pytest.raises(NonFiniteError):
        wkv_scan(k, v, w=w, u=u * float("nan"))
    with pytest.raises(ShapeError, match="state field a"):
        wkv_scan(k, v, initial_wkv_state(2, 3, dtype=D), w=w, u=u)
    with pytest.raises(ShapeError, match="\\[B, C\\]"):
        wkv_step(k, v, w=w, u=u)
    with pytest.raises(ParameterError, match="chunk"):
        wkv_chunked(k, v, w=w, u=u, chunk=0)
