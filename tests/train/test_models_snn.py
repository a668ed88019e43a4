"""snn_mlp and rsnn against hand-written LIF recurrences; spike statistics recorded by the evaluator."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import ShapeError
from spikeseq.models.registry import build
from spikeseq.train.evaluate import spike_stats


def _lif_ref(current: torch.Tensor, beta: float, v_th: float = 1.0) -> torch.Tensor:
    """v_pre = beta v + I; z = (v_pre > v_th); v = v_pre - z v_th (subtract reset), over [T, B, N]."""
    v = torch.zeros_like(current[0])
    out = []
    for i in current:
        v = beta * v + i
        z = (v > v_th).to(current.dtype)
        v = v - z * v_th
        out.append(z)
    return torch.stack(out)


def _li_ref(current: torch.Tensor, beta: float) -> torch.Tensor:
    v = torch.zeros_like(current[0])
    out = []
    for i in current:
        v = beta * v + i
        out.append(v)
    return torch.stack(out)


def test_snn_mlp_matches_reference():
    m = build("snn_mlp", n_in=12, n_out=3, hidden=[5, 4], tau_mem=0.01, dt=0.001, backend="torch")
    x = 2.0 * torch.rand(9, 2, 3, 4, generator=torch.Generator().manual_seed(0))
    y, _ = m(x)
    beta = math.exp(-0.1)
    lin = [layer for layer in m.layers if isinstance(layer, torch.nn.Linear)]
    h = x.reshape(9, 2, 12)
    for layer in lin[:-1]:
        h = _lif_ref(layer(h), beta)
    ref = _li_ref(lin[-1](h), beta)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)
    assert h.sum() > 0  # the hidden layers did spike
    with pytest.raises(ShapeError, match="set \\[model\\] n_in = 10"):
        m(torch.rand(3, 2, 10))


@pytest.mark.parametrize("name", ["snn_mlp", "rsnn"])
def test_models_trace_into_the_export_graph(name):
    from spikeseq.graph.trace import trace

    m = build(name, n_in=4, n_out=3, hidden=5, dt=0.01, tau_mem=0.05)
    g = trace(m, dt=0.01, input_shape=(4,))
    assert len(g.nodes) >= 3


def test_rsnn_matches_reference_and_has_gradients():
    m = build("rsnn", n_in=3, n_out=2, hidden=6, tau_mem=0.1, dt=0.02, backend="torch")
    rlif, out, _ = m.layers
    x = 3.0 * torch.randn(15, 4, 3, generator=torch.Generator().manual_seed(1))
    y, state = m(x)
    beta = math.exp(-0.2)
    v = torch.zeros(4, 6)
    z = torch.zeros(4, 6)
    zs = []
    for t in range(15):
        v = beta * v + rlif.fc(x[t]) + rlif.rec(z)
        z = (v > 1.0).float()
        v = v - z
        zs.append(z)
    ref = _li_ref(out(torch.stack(zs)), beta)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state[0].z, zs[-1])
    assert 0 < torch.stack(zs).mean() < 1
    y.sum().backward()
    assert rlif.rec.weight.grad is not None and rlif.rec.weight.grad.abs().sum() > 0
    # chunked calls with the state threaded through equal one call
    y1, s1 = m(x[:7])
    y2, _ = m(x[7:], s1)
    torch.testing.assert_close(torch.cat([y1, y2]), y, rtol=1e-5, atol=1e-5)


def test_spike_stats_rates_and_raster():
    m = build("rsnn", n_in=3, n_out=2, hidden=6, backend="torch")
    x = 3.0 * torch.randn(5, 12, 3, generator=torch.Generator().manual_seed(2))  # batch-first [N, T, C]
    stats = spike_stats(m, x, torch.device("cpu"), raster_neurons=4)
    with torch.no_grad():
        spikes = []
        hook = m.layers[0].register_forward_hook(lambda _m, _i, out: spikes.append(out[0]))
        m(x.transpose(0, 1))
        hook.remove()
    z = torch.cat(spikes)  # [T, N, H]
    (layer,) = stats["layers"]
    assert layer["name"] == "layers.0" and layer["neurons"] == 6 and layer["steps"] == 12
    assert layer["rate"] == pytest.approx(float(z.mean()))
    events = stats["raster"]["layers.0"]["events"]
    assert sorted(map(tuple, events)) == sorted(map(tuple, torch.nonzero(z[:, 0, :4] > 0).tolist()))
