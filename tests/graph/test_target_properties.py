"""Target mode on networks and inputs the other tests do not use: random networks built from every nn block trace
lowers (Linear with/without bias, Conv2d/Conv1d, BatchNorm folded, LIF/IF/CubaLIF/LI, RLIF, DelayLinear, nested
Sequential), both resets, spike / integer count / real inputs, batch 1 and odd, T = 1, large and tiny weights, large
counts that wrap/saturate Loihi's state, weight exponents and payload widths. Each case asserts identical spikes on
every neuron node (readouts to float rounding) against the bit-exact interpreter on the graph the *exporter* builds
(``trace`` -> ``scale_input_synapses`` -> ``quantize``, traced separately), and that gradients reach every trainable
parameter. Bad input (NaN/Inf parameters or data, empty batches, out-of-range settings) is a spikeseq error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeseq.errors import ConfigError, DTypeError, ShapeError
from spikeseq.graph import simulate
from spikeseq.graph.quantize import quantize, quantize_input, scale_input_synapses
from spikeseq.graph.target_mode import TargetMode, TargetSettings, target_mode
from spikeseq.graph.trace import trace
from spikeseq.nn import IF, LI, LIF, CubaLIF, DelayLinear, Sequential
from spikeseq.nn.recurrent import RLIF

DT = 1e-3
TARGETS = ("loihi", "spinnaker2")


def _neuron(rng: np.random.Generator, reset: str) -> nn.Module:
    th = float(rng.choice([0.05, 0.3, 1.0, 5.0]))
    kind = int(rng.integers(3))
    if kind == 0:
        return LIF(tau_mem=float(rng.uniform(2e-3, 2e-2)), dt=DT, v_th=th, reset=reset)
    if kind == 1:
        return IF(dt=DT, v_th=th, reset=reset)
    return CubaLIF(tau_syn=float(rng.uniform(2e-3, 1e-2)), tau_mem=float(rng.uniform(2e-3, 2e-2)), dt=DT, v_th=th,
                   reset=reset)


def _network(seed: int, reset: str) -> tuple[nn.Module, tuple[int, ...], np.random.Generator, str]:
    """A random traceable network, its per-sample input shape, the generator (for the inputs) and its front."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    front = ("linear", "conv2d", "conv1d", "delay", "rlif")[seed % 5]
    n_in = int(rng.integers(3, 20))
    shape: tuple[int, ...] = (n_in,)
    if front == "conv2d":
        c = int(rng.integers(1, 3))
        shape = (c, 6, 6)
        layers: list[nn.Module] = [nn.Conv2d(c, 3, 3, padding=1, bias=bool(rng.integers(2)))]
        if rng.integers(2):
            layers.append(nn.BatchNorm2d(3))
        layers += [_neuron(rng, reset), nn.Flatten()]
        width = 3 * 6 * 6
    elif front == "conv1d":
        shape = (2, 9)
        layers = [nn.Conv1d(2, 4, 3, stride=2, bias=bool(rng.integers(2))), _neuron(rng, reset), nn.Flatten()]
        width = 4 * 4
    elif front == "delay":
        dl = DelayLinear(n_in, 10, max_delay=3, bias=bool(rng.integers(2)), learn_delay=False)
        with torch.no_grad():
            dl.delay.copy_(torch.randint(0, 4, dl.delay.shape).float())
            dl.weight.mul_(3.0)
        layers, width = [dl, _neuron(rng, reset)], 10
    elif front == "rlif":
        layers, width = [RLIF(n_in, 12, dt=DT, tau_mem=5e-3, v_th=0.3, reset=reset)], 12
    else:
        layers, width = [], n_in
    for _ in range(int(rng.integers(0, 3))):
        out = int(rng.integers(2, 15))
        layers.append(nn.Linear(width, out, bias=bool(rng.integers(2))))
        if rng.integers(3) == 0:
            layers.append(nn.BatchNorm1d(out))
        layers.append(_neuron(rng, reset))
        width = out
    layers += [nn.Linear(width, 3, bias=bool(rng.integers(2))), LI(tau_mem=float(rng.uniform(3e-3, 3e-2)), dt=DT)]
    gain = float(rng.choice([1.0, 10.0, 1e-3]))      # the per-population scale must absorb any weight size
    with torch.no_grad():
        for m in layers:
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
            for name, p in m.named_parameters(recurse=True):
                if p.dim() >= 2 and "delay" not in name:
                    p.mul_(gain)
    model = Sequential(*layers) if rng.integers(2) else Sequential(Sequential(*layers[:2]),
                                                                     Sequential(*layers[2:]))
    return model.eval(), shape, rng, front


