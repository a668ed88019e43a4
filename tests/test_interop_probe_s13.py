"""Differential probe against snnTorch, Norse, SpikingJelly, NIR importers and NeuroBench on networks and parameters
the other interop tests do not use. Each test states the exact mapping between the two libraries.

Neurons (float64, exact up to float rounding):
- snnTorch ``Leaky(reset_mechanism="subtract", reset_delay=False)`` == our LIF "subtract" as long as the membrane
  after a reset stays <= v_th (v_pre < 2 v_th): snnTorch subtracts a pending reset before it tests the threshold,
  so from v > v_th after a reset it fires only above 2 v_th. Its delayed "subtract" equals ours at beta = 1 (IF).
- snnTorch ``Synaptic(reset_mechanism="subtract", reset_delay=False)`` == our CubaLIF "subtract" (same bound).
- SpikingJelly ``LIFNode(tau)``: beta = 1 - 1/tau, input x/tau (``decay_input=True``) or x; ``v_reset=None`` is
  our "subtract", ``v_reset=0`` our "zero". SpikingJelly fires at v >= v_th, we at v > v_th (equality differs).
- Norse ``LIFCell`` (the current jump lands before the membrane step): our CubaLIF with alpha = 1 - dt/tau_syn,
  beta = 1 - dt/tau_mem and input dt/tau_mem * x; Norse's stored current is alpha * our i * tau_mem / dt.
- Norse ``LIBoxCell`` == our LI on dt/tau * x; Norse ``IAFCell`` == our IF "zero".

NIR:
- spikeseq conv nets (Conv2d with/without bias, stride 2, LIF / CubaLIF) reach snnTorch (nir_dt = 1e-4) and Norse
  (``convention="norse"``, r folded into the convolution's output channels) with the same spikes.
- Norse 1.1 ``to_nir`` writes ``tau = dt / tau_inv`` (a unit slip: tau should be ``1 / tau_inv``), so its LIF
  box graphs replay exactly with ``from_nir(dt=dt**2)``; its ``LIFCell`` / ``IAFCell`` add inputs as jumps but are
  written with ``w_in = 1`` / ``r = 1``, which under NIR's Euler reading scales the input by dt/tau_syn (dt): the
  files replay once ``w_in = tau_syn / dt`` and ``r = 1 / dt`` are written in (NIR's spike-amplitude ambiguity,
  targets.md 1.3).
- Norse's ``IAFCell`` import ignores r and dt (``v += x``), so a spikeseq IF (r = 1/dt) reaches it with the incoming
  weights scaled by r * dt and r = 1.

NeuroBench 2.3: conv2d + Synaptic, batch 1 and uneven last batches, weight sparsity, ternary and real one-hot
inputs; NeuronOperations is the float 0.0 whenever a neuron layer has no NeuroBench cost (RSynaptic, RLeaky,
reset "none"), as NeuroBench's manager reports it.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from spikeseq import functional as F
from spikeseq import profile
from tests.export.test_nir import run_stepped

D = torch.float64


def _trace_lif(x, beta, v_th, reset):
    v, zs, vs = None, [], []
    for t in range(x.shape[0]):
        z, v = F.lif_step(x[t], v, beta=beta, v_th=v_th, reset=reset)
        zs.append(z)
        vs.append(v.v)
    return torch.stack(zs), torch.stack(vs)


def _trace_cuba(x, alpha, beta, v_th, reset):
    s, zs, vs, cs = None, [], [], []
    for t in range(x.shape[0]):
        z, s = F.cuba_lif_step(x[t], s, alpha=alpha, beta=beta, v_th=v_th, reset=reset)
        zs.append(z)
        vs.append(s.v)
        cs.append(s.i)
    return torch.stack(zs), torch.stack(vs), torch.stack(cs)


def _snn_leaky(snn, x, beta, th, reset, delay):
    cell = snn.Leaky(beta=torch.as_tensor(beta, dtype=D), threshold=torch.as_tensor(th, dtype=D),
                     reset_mechanism=reset, reset_delay=delay)
    mem, s, m = torch.zeros_like(x[0]), [], []
    for t in range(x.shape[0]):
        z, mem = cell(x[t], mem)
        s.append(z.to(D))
        m.append(mem)
    return torch.stack(s), torch.stack(m)


# ----------------------------------------------------------------------------------------------------- neurons
@pytest.mark.parametrize("beta", [0.0, 1e-4, 0.2, 0.9, 0.999, 0.99999])
def test_lif_subtract_equals_snntorch_leaky_without_reset_delay(beta):
    snn = pytest.importorskip("snntorch")
    g = torch.Generator().manual_seed(int(beta * 1e5))
    th = 0.75   # a float32 value: snnTorch's reset multiplies its float32 spike by the threshold in float32
    # x < (1.95 - beta) v_th and v <= v_th after a reset: v_pre stays below 2 v_th
    x = (torch.rand(400, 2, 9, generator=g, dtype=D) * (2.95 - beta) - 1.0) * th
    z, v = _trace_lif(x, torch.tensor(beta, dtype=D), th, "subtract")
    s, m = _snn_leaky(snn, x, beta, th, "subtract", False)
    assert 0.005 < z.mean() < 0.6
    assert torch.equal(z, s)
    torch.testing.assert_close(m, v, atol=1e-12, rtol=0)


def test_if_subtract_equals_snntorch_delayed_subtract_at_beta_one():
    snn = pytest.importorskip("snntorch")
    g = torch.Generator().manual_seed(7)
    x = torch.randn(500, 1, 11, generator=g, dtype=D) * 0.4 + 0.05
    z, v = _trace_lif(x, torch.tensor(1.0, dtype=D), 0.875, "subtract")   # float32 threshold, as above
    s, m = _snn_leaky(snn, x, 1.0, 0.875, "subtract", True)
    assert z.sum() > 50
    assert torch.equal(z, s)
    # snnTorch's delayed reset keeps the pre-reset membrane: ours is v + z * v_th
    torch.testing.assert_close(m, v + z * 0.875, atol=1e-12, rtol=0)


@pytest.mark.parametrize("reset", ["zero", "none"])
@pytest.mark.parametrize("beta", [0.0, 1e-4, 0.99999, 1.0])
def test_lif_extreme_betas_equal_snntorch_leaky(reset, beta):
    snn = pytest.importorskip("snntorch")
    g = torch.Generator().manual_seed(3)
    th = torch.linspace(0.2, 1.8, 7, dtype=D)   # per-neuron thresholds
    x = torch.randn(600, 1, 7, generator=g, dtype=D) * 0.3 + 0.05
    z, v = _trace_lif(x, torch.tensor(beta, dtype=D), th, reset)
    s, m = _snn_leaky(snn, x, beta, th, reset, False)
    assert z.sum() > 5
    assert torch.equal(z, s)
    torch.testing.assert_close(m, v, atol=1e-9, rtol=0)


@pytest.mark.parametrize("alpha,beta", [(0.0, 1.0), (0.5, 0.3), (0.95, 0.9), (0.8, 0.5)])
def test_cuba_subtract_equals_snntorch_synaptic(alpha, beta):
    snn = pytest.importorskip("snntorch")
    g = torch.Generator().manual_seed(11)
    th = 0.625   # float32 value (snnTorch's float32 reset term)
    # |i| < 0.96 v_th, so v_pre < 2 v_th after any reset (the range where snnTorch's subtract is ours)
    x = (torch.rand(300, 3, 7, generator=g, dtype=D) * 1.2 - 0.24) * th * (1 - alpha)
    z, v, i = _trace_cuba(x, torch.tensor(alpha, dtype=D), torch.tensor(beta, dtype=D), th, "subtract")
    cell = snn.Synaptic(alpha=torch.tensor(alpha, dtype=D), beta=torch.tensor(beta, dtype=D),
                        threshold=torch.tensor(th, dtype=D), reset_mechanism="subtract", reset_delay=False)
    syn, mem, S, I, M = torch.zeros_like(x[0]), torch.zeros_like(x[0]), [], [], []
    for t in range(x.shape[0]):
        s, syn, mem = cell(x[t], syn, mem)
        S.append(s.to(D))
        I.append(syn)
        M.append(mem)
    assert z.sum() > 5
    assert torch.equal(z, torch.stack(S))
    torch.testing.assert_close(torch.stack(I), i, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.stack(M), v, atol=1e-12, rtol=0)


@pytest.mark.parametrize("tau", [1.0001, 1.5, 10.0, 1000.0])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("v_reset", [None, 0.0])
def test_lif_equals_spikingjelly_lifnode(tau, decay_input, v_reset):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron

    g = torch.Generator().manual_seed(5)
    th = 0.6
    node = neuron.LIFNode(tau=tau, decay_input=decay_input, v_threshold=th, v_reset=v_reset, step_mode="m",
                          store_v_seq=True)
    gain = (1.0 + tau) if decay_input else 0.5   # enough drive to spike for every tau
    x = torch.randn(300, 2, 9, generator=g, dtype=D) * th * gain + 0.2 * th * gain
    s = node(x)
    xin = x / tau if decay_input else x
    z, v = _trace_lif(xin, torch.tensor(1 - 1 / tau, dtype=D), th, "subtract" if v_reset is None else "zero")
    assert z.sum() > 5
    assert torch.equal(z, s)
    torch.testing.assert_close(node.v_seq, v, atol=1e-12, rtol=0)


@pytest.mark.parametrize("v_reset", [None, 0.0])
def test_if_equals_spikingjelly_ifnode_and_threshold_equality_differs(v_reset):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron

    g = torch.Generator().manual_seed(6)
    x = torch.randn(400, 4, 5, generator=g, dtype=D) * 0.5
    node = neuron.IFNode(v_threshold=0.8, v_reset=v_reset, step_mode="m", store_v_seq=True)
    s = node(x)
    z, v = _trace_lif(x, torch.tensor(1.0, dtype=D), 0.8, "subtract" if v_reset is None else "zero")
    assert z.sum() > 20
    assert torch.equal(z, s)
    torch.testing.assert_close(node.v_seq, v, atol=1e-12, rtol=0)
    # documented convention difference: SpikingJelly fires at v == v_th, spikeseq (like NIR, snnTorch) does not
    eq = torch.tensor([[[0.5]], [[0.5]], [[0.25]]], dtype=D)
    assert neuron.IFNode(v_threshold=1.0, v_reset=v_reset, step_mode="m")(eq).flatten().tolist() == [0, 1, 0]
    assert F.if_scan(eq, v_th=1.0, reset="zero")[0].flatten().tolist() == [0, 0, 1]


@pytest.mark.parametrize("tau_syn_inv,tau_mem_inv", [(200.0, 100.0), (999.0, 999.0), (1.0, 2.0), (500.0, 50.0)])
def test_cuba_equals_norse_lifcell(tau_syn_inv, tau_mem_inv):
    pytest.importorskip("norse")
    from norse.torch import LIFCell, LIFParameters

    dt, th = 1e-3, 0.5
    c = lambda v: torch.tensor(v, dtype=D)  # noqa: E731
    cell = LIFCell(LIFParameters(tau_syn_inv=c(tau_syn_inv), tau_mem_inv=c(tau_mem_inv), v_leak=c(0.0),
                                 v_th=c(th), v_reset=c(0.0)), dt=dt)
    g = torch.Generator().manual_seed(int(tau_syn_inv))
    x = torch.randn(300, 3, 6, generator=g, dtype=D) * 3 * th * (1 + 1 / (dt * tau_mem_inv) / 10)
    st, Z, V, I = None, [], [], []
    for t in range(x.shape[0]):
        zt, st = cell(x[t], st)
        Z.append(zt)
        V.append(st.v)
        I.append(st.i)
    kv = dt * tau_mem_inv
    alpha = c(1 - dt * tau_syn_inv)
    z, v, i = _trace_cuba(kv * x, alpha, c(1 - kv), th, "zero")
    assert z.sum() > 5
    assert torch.equal(z, torch.stack(Z))
    torch.testing.assert_close(torch.stack(V), v, atol=1e-12, rtol=0)
    torch.testing.assert_close(kv * torch.stack(I), alpha * i, atol=1e-12, rtol=0)


def test_li_and_if_equal_norse_libox_and_iaf():
    pytest.importorskip("norse")
    from norse.torch import IAFCell, LIBoxCell
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.leaky_integrator_box import LIBoxParameters

    dt, tau_inv = 1e-3, 350.0
    g = torch.Generator().manual_seed(9)
    x = torch.randn(250, 2, 6, generator=g, dtype=D)
    li = LIBoxCell(LIBoxParameters(tau_mem_inv=torch.tensor(tau_inv, dtype=D), v_leak=torch.tensor(0.0, dtype=D)),
                   dt=dt)
    iaf = IAFCell(IAFParameters(v_th=torch.tensor(0.7, dtype=D), v_reset=torch.tensor(0.0, dtype=D)), dt=dt)
    sl = si = None
    ys, zs, vs = [], [], []
    for t in range(x.shape[0]):
        y, sl = li(x[t], sl)
        z, si = iaf(0.3 * x[t], si)
        ys.append(y)
        zs.append(z)
        vs.append(si.v)
    k = dt * tau_inv
    ours, _ = F.li_scan(k * x, beta=torch.tensor(1 - k, dtype=D))
    torch.testing.assert_close(torch.stack(ys), ours, atol=1e-12, rtol=0)
    z, v = _trace_lif(0.3 * x, torch.tensor(1.0, dtype=D), 0.7, "zero")
    assert z.sum() > 10
    assert torch.equal(z, torch.stack(zs))
    torch.testing.assert_close(torch.stack(vs), v, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------------------- NIR
DT = 1e-3


def _conv_net(bias: bool, kind: str):
    from spikeseq import nn as snn

    last = (snn.CubaLIF(tau_syn=2e-3, tau_mem=5e-3, dt=DT, reset="zero", v_th=0.9) if kind == "cuba"
            else snn.LIF(tau_mem=6e-3, dt=DT, reset="zero"))
    m = snn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1, bias=bias), snn.LIF(tau_mem=4e-3, dt=DT, reset="zero",
                                                                                 v_th=0.8),
                       torch.nn.Conv2d(4, 3, 3, stride=2, padding=1, bias=bias), last)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in m.layers:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.8)
                if layer.bias is not None:
                    layer.bias.fill_(0.1)
    return m


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bias,kind", [(False, "lif"), (True, "cuba")])
def test_conv_net_to_snntorch_and_norse(tmp_path, batch, bias, kind):
    pytest.importorskip("snntorch")
    pytest.importorskip("norse")
    import norse.torch as norse
    from snntorch.import_nir import import_from_nir

    from spikeseq.export.nir import read_nir, write_nir
    from spikeseq.graph import trace

    m = _conv_net(bias, kind)
    x = (torch.rand(40, batch, 2, 6, 6, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    with torch.no_grad():
        y = m(x)[0].numpy()
    assert 0.02 < y.mean() < 0.6
    g = trace(m, dt=DT, input_shape=(2, 6, 6))
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snt = import_from_nir(read_nir(write_nir(g, tmp_path / "s.nir", nir_dt=1e-4)))
            nrs = norse.from_nir(read_nir(write_nir(g, tmp_path / "n.nir", convention="norse")), dt=DT)
    finally:
        logging.disable(logging.NOTSET)
    np.testing.assert_array_equal(run_stepped(snt, x), y)
    np.testing.assert_array_equal(run_stepped(nrs, x), y)


def test_norse_convention_refuses_position_dependent_r_under_a_convolution():
    from spikeseq.errors import ExportError
    from spikeseq.export.nir import to_nir
    from spikeseq.graph import ir

    r = np.full((3, 4, 4), 2.0)
    r[0, 0, 0] = 3.0
    g = ir.Graph({"input": ir.Input((1, 4, 4)), "conv": ir.Conv2d((1, 4, 4), np.ones((3, 1, 3, 3)), np.zeros(3),
                                                                    padding=1),
                  "lif": ir.LIF(tau=np.full((3, 4, 4), 5e-3), r=r, v_threshold=np.ones((3, 4, 4))),
                  "output": ir.Output((3, 4, 4))}, [("input", "conv"), ("conv", "lif"), ("lif", "output")], dt=DT)
    with pytest.raises(ExportError, match=r"'lif'.*one r per output channel"):
        to_nir(g, convention="norse")
    r[0, 0, 0] = 2.0   # one r per channel: folded into the kernel, r = 1 written
    ng = to_nir(ir.Graph({**g.nodes, "lif": ir.LIF(tau=np.full((3, 4, 4), 5e-3), r=r,
                                                   v_threshold=np.ones((3, 4, 4)))}, g.edges, dt=DT),
                convention="norse")
    np.testing.assert_array_equal(ng.nodes["lif"].r, np.ones((3, 4, 4)))
    np.testing.assert_array_equal(ng.nodes["conv"].weight, np.full((3, 1, 3, 3), 2.0))


def test_if_to_norse_needs_weights_scaled_by_r_dt(tmp_path):
    """Norse's IAFCell import computes v += x (r and dt ignored); NIR's IF is v' = r I, i.e. v += dt r x under
    Euler. spikeseq writes the NIR reading (r = 1/dt); Norse reproduces it once the weights carry r * dt."""
    pytest.importorskip("norse")
    import norse.torch as norse

    from spikeseq import nn as snn
    from spikeseq.export.nir import to_nir
    from spikeseq.graph import trace

    torch.manual_seed(0)
    m = snn.Sequential(torch.nn.Linear(10, 16), snn.IF(dt=DT, reset="zero", v_th=0.8), torch.nn.Linear(16, 5),
                       snn.LIF(tau_mem=9e-3, dt=DT, reset="zero"))
    with torch.no_grad():
        m[0].weight.mul_(3.0)
        m[2].weight.mul_(4.0)
        m[2].bias.fill_(0.2)
    x = (torch.rand(50, 2, 10, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    with torch.no_grad():
        y = m(x)[0].numpy()
    assert 0.02 < y.mean() < 0.6
    ng = to_nir(trace(m, dt=DT), convention="norse")
    names = {type(n).__name__: k for k, n in ng.nodes.items()}
    assert np.allclose(ng.nodes[names["IF"]].r, 1.0)
    # the convention="norse" file holds W * r = W / dt for the IF layer; Norse needs W * r * dt = W
    aff = next(k for k, n in ng.nodes.items() if type(n).__name__ == "Affine" and (k, names["IF"]) in ng.edges)
    ng.nodes[aff].weight = ng.nodes[aff].weight * DT
    ng.nodes[aff].bias = ng.nodes[aff].bias * DT
    logging.disable(logging.WARNING)
    try:
        net = norse.from_nir(ng, dt=DT)
    finally:
        logging.disable(logging.NOTSET)
    np.testing.assert_allclose(run_stepped(net, x), y, atol=0)


def _norse_net(kind: str):
    from norse.torch import IAFCell, LIBoxCell, LIFBoxCell, LIFCell, LIFParameters, SequentialState
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.leaky_integrator_box import LIBoxParameters
    from norse.torch.functional.lif_box import LIFBoxParameters

    f = lambda n, v: torch.full((n,), float(v))  # noqa: E731 - per-neuron parameters give NIR nodes their shapes

    def box(n, ti, th):
        return LIFBoxCell(LIFBoxParameters(tau_mem_inv=f(n, ti), v_th=f(n, th), v_leak=f(n, 0), v_reset=f(n, 0)))

    def cell(n, ts, tm, th):
        return LIFCell(LIFParameters(tau_syn_inv=f(n, ts), tau_mem_inv=f(n, tm), v_th=f(n, th), v_leak=f(n, 0),
                                     v_reset=f(n, 0)))

    torch.manual_seed(0)
    if kind == "box":
        net = SequentialState(torch.nn.Linear(8, 12), box(12, 200, 0.5), torch.nn.Linear(12, 4, bias=False),
                              box(4, 150, 0.3))
    elif kind == "cell":
        net = SequentialState(torch.nn.Linear(8, 12), cell(12, 300, 150, 0.3), torch.nn.Linear(12, 4),
                              cell(4, 250, 100, 0.2))
    else:
        net = SequentialState(torch.nn.Linear(8, 12), IAFCell(IAFParameters(v_th=f(12, 0.8), v_reset=f(12, 0))),
                              torch.nn.Linear(12, 4), LIBoxCell(LIBoxParameters(tau_mem_inv=f(4, 100), v_leak=f(4, 0))))
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(4.0)
    return net


@pytest.mark.parametrize("kind", ["box", "cell", "iaf_li"])
def test_norse_export_replays_in_spikeseq(kind):
    pytest.importorskip("norse")
    import nir
    import norse.torch as norse

    from spikeseq.export.nir import from_nir
    from spikeseq.graph import simulate

    net = _norse_net(kind)
    x = (torch.rand(40, 2, 8, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    y = run_stepped(net, x)
    ng = norse.to_nir(net, torch.zeros(8))   # Norse writes tau = dt / tau_inv with its dt = 1e-3
    dt = DT * DT                             # the step at which Euler on those taus is Norse's step
    for node in ng.nodes.values():
        if isinstance(node, nir.CubaLIF):    # Norse adds the input current as a jump: gain 1 per spike
            node.w_in = node.tau_syn / dt
        if isinstance(node, nir.IF):         # Norse's IAF: v += x
            node.r = np.full_like(node.r, 1.0 / dt)
    out = simulate(from_nir(ng, dt=dt), x.numpy()).output
    if kind == "iaf_li":
        assert np.abs(y).max() > 0.1
        np.testing.assert_allclose(out, y, atol=1e-5, rtol=1e-4)
    else:
        assert 0.02 < y.mean() < 0.6
        np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize("flatten,synaptic", [(False, True), (True, False), (True, True)])
def test_snntorch_conv_export_to_spikeseq(flatten, synaptic):
    st = pytest.importorskip("snntorch")
    from snntorch import utils as st_utils
    from snntorch.export_nir import export_to_nir

    from spikeseq.export.nir import from_nir
    from spikeseq.graph import simulate

    f = lambda s, v: torch.full(s, float(v))  # noqa: E731
    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(2, 4, 3, padding=1),
              st.Leaky(beta=f((4, 6, 6), 0.7), threshold=f((4, 6, 6), 0.8), init_hidden=True,
                       reset_mechanism="zero", reset_delay=False)]
    if flatten:
        layers += [torch.nn.Flatten(), torch.nn.Linear(144, 5)]
        shp = (5,)
    else:
        layers += [torch.nn.Conv2d(4, 3, 3, stride=2, padding=1, bias=False)]
        shp = (3, 3, 3)
    last = (st.Synaptic(alpha=f(shp, 0.5), beta=f(shp, 0.8), threshold=f(shp, 1.0), init_hidden=True,
                        reset_mechanism="zero", reset_delay=False, output=True) if synaptic else
            st.Leaky(beta=f(shp, 0.9), threshold=f(shp, 1.0), init_hidden=True, reset_mechanism="zero",
                     reset_delay=False, output=True))
    net = torch.nn.Sequential(*layers, last)
    with torch.no_grad():
        for layer in net:
            if hasattr(layer, "weight"):
                layer.weight.mul_(3.0)
    x = (torch.rand(30, 3, 2, 6, 6, generator=torch.Generator().manual_seed(5)) < 0.3).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ng = export_to_nir(net, x[0, :1], ignore_dims=[0])
    st_utils.reset(net)
    with torch.no_grad():
        y = torch.stack([net(x[t])[0] for t in range(x.shape[0])]).numpy()
    assert 0.02 < y.mean() < 0.6
    out = simulate(from_nir(ng, dt=1e-4), x.numpy()).output
    np.testing.assert_array_equal(out, y)


# --------------------------------------------------------------------------------------------------- NeuroBench
def _neurobench(net, x, batch):
    nb_bench = pytest.importorskip("neurobench.benchmarks")
    nb_models = pytest.importorskip("neurobench.models")
    wl = pytest.importorskip("neurobench.metrics.workload")
    nb_static = pytest.importorskip("neurobench.metrics.static")
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=batch, shuffle=False)
    static = [nb_static.ParameterCount, nb_static.ConnectionSparsity, nb_static.Footprint]
    work = [wl.SynapticOperations, wl.ActivationSparsity, wl.MembraneUpdates, wl.NeuronOperations]
    bench = nb_bench.Benchmark(nb_models.SNNTorchModel(net), loader, [], [], [static, work])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bench.run(quiet=True)


def _ours(net, x, batch):
    xt = x.transpose(0, 1)
    return profile.count(net, [xt[:, i:i + batch] for i in range(0, x.shape[0], batch)], run="steps",
                         neurobench=True).neurobench


def _assert_same(ours, theirs):
    # (Footprint counts snnTorch's mem buffers, whose size depends on the last run: not compared here)
    for key in ("SynapticOperations", "ActivationSparsity", "MembraneUpdates", "NeuronOperations",
                "ParameterCount", "ConnectionSparsity"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-9), key


@pytest.mark.parametrize("batch,n,sparsity,reset", [(1, 3, 0.6, "zero"), (2, 5, 0.0, "subtract"),
                                                     (3, 7, 0.9, "zero")])
def test_conv2d_synaptic_network_matches_neurobench(batch, n, sparsity, reset):
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("neurobench")
    from torch import nn

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.lif = snn.Synaptic(alpha=0.5, beta=0.8, init_hidden=True, reset_mechanism=reset)
            self.pool = nn.AvgPool2d(2)
            self.fc = nn.Linear(36, 5)
            self.out = snn.Leaky(beta=0.8, init_hidden=True, output=True, reset_mechanism=reset)

        def forward(self, x):
            return self.out(self.fc(self.pool(self.lif(self.conv(x))).flatten(1)))

    torch.manual_seed(1)
    net = ConvNet()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        net.conv.weight.mul_(3)
        net.conv.weight[torch.rand(net.conv.weight.shape, generator=g) < sparsity] = 0
        net.fc.weight[torch.rand(net.fc.weight.shape, generator=g) < sparsity] = 0
    x = (torch.rand(n, 12, 2, 6, 6, generator=g) < 0.3).float()
    theirs = _neurobench(net, x, batch)
    ours = _ours(net, x, batch)
    assert theirs["SynapticOperations"]["Effective_MACs"] > 0 and theirs["SynapticOperations"]["Effective_ACs"] > 0
    assert isinstance(theirs["NeuronOperations"], dict)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("kind", ["rsynaptic", "rleaky_one_to_one", "reset_none_ternary", "reset_none_onehot"])
def test_uncosted_neurons_give_neurobench_zero_neuron_operations(kind):
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("neurobench")
    from torch import nn

    torch.manual_seed(2)
    leaky_out = snn.Leaky(beta=0.9, init_hidden=True, output=True)
    if kind == "rsynaptic":
        hidden = snn.RSynaptic(alpha=0.5, beta=0.9, linear_features=8, init_hidden=True)
    elif kind == "rleaky_one_to_one":
        hidden = snn.RLeaky(beta=0.9, all_to_all=False, init_hidden=True)
    else:
        hidden = snn.Synaptic(alpha=0.9, beta=0.9, init_hidden=True, reset_mechanism="zero")
        leaky_out = snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="none", output=True)
    net = nn.Sequential(nn.Linear(10, 8), hidden, nn.Linear(8, 3), leaky_out)
    with torch.no_grad():
        net[0].weight.mul_(3)
    g = torch.Generator().manual_seed(3)
    if kind.endswith("ternary"):
        x = torch.randint(-1, 2, (5, 12, 10), generator=g).float()
    elif kind.endswith("onehot"):
        x = torch.nn.functional.one_hot(torch.randint(0, 10, (5, 12), generator=g), 10).float()
        x = x * torch.where(torch.rand(5, 12, 1, generator=g) < 0.5, 1.0, 0.5)   # some steps real-valued: MACs
    else:
        x = (torch.rand(5, 12, 10, generator=g) < 0.4).float()
    theirs = _neurobench(net, x, 2)
    ours = _ours(net, x, 2)
    assert theirs["NeuronOperations"] == 0.0
    _assert_same(ours, theirs)
