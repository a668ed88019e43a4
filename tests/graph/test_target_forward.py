"""Target mode (spikeseq.graph.target_forward) against the bit-exact interpreter on random graphs and inputs:
identical spikes on every neuron node, readout values to float rounding; straight-through gradients reach the bound
parameters with the float model's scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeseq.graph import simulate
from spikeseq.graph.quantize import quantize_with_factors
from spikeseq.graph.target_forward import straight_through, target_forward
from spikeseq.graph.trace import trace, trace_bound
from spikeseq.nn import IF, LI, LIF, CubaLIF, DelayLinear, Sequential
from spikeseq.nn.recurrent import RLIF

DT = 1e-3
TARGETS = ("loihi", "spinnaker2")


def _same(res, x, target):
    sim = simulate(res.graph, x, numerics=target)
    assert res.traces, "nothing recorded"
    for name, tr in res.traces.items():
        a, b = tr.detach().numpy(), sim.traces[name]
        if getattr(res.graph.nodes[name], "readout", False):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()))
        else:
            assert np.array_equal(a, b), f"{name}: {int((a != b).sum())} of {a.size} spikes differ"
            assert a.sum() > 0, f"{name} never spiked: the comparison would be trivial"
    return sim


def _mlp(seed: int, reset: str = "zero", neuron=LIF) -> nn.Module:
    torch.manual_seed(seed)
    kw = dict(dt=DT, v_th=0.4, reset=reset)
    first = neuron(tau_mem=4e-3, **kw) if neuron is LIF else (
        IF(**kw) if neuron is IF else CubaLIF(tau_syn=3e-3, tau_mem=5e-3, **kw))
    return Sequential(nn.Linear(24, 32), first, nn.Linear(32, 16), LIF(tau_mem=8e-3, **kw),
                      nn.Linear(16, 5), LI(tau_mem=2e-2, dt=DT))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("neuron", [LIF, IF, CubaLIF])
def test_feedforward_spikes_identical(target, neuron):
    m = _mlp(1, neuron=neuron)
    x = (torch.rand(30, 3, 24, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    g, b = trace_bound(m, dt=DT)
    res = target_forward(g, b, x, target, record=True)
    _same(res, x.numpy(), target)
    assert res.output.shape == (30, 3, 5)


@pytest.mark.parametrize("target", TARGETS)
def test_recurrent_and_delays_identical(target):
    torch.manual_seed(3)
    dl = DelayLinear(12, 20, max_delay=4, bias=False, learn_delay=False)
    with torch.no_grad():
        dl.weight.mul_(3.0)
        dl.delay.copy_(torch.randint(0, 5, dl.delay.shape).float())
    m = Sequential(dl, LIF(tau_mem=5e-3, dt=DT, v_th=0.3, reset="zero"),
                   RLIF(20, 16, dt=DT, tau_mem=6e-3, v_th=0.3, reset="zero"),
                   nn.Linear(16, 4), LI(tau_mem=1e-2, dt=DT))
    x = (torch.rand(25, 2, 12, generator=torch.Generator().manual_seed(4)) < 0.4).float()
    g, b = trace_bound(m, dt=DT)
    assert any(g.metadata["recurrent_edges"])
    res = target_forward(g, b, x, target, record=True)
    _same(res, x.numpy(), target)


@pytest.mark.parametrize("target", TARGETS)
def test_conv_with_bias_identical(target):
    torch.manual_seed(5)
    m = Sequential(nn.Conv2d(2, 4, 3, stride=1, padding=1), LIF(tau_mem=5e-3, dt=DT, v_th=0.3, reset="zero"),
                   nn.Flatten(), nn.Linear(4 * 6 * 6, 3), LI(tau_mem=1e-2, dt=DT))
    x = (torch.rand(12, 2, 2, 6, 6, generator=torch.Generator().manual_seed(6)) < 0.3).float()
    g, b = trace_bound(m, dt=DT, input_shape=(2, 6, 6))
    res = target_forward(g, b, x, target, record=True)
    _same(res, x.numpy(), target)


def test_real_valued_input_loihi_fixed_point():
    """Real-valued (graded) input on Loihi: payloads round(x * 2**k), input weights / 2**k, as the exporter."""
    from spikeseq.graph.quantize import quantize_input, scale_input_synapses

    m = _mlp(7)
    x = torch.randn(20, 3, 24, generator=torch.Generator().manual_seed(8))
    g, b = trace_bound(m, dt=DT, input_payload="graded")
    res = target_forward(g, b, x, "loihi", input_frac_bits=4, input_bits=8, record=True)
    xq = quantize_input(x.double().numpy(), 4, 8)
    assert np.abs(xq).max() <= 127 and np.array_equal(xq, np.round(xq))
    _same(res, xq, "loihi")
    # the graph that ran is the exporter's: scale_input_synapses + quantize of the traced graph
    q, _ = quantize_with_factors(scale_input_synapses(trace(m, dt=DT), 4), "loihi")
    for name, node in q.nodes.items():
        if hasattr(node, "weight"):
            assert np.array_equal(node.weight, res.graph.nodes[name].weight)


def test_real_valued_input_spinnaker2():
    m = _mlp(9)
    x = torch.randn(20, 3, 24, generator=torch.Generator().manual_seed(10))
    g, b = trace_bound(m, dt=DT, input_payload="dense")
    res = target_forward(g, b, x, "spinnaker2", record=True)
    _same(res, x.double().numpy(), "spinnaker2")


@pytest.mark.parametrize("target", TARGETS)
def test_subtract_reset(target):
    """SpiNNaker2 keeps the subtractive reset; Loihi replaces it by reset to zero under reset_policy='zero'."""
    m = _mlp(11, reset="subtract")
    x = (torch.rand(30, 2, 24, generator=torch.Generator().manual_seed(12)) < 0.3).float()
    g, b = trace_bound(m, dt=DT)
    kw = {"reset_policy": "zero"} if target == "loihi" else {}
    res = target_forward(g, b, x, target, record=True, **kw)
    sim = simulate(res.graph, x.numpy(), numerics=target, quantize_kwargs=kw or None)
    for name, tr in res.traces.items():
        if not getattr(res.graph.nodes[name], "readout", False):
            assert np.array_equal(tr.detach().numpy(), sim.traces[name])
            assert tr.sum() > 0


def test_graded_events_through_a_synapse():
    """Integer graded events (e.g. event counts per bin) scale the weight rows on both sides."""
    m = _mlp(13)
    counts = torch.randint(0, 4, (25, 2, 24), generator=torch.Generator().manual_seed(14)).float()
    counts[torch.rand(counts.shape, generator=torch.Generator().manual_seed(15)) < 0.6] = 0
    assert counts.max() > 1
    for target in TARGETS:
        g, b = trace_bound(m, dt=DT, input_payload="graded")
        res = target_forward(g, b, counts, target, record=True)
        _same(res, counts.numpy(), target)
        res.output.sum().backward()
        assert m.layers[0].weight.grad is not None and m.layers[0].weight.grad.abs().sum() > 0
        m.zero_grad()


def test_straight_through_values_and_gradient():
    exact = torch.tensor([2.0, -4.0, 0.0], dtype=torch.float64)
    w = torch.tensor([1.1, -1.9, 0.2], dtype=torch.float64, requires_grad=True)
    y = straight_through(exact, w * 2.0)
    assert torch.equal(y.detach(), exact)
    (y * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    assert torch.equal(w.grad, torch.tensor([2.0, 4.0, 6.0], dtype=torch.float64))


@pytest.mark.parametrize("target", TARGETS)
def test_gradients_have_the_float_models_scale(target):
    """The straight-through factors undo the quantisation scale: the readout weights' gradient in target mode
    points where the float model's does, with about its size (same spikes up to quantisation)."""
    m = _mlp(16)
    x = (torch.rand(40, 4, 24, generator=torch.Generator().manual_seed(17)) < 0.3).float()
    probe = torch.randn(5, generator=torch.Generator().manual_seed(18))
    (m(x)[0] * probe).sum().backward()
    g_float = [p.grad.clone() for p in (m.layers[4].weight, m.layers[4].bias)]
    m.zero_grad()
    g, b = trace_bound(m, dt=DT)
    (target_forward(g, b, x, target).output * probe).sum().backward()
    for gf, p in zip(g_float, (m.layers[4].weight, m.layers[4].bias)):
        gt = p.grad
        cos = float((gf * gt).sum() / (gf.norm() * gt.norm()))
        assert cos > 0.95, cos
        assert 0.8 < float(gt.norm() / gf.norm()) < 1.25
    assert m.layers[0].weight.grad.abs().sum() > 0    # the surrogate reaches the first layer


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("detach_reset", [True, False])
def test_hidden_gradients_follow_the_float_model(target, detach_reset):
    """Every layer's gradient in target mode points where the float model's does, with about its size, whichever
    reset rule the neurons train with: target mode differentiates each population's spikes as its module does
    (trace.bind_spiking). Subtractive reset on SpiNNaker2 (the float model's), reset to zero on Loihi."""
    reset = "zero" if target == "loihi" else "subtract"
    m = _mlp(23, reset=reset)
    for mod in m.modules():
        if isinstance(mod, LIF):
            mod.detach_reset = detach_reset
    x = (torch.rand(60, 8, 24, generator=torch.Generator().manual_seed(24)) < 0.3).float()
    probe = torch.randn(5, generator=torch.Generator().manual_seed(25))
    (m(x)[0] * probe).sum().backward()
    weights = [m.layers[i].weight for i in (0, 2, 4)]
    g_float = [w.grad.clone() for w in weights]
    m.zero_grad()
    g, b = trace_bound(m, dt=DT)
    (target_forward(g, b, x, target).output * probe).sum().backward()
    for i, (gf, w) in enumerate(zip(g_float, weights)):
        gt = w.grad
        cos = float((gf * gt).sum() / (gf.norm() * gt.norm()))
        assert cos > 0.9, (i, cos)
        assert 0.7 < float(gt.norm() / gf.norm()) < 1.4, (i, float(gt.norm() / gf.norm()))


