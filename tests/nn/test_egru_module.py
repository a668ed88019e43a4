"""nn.EGRU: torch.nn.GRU's names and shapes, layer stacking, backends agree, bad input."""

from __future__ import annotations

import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional.egru import EGRUState, egru_scan


def test_parameter_names_and_shapes_match_torch_gru():
    m, g = snn.EGRU(5, 8, num_layers=2), torch.nn.GRU(5, 8, num_layers=2)
    ours = {k: tuple(v.shape) for k, v in m.named_parameters() if not k.startswith("threshold")}
    assert ours == {k: tuple(v.shape) for k, v in g.named_parameters()}
    assert m.threshold_l0.shape == (8,) and m.threshold_l1.shape == (8,)


def test_shapes_batch_first_and_state():
    m = snn.EGRU(5, 8, num_layers=3, batch_first=True, seed=0)
    out, st = m(torch.randn(4, 11, 5))
    assert out.y.shape == (4, 11, 8) and out.events.shape == (3, 4, 11, 8)
    assert st.c.shape == (3, 4, 8) and st.y.shape == (3, 4, 8)
    torch.testing.assert_close(out.y[:, -1], st.y[-1])


def test_layers_are_the_functional_cell_chained_on_events():
    torch.manual_seed(0)
    m = snn.EGRU(3, 6, num_layers=2, seed=1, backend="torch").double()
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    out, st = m(x)
    o0, _ = egru_scan(x, **m.layer_params(0))
    o1, s1 = egru_scan(o0.y, **m.layer_params(1))
    torch.testing.assert_close(out.y, o1.y, rtol=0, atol=0)
    torch.testing.assert_close(out.events[0], o0.e, rtol=0, atol=0)
    torch.testing.assert_close(st.c[1], s1.c, rtol=0, atol=0)
    # a second call continuing from the state equals one call on the whole sequence
    a, sa = m(x[:4])
    b, sb = m(x[4:], sa)
    torch.testing.assert_close(torch.cat([a.y, b.y]), out.y, rtol=0, atol=1e-14)


@pytest.mark.native
def test_stacked_module_gradients_cpu_vs_torch():
    x = torch.randn(12, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = {}
    for backend in ("torch", "cpu"):
        m = snn.EGRU(4, 10, num_layers=2, seed=3, eps=3.6, thr_mean=0.1, backend=backend).double()
        xx = x.clone().requires_grad_()
        out, st = m(xx)
        loss = (out.y ** 2).sum() + out.events.sum() * 0.1 + st.c.sum()
        loss.backward()
        grads[backend] = [xx.grad] + [p.grad for p in m.parameters()]
    for a, b in zip(grads["torch"], grads["cpu"], strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


def test_bad_input():
    m = snn.EGRU(3, 4, num_layers=2)
    with pytest.raises(ShapeError, match="length 0"):
        m(torch.zeros(0, 2, 3))
    with pytest.raises(ShapeError, match=r"expected \(2, 2, 4\)"):
        m(torch.zeros(5, 2, 3), EGRUState(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ParameterError, match="bidirectional"):
        snn.EGRU(3, 4, bidirectional=True)
    with pytest.raises(ParameterError, match="eps"):
        snn.EGRU(3, 4, eps=0.0)
    with pytest.raises(ParameterError, match="thr_mean"):
        snn.EGRU(3, 4, thr_mean=1.0)
    with pytest.raises(ParameterError, match="dropout"):
        snn.EGRU(3, 4, dropout=1.0)


def test_autocast_keeps_state_and_threshold_comparison_in_float32():
    m = snn.EGRU(3, 4, seed=0, backend="torch")
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, st = m(x)
    assert st.c.dtype == torch.float32 and out.y.dtype == torch.float32
