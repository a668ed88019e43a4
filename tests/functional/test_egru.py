"""EGRU reference: hand-computed trajectories, the pseudo-derivative, gradcheck, options and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import NonFiniteError, ParameterError, ShapeError
from spikeseq.functional.egru import (
    EGRUState,
    activity_loss,
    beta_threshold_init,
    egru_scan,
    egru_step,
    egru_trace,
)

D = torch.float64


def _params(w_n_in=1.0, r_n=0.0, theta=0.3):
    """H = I = 1: only the candidate's input weight (and optionally its recurrent weight) is nonzero."""
    w_ih = torch.tensor([[0.0], [0.0], [w_n_in]], dtype=D)
    w_hh = torch.tensor([[0.0], [0.0], [r_n]], dtype=D)
    return dict(weight_ih=w_ih, weight_hh=w_hh, bias_ih=torch.zeros(3, dtype=D), bias_hh=torch.zeros(3, dtype=D),
                threshold=torch.tensor([theta], dtype=D))


def test_known_answer_without_recurrence():
    # r = z = 0.5, n = tanh(x): c~ = 0.5 c + 0.5 tanh(x); theta = 0.3, subtractive reset.
    x = torch.tensor([2.0, 2.0, 0.0], dtype=D).view(3, 1, 1)
    out, st = egru_scan(x, **_params())
    t2 = 0.5 * math.tanh(2.0)                       # 0.48201379
    ct1 = 0.5 * (t2 - 0.3) + t2                     # 0.57302069
    ct2 = 0.5 * (ct1 - 0.3)                         # 0.13651034: below threshold
    torch.testing.assert_close(out.y.flatten(), torch.tensor([t2, ct1, 0.0], dtype=D), rtol=0, atol=1e-15)
    torch.testing.assert_close(out.e.flatten(), torch.tensor([1.0, 1.0, 0.0], dtype=D))
    assert abs(t2 - 0.48201379) < 1e-8 and abs(ct1 - 0.57302069) < 1e-8 and abs(ct2 - 0.13651034) < 1e-8
    torch.testing.assert_close(st.c.flatten(), torch.tensor([ct2], dtype=D), rtol=0, atol=1e-15)
    torch.testing.assert_close(st.y.flatten(), torch.tensor([0.0], dtype=D))


def test_known_answer_recurrent_input_is_the_sparse_output():
    # R_n = 2: n = tanh(x + 2 r y[t-1]); y[t-1] = 0 when the unit did not fire, whatever c was.
    x = torch.tensor([2.0, 2.0, 0.0, 0.0], dtype=D).view(4, 1, 1)
    out, _ = egru_scan(x, **_params(r_n=2.0))
    c, y, want = 0.0, 0.0, []
    for xt in (2.0, 2.0, 0.0, 0.0):                 # the equations by hand with r = z = 0.5
        ct = 0.5 * c + 0.5 * math.tanh(xt + 0.5 * 2.0 * y)
        e = 1.0 if ct > 0.3 else 0.0
        y, c = e * ct, ct - e * 0.3
        want.append(y)
    assert want[2] > 0 and want[3] == 0.0           # step 2 fires only through the recurrent event of step 1
    torch.testing.assert_close(out.y.flatten(), torch.tensor(want, dtype=D), rtol=0, atol=1e-15)


def test_threshold_is_strict_and_step_matches_scan():
    x = torch.randn(5, 2, 3, dtype=D, generator=torch.Generator().manual_seed(0))
    p = dict(weight_ih=torch.randn(12, 3, dtype=D), weight_hh=torch.randn(12, 4, dtype=D),
             bias_ih=torch.randn(12, dtype=D), bias_hh=torch.randn(12, dtype=D),
             threshold=torch.full((4,), 0.2, dtype=D))
    out, st = egru_scan(x, **p)
    s = None
    for t in range(5):
        o, s = egru_step(x[t], s, **p)
        torch.testing.assert_close(o.y, out.y[t], rtol=0, atol=1e-14)  # one GEMM vs T GEMMs
    torch.testing.assert_close(s.c, st.c, rtol=0, atol=1e-14)
    # c~ exactly at the threshold: no event (spike iff c~ > theta)
    o, _ = egru_step(torch.tensor([[2.0]], dtype=D), None, **_params(theta=0.5 * math.tanh(2.0)))
    assert float(o.e) == 0.0


def test_pseudo_derivative_by_hand():
    # one step: c~ = 0.5 tanh(2) = 0.48201; d e / d theta = -gamma * max(0, 1 - eps |c~ - theta|)
    for eps, theta in ((1.0, 0.3), (3.6, 0.3), (3.6, 0.9)):
        p = _params(theta=theta)
        p["threshold"].requires_grad_(True)
        out, _ = egru_scan(torch.tensor([[[2.0]]], dtype=D), eps=eps, **p)
        (g,) = torch.autograd.grad(out.e.sum(), p["threshold"])
        ct = 0.5 * math.tanh(2.0)
        assert float(g) == pytest.approx(-0.7 * max(0.0, 1 - eps * abs(ct - theta)), abs=1e-15)