def test_trace_bound_records_each_neurons_spike_gradient():
    """Bindings of spiking neuron nodes carry their module's surrogate and detach_reset; the LI readout has none."""
    from spikeseq import surrogate as sg

    m = _mlp(26)
    m.layers[1].surrogate = sg.ATan(alpha=3.0)
    m.layers[3].detach_reset = True
    g, b = trace_bound(m, dt=DT)
    spiking = {k: b[k] for k, n in g.nodes.items() if n.role == "neuron" and k in b}
    assert len(spiking) == 2
    (first, second) = spiking.values()
    assert first == {"surrogate": sg.ATan(alpha=3.0), "detach_reset": False}
    assert second == {"surrogate": m.layers[3].surrogate, "detach_reset": True}
    readout = [k for k, n in g.nodes.items() if n.role == "neuron" and k not in spiking]
    assert len(readout) == 1 and readout[0] not in b


def test_unknown_target():
    m = _mlp(18)
    g, b = trace_bound(m, dt=DT)
    with pytest.raises(Exception, match="loihi, spinnaker2"):
        target_forward(g, b, torch.zeros(3, 1, 24), "truenorth")


def syn_all(q):
    """Synapse node names of a graph."""
    return [k for k, n in q.nodes.items() if n.role == "synapse"]