def _case(seed: int, target: str):
    """(model, settings, x, payloads the interpreter gets) of one random case."""
    reset = "subtract" if seed % 3 == 0 else "zero"
    model, shape, rng, front = _network(seed, reset)
    steps, batch = int(rng.choice([1, 2, 17])), int(rng.choice([1, 3]))
    kind = ("spikes", "counts", "real")[(seed // 5) % 3]
    if kind == "spikes":
        x = (torch.rand(steps, batch, *shape) < 0.4).float()
    elif kind == "counts":   # mostly nonzero counts; x1000 wraps u / saturates v on Loihi
        x = torch.randint(0, 4, (steps, batch, *shape)).float() * float(rng.choice([1, 1000]))
    else:
        x = torch.randn(steps, batch, *shape) * float(rng.choice([1.0, 50.0]))
    kw: dict = {}
    if target == "loihi":
        kw["weight_exp"] = int(rng.integers(0, 4))
        if reset == "subtract":
            kw["reset_policy"] = "zero"
        if kind == "real":
            kw["input_bits"] = int(rng.choice([8, 16, 24]))
            kw["input_frac_bits"] = int(rng.integers(0, kw["input_bits"] - 2))
    settings = TargetSettings(target, **kw)
    xs = x.double().numpy()
    if settings.input_frac_bits is not None:
        xs = quantize_input(xs, settings.input_frac_bits, settings.input_bits)
    return model, settings, x, xs, shape


def _exported(model, settings: TargetSettings, shape) -> object:
    """The graph ``spikeseq export`` writes for these settings, traced and quantised independently."""
    g = trace(model, dt=DT, input_shape=shape, input_payload="graded")
    if settings.input_frac_bits is not None:
        g = scale_input_synapses(g, settings.input_frac_bits)
    return quantize(g, settings.target, **settings.quantize_kwargs())


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("seed", range(30))
def test_random_network_spikes_identical_and_gradients_reach_every_parameter(seed, target):
    model, settings, x, xs, shape = _case(seed, target)
    tm = TargetMode(model, settings)
    res, _ = tm.run(x, record=True)
    q = _exported(model, settings, shape)
    sim = simulate(q, xs, numerics=target)
    assert set(res.traces) == {n for n, node in q.nodes.items() if node.role == "neuron"}
    for name, tr in res.traces.items():
        a, b = tr.detach().numpy(), sim.traces[name]
        if getattr(q.nodes[name], "readout", False):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * max(1.0, float(np.abs(b).max())))
        else:
            assert np.array_equal(a, b), f"{name}: {int((a != b).sum())} of {a.size} spikes differ"
    y, _ = tm(x)
    assert y.shape == (x.shape[0], x.shape[1], 3)
    (y * torch.linspace(-1.0, 1.0, 3)).sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"no gradient reaches {name}"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"
    readout = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    (syn,) = q.predecessors(next(n for n, node in q.nodes.items() if getattr(node, "readout", False)))
    pre = q.predecessors(syn)
    while pre and pre[0] not in res.traces and q.predecessors(pre[0]):   # through Flatten
        pre = q.predecessors(pre[0])
    if pre[0] in res.traces and res.traces[pre[0]].any():   # the readout saw spikes: its weights learn
        assert readout.weight.grad.abs().sum() > 0


def test_the_random_cases_exercise_spikes_and_wrap():
    """The random cases are not trivial: most spiking populations spike, and some Loihi state hits the 24-bit
    range (u wraps / v saturates)."""
    spiking = active = 0
    big = False
    for seed in range(30):
        model, settings, x, xs, shape = _case(seed, "loihi")
        sim = simulate(_exported(model, settings, shape), xs, numerics="loihi")
        for name, tr in sim.traces.items():
            if tr.max() in (0.0, 1.0) and not name.endswith("_li"):
                spiking += 1
                active += bool(tr.any())
        big = big or float(np.abs(xs).max()) * 254 * 64 >= 2**23
    assert spiking >= 30 and active >= 0.6 * spiking, (active, spiking)
    assert big


@pytest.mark.parametrize("target", TARGETS)
def test_delay_layer_fed_mostly_nonzero_counts(target):
    """Regression: the interpreter refused per-synapse delays fed by dense (mostly nonzero) integer counts although
    target mode ran them; every nonzero value is a graded event for the delays."""
    torch.manual_seed(0)
    dl = DelayLinear(6, 8, max_delay=3, bias=False, learn_delay=False)
    with torch.no_grad():
        dl.delay.copy_(torch.randint(0, 4, dl.delay.shape).float())
    model = Sequential(dl, LIF(tau_mem=5e-3, dt=DT, v_th=0.3, reset="zero"), nn.Linear(8, 2),
                       LI(tau_mem=1e-2, dt=DT)).eval()
    x = torch.randint(1, 4, (12, 2, 6)).float()            # every value nonzero: a "dense" array
    tm = TargetMode(model, TargetSettings(target))
    res, _ = tm.run(x, record=True)
    q = _exported(model, tm.settings, (6,))
    sim = simulate(q, x.double().numpy(), numerics=target)
    lif = next(n for n in res.traces if "lif" in n)
    assert res.traces[lif].sum() > 0
    assert np.array_equal(res.traces[lif].detach().numpy(), sim.traces[lif])
    delay = next(n for n in sim.synops if "delay" in n)
    fanout = (q.nodes[delay].weight != 0).sum(0)     # one event per (nonzero) value, times its fan-out
    assert sim.synops[delay] == int(((x != 0).sum((0, 1)).numpy() * fanout).sum()) > 0


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return Sequential(nn.Linear(4, 8), LIF(tau_mem=0.01, dt=DT, v_th=0.3, reset="zero"), nn.Linear(8, 2),
                      LI(tau_mem=0.02, dt=DT))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("where", ["weight", "bias"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_parameters_are_named_before_training(target, where, value):
    model = _mlp()
    with torch.no_grad():
        getattr(model.layers[2], where).view(-1)[0] = value
    with pytest.raises(ConfigError, match=f"'{target}'.*NaN or Inf"):
        target_mode(model, target)


@pytest.mark.parametrize("target", TARGETS)
def test_non_finite_and_empty_inputs_are_refused(target):
    tm = target_mode(_mlp(), target)
    for bad in (float("nan"), float("inf")):
        x = torch.zeros(4, 2, 4)
        x[1, 0, 2] = bad
        with pytest.raises(DTypeError, match="NaN or Inf"):
            tm(x)
    with pytest.raises(ShapeError, match="at least one step and one sample"):
        tm(torch.zeros(0, 2, 4))
    with pytest.raises(ShapeError, match="at least one step and one sample"):
        tm(torch.zeros(3, 0, 4))


def test_fractional_inputs_on_loihi_need_input_frac_bits():
    tm = target_mode(_mlp(), "loihi")
    with pytest.raises(DTypeError, match="input_frac_bits"):
        tm(torch.full((3, 1, 4), 0.5))
    tm = target_mode(_mlp(), "loihi", input_frac_bits=3)
    with pytest.raises(DTypeError, match="NaN or Inf"):
        tm(torch.full((3, 1, 4), float("inf")))


@pytest.mark.parametrize("kw, match", [({"input_bits": 40}, "input_bits must be in 2..24"),
                                       ({"input_bits": 1}, "input_bits must be in 2..24"),
                                       ({"input_frac_bits": 2.5}, "input_frac_bits must be a whole number")])
def test_out_of_range_input_settings(kw, match):
    with pytest.raises(ConfigError, match=match):
        target_mode(_mlp(), "loihi", **kw)
    with pytest.raises(ConfigError, match="input_frac_bits is a Loihi setting"):
        TargetSettings("spinnaker2", input_frac_bits=3)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.float64])
def test_integer_and_double_input_tensors(target, dtype):
    """Regression: integer input tensors (uint8 spikes, int64 counts) gave an integer readout, truncated and cut off
    from autograd; the readout is float (the input's dtype when that is float) with gradients."""
    model = _mlp()
    x = (torch.rand(8, 3, 4, generator=torch.Generator().manual_seed(1)) < 0.5).float() * 2
    tm = target_mode(model, target)
    ref, _ = tm(x)
    y, _ = tm(x.to(dtype))
    assert y.dtype == (torch.float64 if dtype == torch.float64 else torch.get_default_dtype())
    assert torch.equal(y.to(ref.dtype), ref)
    assert y.requires_grad and ref.abs().max() > 0 and torch.frac(ref).any()
    y.sum().backward()
    assert model.layers[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("first", ["layernorm", "egru", "torch_sequential"])
def test_untraceable_first_member_is_named_at_construction(target, first):
    """Regression: with no input shape to infer (first member not a Linear/RLIF/DelayLinear), the check was skipped
    and the error came only at the first forward pass (for ``spikeseq train``: after the run directory existed)."""
    from spikeseq.nn import EGRU

    tail = [nn.Linear(6, 2), LI(tau_mem=0.02, dt=DT)]
    if first == "layernorm":
        model, where = Sequential(nn.LayerNorm(4), nn.Linear(4, 6), LIF(tau_mem=0.01, dt=DT, reset="zero"), *tail), \
            "model.layers.0 of type LayerNorm"
    elif first == "egru":
        model, where = Sequential(Sequential(EGRU(4, 6)), *tail), "model.layers.0.layers.0 of type EGRU"
    else:
        model, where = nn.Sequential(nn.Linear(4, 6), LIF(tau_mem=0.01, dt=DT, reset="zero"), *tail), \
            "model of type Sequential"
    with pytest.raises(ConfigError, match=f"target mode '{target}'.*cannot run on {target}: member {where}"):
        target_mode(model, target)


@pytest.mark.parametrize("target", TARGETS)
def test_model_without_time_step_names_its_member_and_the_target(target):
    """A model with no dt (a GRU): the error names the member and the target, not only the missing dt."""
    with pytest.raises(ConfigError, match=f"target mode '{target}'.*member model.layers.0 of type GRU"):
        target_mode(Sequential(nn.GRU(4, 6), nn.Linear(6, 2)), target)
    with pytest.raises(ConfigError, match=f"target mode '{target}'.*no module with a time step dt"):
        target_mode(Sequential(nn.Linear(4, 6), nn.Linear(6, 2)), target)


def test_readout_weight_gradient_is_the_finite_difference_of_the_exported_graph():
    """SpiNNaker2 (float32 readout, linear in its int8 weights given the spikes): the straight-through gradient of
    every readout weight equals ``factor * (y(w_q + h) - y(w_q)) / h`` of the bit-exact interpreter on the exported
    graph (``h = 64`` integer steps of that weight), ``factor`` the quantisation scale of the weight's row."""
    import dataclasses

    from spikeseq.graph import ir
    from spikeseq.graph.quantize import quantize_with_factors

    torch.manual_seed(0)
    model = Sequential(nn.Linear(6, 8), LIF(tau_mem=5e-3, dt=DT, v_th=0.3, reset="zero"), nn.Linear(8, 3),
                       LI(tau_mem=1e-2, dt=DT))
    x = (torch.rand(12, 2, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    probe = torch.randn(12, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y, _ = target_mode(model, "spinnaker2")(x)
    (y.double() * probe).sum().backward()
    q, factors = quantize_with_factors(trace(model, dt=DT), "spinnaker2")
    base = simulate(q, x.numpy(), numerics="spinnaker2").traces["3_li"]
    w, fac = q.nodes["2_affine"].weight, np.asarray(factors.weight["2_affine"]).reshape(-1)
    nonzero = 0
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            w2 = w.copy()
            w2[i, j] += 64     # a large step: the readout is linear in it, float32 rounding stays small
            nodes = dict(q.nodes, **{"2_affine": dataclasses.replace(q.nodes["2_affine"], weight=w2)})
            q2 = ir.Graph(nodes, list(q.edges), dt=q.dt, discretization=q.discretization, metadata=q.metadata)
            fd = float(((simulate(q2, x.numpy(), numerics="spinnaker2").traces["3_li"] - base)
                        * probe.numpy()).sum()) * float(fac[i]) / 64
            ste = float(model.layers[2].weight.grad[i, j])
            assert ste == pytest.approx(fd, rel=1e-4, abs=1e-7), (i, j)   # float32 parameter gradient
            nonzero += fd != 0
    assert nonzero >= 12