def test_gradcheck_float64():
    # eps = 1e6 shrinks the pseudo-derivative's support to |c~ - theta| < 1e-6, where no state lies here: the
    # analytic gradient is then the exact gradient of the piecewise-smooth cell, checked by finite differences.
    g = torch.Generator().manual_seed(3)
    T, B, I, H = 4, 2, 3, 3
    leaves = [torch.randn(T, B, I, dtype=D, generator=g), 0.5 * torch.randn(3 * H, I, dtype=D, generator=g),
              0.5 * torch.randn(3 * H, H, dtype=D, generator=g), 0.1 * torch.randn(3 * H, dtype=D, generator=g),
              0.1 * torch.randn(3 * H, dtype=D, generator=g), torch.full((H,), 0.05, dtype=D),
              0.1 * torch.randn(B, H, dtype=D, generator=g), 0.1 * torch.rand(B, H, dtype=D, generator=g)]
    leaves = [t.requires_grad_() for t in leaves]
    mask = torch.rand(T, B, H, dtype=D, generator=g)

    def f(x, wi, wh, bi, bh, th, c0, y0):
        out, st = egru_scan(x, EGRUState(c0, y0), weight_ih=wi, weight_hh=wh, bias_ih=bi, bias_hh=bh, threshold=th,
                            eps=1e6, zoneout=mask)
        return out.y, st.c

    out, _ = f(*leaves)
    assert 0 < float((out != 0).double().mean()) < 1     # some events, some silence
    assert torch.autograd.gradcheck(f, leaves, eps=1e-7, atol=1e-6)


def test_zoneout_dropconnect_and_trace():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, 3, dtype=D, generator=g)
    p = dict(weight_ih=torch.randn(12, 3, dtype=D, generator=g), weight_hh=torch.randn(12, 4, dtype=D, generator=g),
             threshold=torch.full((4,), 0.1, dtype=D))
    # a mask of ones keeps the initial state forever
    c0 = torch.full((2, 4), 0.05, dtype=D)
    _, st = egru_scan(x, EGRUState(c0, torch.zeros(2, 4, dtype=D)), zoneout=torch.ones(6, 2, 4, dtype=D), **p)
    torch.testing.assert_close(st.c, c0)
    # evaluation: zoneout p uses the expectation m = p; training samples a 0/1 mask
    a, _ = egru_scan(x, zoneout=0.3, **p)
    b, _ = egru_scan(x, zoneout=torch.full((6, 2, 4), 0.3, dtype=D), **p)
    torch.testing.assert_close(a.y, b.y, rtol=0, atol=0)
    # DropConnect only in training
    e1, _ = egru_scan(x, dropconnect=0.5, training=False, **p)
    torch.testing.assert_close(e1.y, egru_scan(x, **p)[0].y, rtol=0, atol=0)
    torch.manual_seed(0)
    e2, _ = egru_scan(x, dropconnect=0.5, training=True, **p)
    assert not torch.equal(e2.y, e1.y)
    # trace: tr = 0.9 tr + 0.1 y
    tr, last = egru_trace(a.y)
    torch.testing.assert_close(tr[1], 0.9 * 0.1 * a.y[0] + 0.1 * a.y[1])
    torch.testing.assert_close(last, tr[-1])
    assert float(activity_loss(a.e, 0.01)) == pytest.approx(0.01 * float(a.e.mean()))


def test_beta_threshold_init():
    th = beta_threshold_init(20000, 0.3, generator=torch.Generator().manual_seed(0))
    assert float(th.mean()) == pytest.approx(0.3, abs=0.005)        # Beta(9/7, 3): mean 0.3
    var = (9 / 7 * 3) / ((9 / 7 + 3) ** 2 * (9 / 7 + 4))            # alpha beta / ((a+b)^2 (a+b+1))
    assert float(th.var()) == pytest.approx(var, rel=0.05)
    assert float(th.min()) >= 0 and float(th.max()) < 1


@pytest.mark.parametrize("kw,exc,text", [
    (dict(eps=0.0), ParameterError, "eps"),
    (dict(eps=float("nan")), ParameterError, "eps"),
    (dict(dampening=-1.0), ParameterError, "dampening"),
    (dict(threshold=torch.tensor([1.5])), ParameterError, "threshold must lie in"),
    (dict(threshold=torch.tensor([-0.1])), ParameterError, "threshold must lie in"),
    (dict(threshold=torch.tensor([float("nan")])), NonFiniteError, "threshold"),
    (dict(threshold=torch.tensor([0.1, 0.2])), ShapeError, "one per unit"),
    (dict(zoneout=1.0), ParameterError, "zoneout"),
    (dict(dropconnect=1.0, training=True), ParameterError, "dropconnect"),
])
def test_bad_parameters(kw, exc, text):
    p = dict(weight_ih=torch.zeros(3, 2), weight_hh=torch.zeros(3, 1), threshold=torch.tensor([0.3]))
    p.update(kw)
    with pytest.raises(exc, match=text):
        egru_scan(torch.zeros(2, 1, 2), **p)


def test_bad_shapes():
    p = dict(weight_ih=torch.zeros(3, 2), weight_hh=torch.zeros(3, 1), threshold=torch.tensor([0.3]))
    with pytest.raises(ShapeError, match="empty time axis"):
        egru_scan(torch.zeros(0, 1, 2), **p)
    with pytest.raises(ShapeError, match="state c has shape"):
        egru_scan(torch.zeros(2, 1, 2), EGRUState(torch.zeros(2, 1), torch.zeros(1, 1)), **p)
    with pytest.raises(ShapeError, match="features"):
        egru_scan(torch.zeros(2, 1, 5), **p)
    with pytest.raises(ShapeError, match=r"\[3H, I\]"):
        egru_scan(torch.zeros(2, 1, 2), **{**p, "weight_hh": torch.zeros(3, 2)})