def _reference(m, x, target, surrogate, detach_reset=True):
    """The target dynamics written out with autograd (module docstring of target_forward, targets.md §4.2/4.4), for
    ``Linear -> LIF -> Linear -> LI``, the LIF optionally with a recurrent synapse (``a[t] += W_rec z[t - 1]``):
    outputs aligned by the two hops; the reset with the spike's gradient unless ``detach_reset``."""
    from spikeseq.surrogate import spike

    g, b = trace_bound(m, dt=DT)
    q, fac = quantize_with_factors(g, target)
    names = [k for k, n in q.nodes.items() if n.role == "neuron"]
    syn = [k for k, n in q.nodes.items() if n.role == "synapse" and k in fac.weight and k in b
           and q.successors(k)[0] in names and "rec" not in k]
    ws = [straight_through(torch.from_numpy(q.nodes[s].weight.astype(np.float64)),
                           b[s]["weight"].double() * torch.from_numpy(fac.weight[s])) for s in syn]
    rec = [k for k in syn_all(q) if "rec" in k]
    w_rec = [straight_through(torch.from_numpy(q.nodes[k].weight.astype(np.float64)),
                              b[k]["weight"].double() * torch.from_numpy(fac.weight[k])) for k in rec]
    biases = []
    for s, p in zip(syn, names):
        node = q.nodes[p]
        exact = torch.from_numpy(np.asarray(node.bias if target == "loihi" else node.i_offset, np.float64))
        proxy = b[s]["bias"].double() * torch.from_numpy(fac.bias[p][s])
        biases.append(straight_through(exact * (64 if target == "loihi" else 1), proxy * (64 if target == "loihi"
                                                                                           else 1)))
    steps = x.shape[0] + 2
    xin = torch.cat([x.double(), torch.zeros(2, *x.shape[1:], dtype=torch.float64)])
    a = torch.cat([torch.zeros(1, x.shape[1], ws[0].shape[0], dtype=torch.float64), xin[:-1] @ ws[0].t()])
    outs = []
    for li, (p, bias) in enumerate(zip(names, biases)):
        node = q.nodes[p]
        s1 = s2 = torch.zeros(x.shape[1], a.shape[2], dtype=torch.float64)
        seq = []
        for t in range(steps):
            a_t = a[t]
            if li == 0 and w_rec and t > 0:
                a_t = a_t + seq[-1].double() @ w_rec[0].t()
            if target == "loihi":
                cu = torch.from_numpy((4096.0 - node.i_decay.astype(np.float64)) / 4096)
                cv = torch.from_numpy((4096.0 - node.v_decay.astype(np.float64)) / 4096)
                trunc = lambda y: y + (torch.trunc(y) - y).detach()  # noqa: E731 - exact for these magnitudes
                s1 = trunc(s1 * cu) + 64 * a_t
                v_pre = trunc(s2 * cv) + s1 + bias
                unit = 64 * node.scale
                th = torch.from_numpy(node.vth.astype(np.float64)) * 64
            else:
                v_pre = (torch.from_numpy(node.alpha_decay.astype(np.float32)) * s2.float() + a_t.float()
                         + bias.float())
                unit = node.w_scale
                th = torch.from_numpy(node.threshold.astype(np.float32))
            if node.readout:
                s2 = v_pre
                seq.append(v_pre / unit)
                continue
            z = spike((v_pre - th) / unit, surrogate)
            zr = z.detach() if detach_reset else z
            s2 = v_pre - zr * th if target != "loihi" and node.reset == "subtract" else v_pre * (1 - zr)
            seq.append(z)
        out = torch.stack(seq)
        if li + 1 < len(names):
            a = torch.cat([torch.zeros(1, x.shape[1], ws[li + 1].shape[0], dtype=torch.float64),
                           out[:-1].double() @ ws[li + 1].t()])
        outs.append(out)
    return outs[-1][2:].double()


