"""The float interpreter reproduces the torch models (>= 99.9% equal spikes) and counts work per event."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import ExportError, ParameterError, ShapeError
from spikeseq.graph import ir, simulate, trace
from spikeseq.models.l2mu import L2MU
from spikeseq.nn.delay import DelayLinear
from spikeseq.nn.recurrent import RLIF

DT = 1e-3


def _scale(m, k=3.0):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
                mod.weight.mul_(k)
    return m


def _spikes(shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _mlp():
    return _scale(snn.Sequential(torch.nn.Linear(16, 24), snn.LIF(tau_mem=5e-3, dt=DT),
                                 torch.nn.Linear(24, 12), snn.CubaLIF(tau_syn=3e-3, tau_mem=8e-3, dt=DT, v_th=0.5),
                                 torch.nn.Linear(12, 8), snn.IF(dt=DT, reset="zero", v_th=2.0),
                                 torch.nn.Linear(8, 4), snn.LI(tau_mem=1e-2, dt=DT)))


def _conv():
    return _scale(snn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), snn.LIF(tau_mem=4e-3, dt=DT, reset="zero"),
                                 torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5),
                                 snn.LIF(tau_mem=4e-3, dt=DT)), 2.0)


def _rec(kind):
    return _scale(snn.Sequential(RLIF(16, 20, neuron=kind, dt=DT, tau_mem=5e-3, tau_syn=2e-3, rec_bias=True),
                                 torch.nn.Linear(20, 4), snn.LIF(tau_mem=5e-3, dt=DT)), 2.5)


def _delay():
    d = DelayLinear(16, 12, max_delay=5)
    with torch.no_grad():
        d.delay.copy_(torch.randint(0, 6, d.delay.shape).float())
        d.weight.mul_(4.0)
    d.round_delays()
    return snn.Sequential(d, snn.LIF(tau_mem=5e-3, dt=DT, reset="zero")).eval()


CASES = {
    "mlp": (_mlp, (16,)),
    "conv": (_conv, (2, 8, 8)),
    "rlif": (lambda: _rec("lif"), (16,)),
    "rcuba": (lambda: _rec("cuba"), (16,)),
    "delay": (_delay, (16,)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_float_interpreter_matches_torch(case):
    build, shape = CASES[case]
    torch.manual_seed(1)
    m = build().eval()
    x = _spikes((60, 4, *shape), seed=2)
    g = trace(m, dt=DT, input_shape=shape)
    with torch.no_grad():
        y = m(x)[0].numpy()
    out = simulate(g, x).output
    if case == "mlp":  # LI readout: values
        np.testing.assert_allclose(out, y, rtol=1e-4, atol=1e-4)
        hidden = [k for k, n in g.nodes.items() if isinstance(n, ir.LIF)]
        assert hidden
    else:
        assert 0.01 < y.mean() < 0.7
        assert np.mean(out == y) >= 0.999


def test_hidden_layer_spikes_match_every_layer():
    torch.manual_seed(0)
    m = _mlp().eval()
    x = _spikes((50, 3, 16), seed=4)
    g = trace(m, dt=DT)
    r = simulate(g, x)
    h = x
    with torch.no_grad():
        for i, layer in enumerate(m.layers):
            h = layer(h)[0] if isinstance(layer, snn.StatefulModule) else snn.time_distributed(layer, h)
            node = g.metadata["module_of"]
            names = [k for k, v in node.items() if v == f"layers.{i}"]
            if names and g.nodes[names[0]].sends("spikes") == "spikes":
                assert h.sum() > 0
                assert np.mean(r.traces[names[0]] == h.numpy()) >= 0.999


def test_l2mu_traces_and_matches():
    torch.manual_seed(0)
    for neuron in ("lif", "cuba"):
        m = L2MU(6, 4, order=3, theta=5.0, hidden_size=20, memory_size=10, neuron=neuron, dt=0.02,
                 input_pop_size=12)
        x = torch.randn(40, 3, 6) * 2
        g = trace(m, dt=0.02)
        assert {"pop_u", "pop_m", "pop_h", "a_mem", "b_mem"} <= set(g.nodes)
        assert ("w_h", "pop_h") in g.recurrent_edges()
        with torch.no_grad():
            y = m(x)[0].numpy()
        out = np.cumsum(simulate(g, x).output, axis=0)
        assert y[-1].sum() > 0
        assert np.mean(out == y) >= 0.999


def test_event_counts_are_exact():
    w = np.array([[1.0, 0.0, 2.0], [0.5, 0.0, 0.0]], np.float32)
    g = ir.Graph({"input": ir.Input((3,)), "lin": ir.Linear(w), "li": ir.LI(tau=np.full(2, 1e-2), r=np.ones(2)),
                  "output": ir.Output((2,))}, [("input", "lin"), ("lin", "li"), ("li", "output")], dt=1e-3)
    x = np.zeros((4, 2, 3))
    x[0, 0, 0] = x[1, 1, 2] = x[1, 1, 1] = x[3, 0, 0] = 1
    r = simulate(g, x)
    # fan-out of inputs 0, 1, 2 = non-zero weights in their columns: 2, 0, 1
    assert r.synops["lin"] == 2 + 1 + 0 + 2
    assert r.events["input"] == 4
    assert r.dense_macs["lin"] == 0
    assert r.neuron_updates["li"] == 4 * 2 * 2
    xd = np.random.default_rng(0).normal(size=(4, 2, 3))
    rd = simulate(g, xd)
    assert rd.dense_macs["lin"] == 4 * 2 * 3 * 2 and rd.synops["lin"] == 0
    # graded events give the same values as the dense product
    xg = x * 3.0
    np.testing.assert_allclose(simulate(g, xg).output, 3.0 * r.output, rtol=1e-12)


def test_bad_inputs_raise():
    g = trace(_mlp(), dt=DT)
    with pytest.raises(ShapeError, match="input"):
        simulate(g, np.zeros((5, 2, 7)))
    with pytest.raises(ParameterError, match="numerics"):
        simulate(g, np.zeros((5, 2, 16)), numerics="fpga")
    with pytest.raises(ParameterError, match="dt"):
        trace(_mlp(), dt=2e-3)  # modules were built with dt = 1e-3
    with pytest.raises(ExportError, match="GRU"):
        trace(snn.Sequential(torch.nn.GRU(3, 3)), dt=DT, input_shape=(3,))


def test_cycle_without_synapse_is_refused():
    lif = lambda: ir.LIF(tau=np.full(2, 1e-2), r=np.ones(2), v_threshold=np.ones(2))  # noqa: E731
    g = ir.Graph({"input": ir.Input((2,)), "a": lif(), "b": lif(), "output": ir.Output((2,))},
                 [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], dt=1e-3)
    with pytest.raises(ExportError, match="cycle without a synapse"):
        g.schedule("hop")
    assert g.recurrent_edges() == {("b", "a")}


@pytest.mark.parametrize("delays", ["fixed", "none"])
def test_delay_snn_with_batchnorm_folds_and_matches(delays):
    from spikeseq.models.delay_snn import DelaySNN
    from spikeseq.verify import export_and_verify

    torch.manual_seed(0)
    m = DelaySNN(n_inputs=20, n_outputs=5, n_hidden=32, n_layers=2, max_delay=4, delays=delays)
    with torch.no_grad():
        for _ in range(3):  # running batch-norm statistics
            m(_spikes((10, 8, 20), seed=5))
    m.eval().round_delays()
    g = trace(m, dt=m.config.dt)
    assert not any(isinstance(n, (ir.Scale,)) for n in g.nodes.values())
    x = _spikes((30, 6, 20), seed=6)
    with torch.no_grad():
        h = m.neurons[0](m.norms[0](m.synapses[0](torch.cat([x, torch.zeros(m.config.pad_end, 6, 20)]))[0]
                                    .flatten(0, 1)).unflatten(0, (30 + m.config.pad_end, 6)))[0]
    assert h.mean() > 0.01
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        r = export_and_verify(m, "nir", f"{d}/m.nir", x, dt=m.config.dt)
    assert r.steps == 30 and r.layer_agreement["lif0_lif"] >= 0.999 and r.layer_agreement["lif1_lif"] >= 0.999
    assert r.output_max_abs_diff < 1e-4


def test_lmu_memory_block_is_lowered_by_trace_and_interpreted():
    """nn.LMUMemory (a building block) is lowered by trace itself: the float interpreter gives the module's memory."""
    from spikeseq.nn import LMUMemory

    torch.manual_seed(0)
    mem = LMUMemory(4, 6.0)
    g = trace(mem, dt=1e-3, input_shape=(3,))
    node = g.nodes["lmu_memory"]
    assert isinstance(node, ir.LMUMemory) and node.A.shape == (12, 12) and node.B.shape == (12, 3)
    u = torch.randn(15, 2, 3, dtype=torch.float64)
    m, _ = mem(u.float())
    r = simulate(g, u.numpy(), numerics="float")
    np.testing.assert_allclose(r.outputs["output"], m.double().flatten(2).numpy(), rtol=1e-4, atol=1e-4)


def test_behind_flatten_finds_the_sender():
    """Graph.behind_flatten looks through chained Flatten nodes to the node that sends; others are returned as they
    are."""
    m = snn.Sequential(torch.nn.Conv2d(1, 2, 3), snn.LIF(tau_mem=5e-3, dt=1e-3), torch.nn.Flatten(),
                       torch.nn.Linear(2 * 4 * 4, 3))
    g = trace(m, dt=1e-3, input_shape=(1, 6, 6)).flat()
    (flat,) = [k for k, n in g.nodes.items() if isinstance(n, ir.Flatten)]
    (lin,) = g.successors(flat)
    sender = g.behind_flatten(flat)
    assert g.nodes[sender].role == "neuron" and g.successors(sender) == [flat]
    assert g.behind_flatten(lin) == lin and g.behind_flatten(sender) == sender
