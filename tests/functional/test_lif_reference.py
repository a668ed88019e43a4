"""Known-answer trajectories of the reference neurons, hand-computed."""

import pytest
import torch

from spikeseq import functional as F
from spikeseq.errors import DTypeError, NonFiniteError, ParameterError, ShapeError


def col(*vals):
    return torch.tensor(vals).view(-1, 1, 1)


def test_lif_subtract_known_trajectory():
    # beta 0.5, v_th 1: v_pre = 0.5 v + x
    x = col(0.8, 0.8, 0.8, 0.0, 2.5)
    z, s = F.lif_scan(x, beta=0.5, v_th=1.0, reset="subtract")
    # t0: 0.8 -> no; t1: 0.4+0.8=1.2 -> spike, v=0.2; t2: 0.1+0.8=0.9; t3: 0.45; t4: 0.225+2.5=2.725 -> spike, v=1.725
    assert z.flatten().tolist() == [0, 1, 0, 0, 1]
    assert s.v.item() == pytest.approx(1.725)


def test_lif_zero_and_none_resets():
    x = col(1.5, 0.2)
    z, s = F.lif_scan(x, beta=0.5, reset="zero")
    assert z.flatten().tolist() == [1, 0] and s.v.item() == pytest.approx(0.2)
    z, s = F.lif_scan(x, beta=0.5, reset="none")
    assert z.flatten().tolist() == [1, 0] and s.v.item() == pytest.approx(0.95)


def test_threshold_is_strict():
    z, _ = F.lif_scan(col(1.0), beta=0.9, v_th=1.0)
    assert z.item() == 0.0


def test_step_equals_scan_and_state_threads():
    x = torch.randn(12, 3, 4)
    z_scan, s_scan = F.lif_scan(x, beta=0.8)
    s, zs = None, []
    for t in range(6):
        z, s = F.lif_step(x[t], s, beta=0.8)
        zs.append(z)
    z2, s2 = F.lif_scan(x[6:], s, beta=0.8)
    torch.testing.assert_close(torch.cat([torch.stack(zs), z2]), z_scan)
    torch.testing.assert_close(s2.v, s_scan.v)


def test_cuba_current_then_voltage():
    # alpha 0.5, beta 0.5: i = 0.5 i + x; v = 0.5 v + i
    x = col(1.0, 0.0, 0.0)
    z, s = F.cuba_lif_scan(x, alpha=0.5, beta=0.5, v_th=10.0)
    assert z.sum().item() == 0
    # i: 1, 0.5, 0.25 ; v: 1, 1.0, 0.75
    assert s.i.item() == pytest.approx(0.25) and s.v.item() == pytest.approx(0.75)


def test_li_and_if():
    v, s = F.li_scan(col(1.0, 1.0), beta=0.5)
    assert v.flatten().tolist() == [1.0, 1.5]
    z, s = F.if_scan(col(0.6, 0.6, 0.6), v_th=1.0)
    assert z.flatten().tolist() == [0, 1, 0] and s.v.item() == pytest.approx(0.8)


def test_alif_threshold_adapts():
    # adapt 1, rho 0.5: after a spike the threshold is v_th + a
    x = col(1.5, 1.5, 1.5)
    z, s = F.alif_scan(x, beta=0.0, rho=0.5, v_th=1.0, adapt=1.0, reset="zero")
    # t0: theta 1, 1.5>1 spike, a=1; t1: theta 2, no, a=0.5; t2: theta 1.5, 1.5 not > 1.5, a=0.25
    assert z.flatten().tolist() == [1, 0, 0] and s.a.item() == pytest.approx(0.25)


def test_bad_input():
    with pytest.raises(ShapeError, match="time-first"):
        F.lif_scan(torch.zeros(5), beta=0.9)
    with pytest.raises(DTypeError, match="floating"):
        F.lif_scan(torch.zeros(3, 2, dtype=torch.int64), beta=0.9)
    with pytest.raises(ShapeError, match="state"):
        F.lif_scan(torch.zeros(3, 2, 4), F.LIFState(torch.zeros(2, 5)), beta=0.9)
    with pytest.raises(ParameterError, match="reset"):
        F.lif_scan(torch.zeros(3, 2), beta=0.9, reset="soft")
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        F.lif_scan(torch.zeros(3, 2), beta=1.5)
    x = torch.zeros(4, 2)
    x[1, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        F.lif_scan(x, beta=0.9)
    with pytest.raises(ParameterError, match="tau"):
        F.decay_from_tau(-1.0, 1e-3)
    with pytest.raises(ParameterError, match="dt"):
        F.decay_from_tau(1.0, 0.0)


def test_decay_roundtrip():
    b = F.decay_from_tau(0.02, 1e-3)
    assert F.tau_from_decay(b, 1e-3) == pytest.approx(0.02)
    assert F.decay_from_tau(0.02, 1e-3, "euler") == pytest.approx(0.95)


def test_encoders():
    z = F.latency_encode(torch.tensor([[1.0, 0.5, 0.0]]), 11)
    assert z.argmax(0).tolist() == [[0, 5, 0]] and z.sum(0).tolist() == [[1, 1, 0]]
    s = torch.tensor([0.0, 0.3, 0.6, 0.6, 0.0]).view(5, 1, 1)
    d = F.delta_encode(s, 0.25, with_level=True)
    assert d[:, 0, 0].tolist() == [0, 1, 1, 0, 0]   # up crossings: r 0 -> .25 -> .5
    assert d[:, 0, 1].tolist() == [0, 0, 0, 0, 1]   # down crossing at the drop: r .5 -> .25
    torch.testing.assert_close(d[:, 0, 2], s.flatten())
    g = torch.Generator().manual_seed(0)
    r = F.rate_encode(torch.full((1000,), 0.3), 20, generator=g)
    assert abs(r.mean().item() - 0.3) < 0.01