@pytest.mark.parametrize(("target", "reset"), [("loihi", "zero"), ("spinnaker2", "zero"),
                                               ("spinnaker2", "subtract")])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_handwritten_backward_matches_autograd(target, reset, recurrent, detach_reset):
    """The scan (feed-forward) and step (recurrent component) functions' backward equal autograd through the
    written-out target dynamics: same outputs, same gradients of every weight and bias (to float32 rounding), with
    the spike's surrogate and reset gradient of the neuron module (its own ``surrogate`` and ``detach_reset``)."""
    from spikeseq import surrogate as sg

    torch.manual_seed(19)
    surrogate = sg.ATan(alpha=2.0)
    kw = dict(dt=DT, tau_mem=5e-3, v_th=0.3, reset=reset, detach_reset=detach_reset, surrogate=surrogate)
    first = RLIF(10, 14, **kw) if recurrent else Sequential(nn.Linear(10, 14), LIF(**kw))
    m = Sequential(first, nn.Linear(14, 3), LI(tau_mem=1e-2, dt=DT))
    x = (torch.rand(15, 2, 10, generator=torch.Generator().manual_seed(20)) < 0.5).float()
    params = list(m.parameters())
    y_ref = _reference(m, x, target, surrogate, detach_reset)
    probe = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(21), dtype=torch.float64)
    ref = torch.autograd.grad((y_ref * probe).sum(), params)
    g, b = trace_bound(m, dt=DT)
    y = target_forward(g, b, x, target).output      # each population's own surrogate and reset rule
    assert torch.equal(y.detach().double(), y_ref.detach()) if target == "loihi" else \
        torch.allclose(y.detach().double(), y_ref.detach(), rtol=0, atol=1e-6)
    got = torch.autograd.grad((y.double() * probe).sum(), params)
    assert all(r.abs().sum() > 0 for r in ref)
    # target mode runs its integer synaptic sums as float32 matmuls (exact forward) and SpiNNaker2 states in
    # float32, so its gradients carry float32 rounding (as the float model's); the reference is float64
    for r, o in zip(ref, got):
        torch.testing.assert_close(o.double(), r.double(), rtol=1e-4, atol=1e-5 * float(r.abs().max()))


@pytest.mark.parametrize("target", TARGETS)
def test_mixed_recurrent_component(target):
    """A cycle through a LIF and a CubaLIF population (on SpiNNaker2 a ``lif`` and a ``lif_curr_exp`` model, stepped
    population by population), hand-built IR with leaf tensors bound: identical spikes, gradients reach every leaf."""
    from spikeseq.graph import ir

    g_ = torch.Generator().manual_seed(22)
    w = {k: (torch.randn(*shape, generator=g_) * sc).requires_grad_(True)
         for k, shape, sc in (("w_in", (12, 8), 0.8), ("w_ab", (10, 12), 0.6), ("w_ba", (12, 10), 0.5),
                              ("w_out", (3, 10), 0.5))}
    n = lambda a: a.detach().numpy()  # noqa: E731
    tau = lambda k, v: np.full(k, v)  # noqa: E731
    nodes = {
        "input": ir.Input((8,)), "w_in": ir.Linear(n(w["w_in"])),
        "a": ir.LIF(tau=tau(12, 5e-3), r=np.full(12, 1 / (1 - np.exp(-0.2))), v_threshold=np.full(12, 0.3)),
        "w_ab": ir.Linear(n(w["w_ab"])),
        "b": ir.CubaLIF(tau_syn=tau(10, 3e-3), tau_mem=tau(10, 6e-3), r=np.full(10, 1 / (1 - np.exp(-1 / 6))),
                        w_in=np.full(10, 1 / (1 - np.exp(-1 / 3))), v_threshold=np.full(10, 0.3)),
        "w_ba": ir.Linear(n(w["w_ba"])), "w_out": ir.Linear(n(w["w_out"])),
        "out": ir.LI(tau=tau(3, 1e-2), r=np.full(3, 1 / (1 - np.exp(-0.1)))), "output": ir.Output((3,)),
    }
    edges = [("input", "w_in"), ("w_in", "a"), ("a", "w_ab"), ("w_ab", "b"), ("b", "w_ba"), ("w_ba", "a"),
             ("b", "w_out"), ("w_out", "out"), ("out", "output")]
    g = ir.Graph(nodes, edges, dt=1e-3, metadata={"recurrent_edges": [("w_ba", "a")]})
    bindings = {k: {"weight": v} for k, v in w.items()}
    x = (torch.rand(30, 3, 8, generator=g_) < 0.4).float()
    res = target_forward(g, bindings, x, target, record=True)
    _same(res, x.numpy(), target)
    res.output.sum().backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in w.values())


@pytest.mark.parametrize("frac_bits", [None, 4])
def test_graded_population_on_spinnaker2(frac_bits):
    """EGRU-style value events: a graded LIF population (each spike carries its membrane) into a synapse, in a
    recurrent loop and feed-forward. On SpiNNaker2 the payload is ``v' / w_scale`` in float32, or int8 fixed point
    ``round(v' / w_scale * 2**4)`` with ``payload_frac_bits=4``: target mode sends exactly the interpreter's payloads
    (every value equal), and the payload's value reaches the gradient."""
    from spikeseq.graph import ir

    g_ = torch.Generator().manual_seed(23)
    w = {k: (torch.randn(*shape, generator=g_) * sc).requires_grad_(True)
         for k, shape, sc in (("w_in", (12, 8), 0.8), ("w_rec", (12, 12), 0.3), ("w_out", (3, 12), 0.5))}
    n = lambda a: a.detach().numpy()  # noqa: E731
    nodes = {
        "input": ir.Input((8,)), "w_in": ir.Linear(n(w["w_in"])),
        "a": ir.LIF(tau=np.full(12, 5e-3), r=np.full(12, 1 / (1 - np.exp(-0.2))), v_threshold=np.full(12, 0.3),
                    graded=True),
        "w_rec": ir.Linear(n(w["w_rec"])), "w_out": ir.Linear(n(w["w_out"])),
        "out": ir.LI(tau=np.full(3, 1e-2), r=np.full(3, 1 / (1 - np.exp(-0.1)))), "output": ir.Output((3,)),
    }
    edges = [("input", "w_in"), ("w_in", "a"), ("a", "w_rec"), ("w_rec", "a"), ("a", "w_out"), ("w_out", "out"),
             ("out", "output")]
    g = ir.Graph(nodes, edges, dt=1e-3, metadata={"recurrent_edges": [("w_rec", "a")]})
    x = (torch.rand(30, 3, 8, generator=g_) < 0.4).float()
    res = target_forward(g, {k: {"weight": v} for k, v in w.items()}, x, "spinnaker2", record=True,
                         payload_frac_bits=frac_bits)
    sim = simulate(res.graph, x.numpy(), numerics="spinnaker2")
    assert res.graph.nodes["a"].graded and res.graph.nodes["a"].sends("spikes") == "graded"
    a, b = res.traces["a"].detach().numpy(), sim.traces["a"]
    assert np.array_equal(a, b) and (b > 0.3).sum() > 10 and not np.isin(b, (0.0, 1.0)).all()
    if frac_bits is not None:   # int8 payloads; the synapses they feed were divided by 2**4 before quantising
        assert np.array_equal(b, np.round(b)) and np.abs(b).max() <= 127 and (b[b != 0] > 0.3 * 16 - 1).all()
        q_float = target_forward(g, {}, x, "spinnaker2").graph   # W / 2**4, then the usual int8 scale: same
        np.testing.assert_array_equal(res.graph.nodes["w_out"].weight, q_float.nodes["w_out"].weight)  # integers,
        assert res.graph.nodes["out"].w_scale == pytest.approx(16 * q_float.nodes["out"].w_scale)    # 16x scale
    np.testing.assert_allclose(res.output.detach().numpy(), sim.output, rtol=0, atol=1e-5)
    res.output.sum().backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in w.values())
    # Loihi's export sends binary spikes: a graded population is refused by name
    with pytest.raises(Exception, match=r"'a'.*graded.*loihi"):
        target_forward(g, {}, x, "loihi")


def test_graded_population_gradient_matches_autograd():
    """The graded event ``z * v' / w`` differentiates as ``z / w + v' / w * surrogate``: the hand-written backward
    equals autograd through the written-out SpiNNaker2 dynamics (float32 rounding)."""
    from spikeseq.graph import ir
    from spikeseq.surrogate import DEFAULT, spike

    g_ = torch.Generator().manual_seed(3)
    w_in = torch.randn(6, 5, generator=g_).requires_grad_(True)
    nodes = {"input": ir.Input((5,)), "w_in": ir.Linear(w_in.detach().numpy()),
             "a": ir.LIF(tau=np.full(6, 5e-3), r=np.full(6, 1 / (1 - np.exp(-0.2))), v_threshold=np.full(6, 0.3),
                         graded=True),
             "w_out": ir.Linear(np.eye(6)[:2]),
             "out": ir.LI(tau=np.full(2, 1e-2), r=np.full(2, 1 / (1 - np.exp(-0.1)))), "output": ir.Output((2,))}
    edges = [("input", "w_in"), ("w_in", "a"), ("a", "w_out"), ("w_out", "out"), ("out", "output")]
    g = ir.Graph(nodes, edges, dt=1e-3)
    x = (torch.rand(20, 2, 5, generator=g_) < 0.5).float()
    res = target_forward(g, {"w_in": {"weight": w_in}}, x, "spinnaker2", record=True)
    got = torch.autograd.grad(res.traces["a"].sum(), w_in)[0]
    q, fac = quantize_with_factors(g, "spinnaker2")
    w = straight_through(torch.from_numpy(q.nodes["w_in"].weight.astype(np.float32)),
                         w_in * torch.from_numpy(fac.weight["w_in"]).float())
    node = q.nodes["a"]
    alpha = torch.from_numpy(node.alpha_decay.astype(np.float32))
    th = torch.from_numpy(node.threshold.astype(np.float32))
    ws = float(np.float32(node.w_scale))
    a = torch.cat([torch.zeros(1, 2, 6), x @ w.t(), torch.zeros(1, 2, 6)])      # one hop: a[t] = W x[t - 1]
    v, outs = torch.zeros(2, 6), []
    for t in range(a.shape[0]):
        v_pre = alpha * v + a[t]
        z = spike((v_pre - th) / ws, DEFAULT)
        outs.append(z * v_pre / ws)
        v = v_pre * (1 - z.detach())
    ref = torch.stack(outs)[1:21]
    torch.testing.assert_close(ref.detach(), res.traces["a"].detach(), rtol=1e-6, atol=0)
    assert (ref > 0).sum() > 10
    torch.testing.assert_close(got, torch.autograd.grad(ref.sum(), w_in)[0], rtol=1e-4, atol=1e-4)
