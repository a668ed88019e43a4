"""NIR round trips: spikeseq -> NIR file -> spikeseq / snnTorch / Norse, and snnTorch -> NIR -> spikeseq.

snnTorch's importer hard-codes dt = 1e-4, so files for it are written with ``nir_dt=1e-4``. Norse ignores ``r`` on
LIF nodes, so its files use ``convention="norse"`` (r folded into the weights). snnTorch's ``import_from_nir``
re-wraps recurrent 2-cycles into nested graphs that nirtorch 2.6 cannot build (``GraphModule has no attribute
'items'``); recurrent files are therefore loaded with snnTorch's own node converter
(``_nir_to_snntorch_module``) through nirtorch's executor on the flat graph.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import DataError, ExportError, ParameterError
from spikeseq.export.nir import from_nir, read_nir, to_nir, write_nir
from spikeseq.graph import ir, simulate, trace
from spikeseq.nn.recurrent import RLIF

DT = 1e-3
T, B = 40, 3


def _ff(kind: str) -> snn.Sequential:
    if kind == "lif":
        m = snn.Sequential(torch.nn.Linear(12, 20), snn.LIF(tau_mem=5e-3, dt=DT, reset="zero"),
                           torch.nn.Linear(20, 6), snn.LIF(tau_mem=8e-3, dt=DT, v_th=0.7, reset="zero"))
    else:
        m = snn.Sequential(torch.nn.Linear(12, 20), snn.CubaLIF(tau_syn=3e-3, tau_mem=6e-3, dt=DT, reset="zero"),
                           torch.nn.Linear(20, 6), snn.CubaLIF(tau_syn=2e-3, tau_mem=9e-3, dt=DT, reset="zero"))
    with torch.no_grad():
        for layer in m.layers:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(3.0)
    return m


def _rec(kind: str) -> snn.Sequential:
    m = snn.Sequential(RLIF(12, 16, neuron=kind, dt=DT, tau_mem=5e-3, tau_syn=2e-3, reset="zero"),
                       torch.nn.Linear(16, 6), snn.LIF(tau_mem=5e-3, dt=DT, reset="zero"))
    with torch.no_grad():
        m[0].fc.weight.mul_(3.0)
        m[0].rec.weight.mul_(2.0)
        m[1].weight.mul_(3.0)
    return m


def _input(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, 12, generator=g) < 0.3).float()


def _model_out(m, x):
    with torch.no_grad():
        return m(x)[0].numpy()


def run_stepped(net, x) -> np.ndarray:
    """A stateful step network (``out, state = net(x[t], state)``, e.g. nirtorch's) over ``x [T, ...]``, stacked."""
    state, outs = None, []
    for t in range(x.shape[0]):
        o, state = net(x[t], state)
        outs.append(o.detach())
    return torch.stack(outs).numpy()


def _snntorch_module(path, recurrent: bool):
    import nir
    import nirtorch
    from snntorch.import_nir import _nir_to_snntorch_module, import_from_nir

    g = read_nir(path)
    if not recurrent:
        return import_from_nir(g)
    conv = lambda n: _nir_to_snntorch_module(n, init_hidden=True)  # noqa: E731
    return nirtorch.nir_to_torch(g, {k: conv for k in (nir.Affine, nir.Linear, nir.LIF, nir.CubaLIF)})


MODELS = [("ff", "lif"), ("ff", "cuba"), ("rec", "lif"), ("rec", "cuba")]


@pytest.mark.parametrize("arch,kind", MODELS)
def test_spikeseq_nir_spikeseq_roundtrip(tmp_path, arch, kind):
    m = _ff(kind) if arch == "ff" else _rec(kind)
    x = _input()
    y = _model_out(m, x)
    assert 0.02 < y.mean() < 0.6, "test net must spike at a moderate rate to be meaningful"
    path = write_nir(trace(m, dt=DT), tmp_path / "m.nir")
    g = from_nir(path, dt=DT)
    assert g.discretization == "euler"
    out = simulate(g, x).output
    assert np.mean(out == y) == 1.0


@pytest.mark.parametrize("arch,kind", MODELS)
def test_snntorch_import_gives_same_spikes(tmp_path, arch, kind, caplog):
    m = _ff(kind) if arch == "ff" else _rec(kind)
    x = _input(1)
    y = _model_out(m, x)
    path = write_nir(trace(m, dt=DT), tmp_path / "m.nir", nir_dt=1e-4)
    net = _snntorch_module(path, recurrent=(arch == "rec"))
    out = run_stepped(net, x)
    assert out.shape == y.shape
    assert np.abs(out - y).max() <= 1e-5


@pytest.mark.parametrize("arch,kind", MODELS)
def test_norse_import_gives_same_spikes(tmp_path, arch, kind, caplog):
    import norse.torch as norse

    m = _ff(kind) if arch == "ff" else _rec(kind)
    x = _input(2)
    y = _model_out(m, x)
    path = write_nir(trace(m, dt=DT), tmp_path / "m.nir", convention="norse")
    with caplog.at_level(logging.ERROR):
        net = norse.from_nir(read_nir(path), dt=DT)
    state, outs = None, []
    for t in range(T):
        o, state = net(x[t], state)
        outs.append(o.detach())
    out = torch.stack(outs).numpy()
    assert np.abs(out - y).max() <= 1e-5


def test_snntorch_export_to_spikeseq():
    """snnTorch (nirtorch 2.6) exports scalar-parameter neurons with shape () and a batch dim on the input,
    which fails NIR type checking: per-neuron parameters and ``ignore_dims=[0]`` avoid both."""
    import snntorch as st
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    f = lambda n, v: torch.full((n,), v)  # noqa: E731 - per-neuron parameters give NIR nodes their shapes
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 20), st.Leaky(beta=f(20, 0.8), threshold=f(20, 1.0), init_hidden=True,
                                          reset_mechanism="zero", reset_delay=False),
        torch.nn.Linear(20, 10), st.Synaptic(alpha=f(10, 0.6), beta=f(10, 0.85), threshold=f(10, 1.0),
                                             init_hidden=True, reset_mechanism="zero", reset_delay=False),
        torch.nn.Linear(10, 5), st.Leaky(beta=f(5, 0.9), threshold=f(5, 1.0), init_hidden=True,
                                         reset_mechanism="zero", reset_delay=False, output=True),
    )
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(3.0)
    x = _input(3)
    ng = export_to_nir(net, x[0, :1], ignore_dims=[0])
    from snntorch import utils as st_utils

    st_utils.reset(net)
    with torch.no_grad():
        y = torch.stack([net(x[t])[0] for t in range(T)]).numpy()
    g = from_nir(ng, dt=1e-4)
    out = simulate(g, x).output
    assert 0.02 < y.mean() < 0.6
    assert np.abs(out - y).max() <= 1e-5


def _every_kind_graph() -> ir.Graph:
    rng = np.random.default_rng(0)
    n = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    p = lambda k: np.full(k, 0.02)  # noqa: E731
    nodes = {
        "input": ir.Input((2, 6, 6)),
        "conv": ir.Conv2d((2, 6, 6), n(3, 2, 3, 3), n(3), stride=1, padding=1),
        "if": ir.IF(r=np.full((3, 6, 6), 1e3), v_threshold=np.ones((3, 6, 6))),
        "pool": ir.SumPool2d((3, 6, 6), 2, 2),
        "avg": ir.AvgPool2d((3, 3, 3), 1, 1),
        "flat": ir.Flatten((3, 3, 3)),
        "aff": ir.Affine(n(10, 27), n(10)),
        "scale": ir.Scale(np.linspace(0.5, 1.5, 10)),
        "lin": ir.Linear(n(8, 10)),
        "lif": ir.LIF(tau=p(8), r=np.full(8, 2.0), v_threshold=np.ones(8), v_leak=np.full(8, 0.1)),
        "delay": ir.Delay(np.full(8, 3e-3)),
        "lin2": ir.Linear(n(5, 8)),
        "cuba": ir.CubaLIF(tau_syn=p(5), tau_mem=p(5) * 2, r=np.full(5, 3.0), v_threshold=np.ones(5),
                           w_in=np.full(5, 2.0)),
        "lin3": ir.Linear(n(4, 5)),
        "cubali": ir.CubaLI(tau_syn=p(4), tau_mem=p(4), r=np.ones(4)),
        "thr": ir.Threshold(np.zeros(4)),
        "lin4": ir.Linear(n(3, 4)),
        "li": ir.LI(tau=p(3), r=np.ones(3)),
        "lin5": ir.Linear(n(3, 3)),
        "i": ir.I(r=np.ones(3)),
        "output": ir.Output((3,)),
    }
    order = list(nodes)
    return ir.Graph(nodes, list(itertools.pairwise(order)), dt=1e-3)


def test_every_nir_kind_survives_write_read(tmp_path):
    g = _every_kind_graph()
    path = write_nir(g, tmp_path / "all.nir")
    back = from_nir(path, dt=1e-3)
    assert set(back.nodes) == set(g.nodes)
    for name, node in g.nodes.items():
        assert back.nodes[name].kind == node.kind, name
    for name in ("conv", "aff", "lin", "lin5"):
        np.testing.assert_array_equal(back.nodes[name].weight, g.nodes[name].weight)
    assert back.edges == g.edges
    x = (np.random.default_rng(1).random((30, 2, 2, 6, 6)) < 0.4).astype(np.float64)
    a, b = simulate(g, x), simulate(back, x)
    for name in ("if", "lif", "cuba", "thr"):
        assert a.traces[name].sum() > 0, name
        np.testing.assert_array_equal(a.traces[name], b.traces[name])
    np.testing.assert_allclose(a.output, b.output, rtol=1e-5, atol=1e-5)
    assert read_nir(path).metadata["dt"] == pytest.approx(1e-3)


def test_nested_graph_round_trip(tmp_path):
    inner = ir.Graph({"input": ir.Input((4,)), "lin": ir.Linear(np.eye(4) * 2), "lif": ir.LIF(
        tau=np.full(4, 5e-3), r=np.full(4, 1.0), v_threshold=np.ones(4)), "output": ir.Output((4,))},
        [("input", "lin"), ("lin", "lif"), ("lif", "output")], dt=1e-3)
    g = ir.Graph({"input": ir.Input((4,)), "sub": inner, "output": ir.Output((4,))},
                 [("input", "sub"), ("sub", "output")], dt=1e-3)
    back = from_nir(write_nir(g, tmp_path / "n.nir"), dt=1e-3)
    assert isinstance(back.nodes["sub"], ir.Graph)
    x = (np.random.default_rng(0).random((20, 1, 4)) < 0.8).astype(float) * 3
    np.testing.assert_array_equal(simulate(g, x).output, simulate(back, x).output)


def test_node_without_nir_equivalent_is_named(tmp_path):
    g = ir.Graph({"input": ir.Input((3,)), "syn": ir.DelayAffine(np.ones((2, 3)), np.ones((2, 3), int)),
                  "lif": ir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_threshold=np.ones(2)),
                  "output": ir.Output((2,))}, [("input", "syn"), ("syn", "lif"), ("lif", "output")], dt=1e-3)
    with pytest.raises(ExportError, match=r"'syn'.*DelayAffine"):
        to_nir(g, delays="refuse")
    lmu = ir.Graph({"input": ir.Input((3,)), "lin": ir.Linear(np.ones((2, 3))),
                    "mem": ir.LMUMemory(np.eye(2), np.ones((2, 2))), "output": ir.Output((2,))},
                   [("input", "lin"), ("lin", "mem"), ("mem", "output")], dt=1e-3)
    with pytest.raises(ExportError, match=r"'mem'.*LMUMemory"):
        write_nir(lmu, tmp_path / "x.nir")
    assert list(tmp_path.iterdir()) == []


def test_per_synapse_delays_expand_to_nir_delay_branches(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 6)).astype(np.float32) * 2
    d = rng.integers(0, 4, size=(4, 6))
    g = ir.Graph({"input": ir.Input((6,)), "syn": ir.DelayAffine(w, d, np.full(4, 0.1)),
                  "lif": ir.LIF(tau=np.full(4, 0.01), r=np.full(4, 1.0 / (1 - np.exp(-0.1))),
                                v_threshold=np.ones(4)),
                  "output": ir.Output((4,))}, [("input", "syn"), ("syn", "lif"), ("lif", "output")], dt=1e-3)
    back = from_nir(write_nir(g, tmp_path / "d.nir"), dt=1e-3)
    kinds = sorted(n.kind for n in back.nodes.values())
    assert kinds.count("Delay") == len(np.unique(d)) and "DelayAffine" not in kinds
    x = (rng.random((30, 3, 6)) < 0.4).astype(float)
    a, b = simulate(g, x), simulate(back, x)
    assert a.output.sum() > 0
    np.testing.assert_array_equal(a.output, b.output)


def test_from_nir_needs_dt_and_rejects_bad_files(tmp_path):
    import h5py

    g = trace(_ff("lif"), dt=DT)
    path = write_nir(g, tmp_path / "ok.nir")
    with pytest.raises(ParameterError, match="dt"):
        from_nir(path)
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DataError, match="not a readable HDF5"):
        from_nir(junk, dt=DT)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.create_group("layer")
    with pytest.raises(DataError, match=r"not a NIR file.*netx"):
        from_nir(foreign, dt=DT)
    corrupt = tmp_path / "corrupt.nir"
    with h5py.File(corrupt, "w") as f:
        f.create_dataset("version", data="1.0")
        f.create_group("node").create_dataset("type", data="Bogus")
    with pytest.raises(DataError, match="corrupt"):
        from_nir(corrupt, dt=DT)
    with pytest.raises(DataError, match="does not exist"):
        from_nir(tmp_path / "missing.nir", dt=DT)


def test_graph_requires_dt():
    with pytest.raises(ParameterError, match="dt"):
        ir.Graph({"input": ir.Input((1,))}, [], dt=None)
    with pytest.raises(ParameterError, match="dt"):
        trace(_ff("lif"))


def test_conv1d_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    g = ir.Graph({"input": ir.Input((2, 10)),
                  "conv": ir.Conv1d((2, 10), rng.normal(size=(3, 2, 3)) * 2, rng.normal(size=3), 1, 1, 1),
                  "lif": ir.LIF(tau=np.full((3, 10), 0.01), r=np.full((3, 10), 10.5), v_threshold=np.ones((3, 10))),
                  "flat": ir.Flatten((3, 10)), "output": ir.Output((30,))},
                 [("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "output")], dt=1e-3)
    back = from_nir(write_nir(g, tmp_path / "c.nir"), dt=1e-3)
    assert back.nodes["conv"].kind == "Conv1d" and back.nodes["flat"].out_shape == (30,)
    x = (rng.random((20, 2, 2, 10)) < 0.5).astype(float)
    a = simulate(g, x).output
    assert a.sum() > 0
    np.testing.assert_array_equal(a, simulate(back, x).output)


def test_snntorch_recurrent_export_to_spikeseq():
    """snnTorch RLeaky (all-to-all recurrent Linear with a bias) -> NIR -> spikeseq: the recurrent synapse's bias
    already acts at t = 0 (it sees silent spikes), as in snnTorch and spikeseq's RLIF."""
    import snntorch as st
    from snntorch import utils as st_utils
    from snntorch.export_nir import export_to_nir

    f = lambda n, v: torch.full((n,), v)  # noqa: E731
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 16), st.RLeaky(beta=f(16, 0.8), threshold=f(16, 1.0), linear_features=16,
                                           init_hidden=True, reset_mechanism="zero", reset_delay=False),
        torch.nn.Linear(16, 5), st.Leaky(beta=f(5, 0.9), threshold=f(5, 1.0), init_hidden=True,
                                         reset_mechanism="zero", reset_delay=False, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
        net[1].recurrent.weight.mul_(2.0)
    x = _input(4)
    ng = export_to_nir(net, x[0, :1], ignore_dims=[0])
    st_utils.reset(net)
    with torch.no_grad():
        y = torch.stack([net(x[t])[0] for t in range(T)]).numpy()
    assert 0.02 < y.mean() < 0.6
    out = simulate(from_nir(ng, dt=1e-4), x).output
    assert np.abs(out - y).max() <= 1e-5


def test_reset_extension_is_one_warning_and_a_verification_note(tmp_path):
    """A subtract-reset model warns once per written file (naming every node), not once per node; the
    verification result says what it means (it reaches the report through the notes)."""
    import warnings

    from spikeseq.export.nir import NIRExtensionWarning, write_nir
    from spikeseq.verify import export_and_verify

    torch.manual_seed(0)
    m = snn.Sequential(torch.nn.Linear(4, 6), snn.LIF(tau_mem=5e-3, dt=1e-3, reset="subtract"),
                       torch.nn.Linear(6, 3), snn.LIF(tau_mem=5e-3, dt=1e-3, reset="subtract"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_nir(trace(m, dt=1e-3), tmp_path / "m.nir")
    ext = [w for w in caught if issubclass(w.category, NIRExtensionWarning)]
    assert len(ext) == 1 and "1_lif, 3_lif" in str(ext[0].message) and "reset=subtract" in str(ext[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExtensionWarning)
        r = export_and_verify(m, "nir", tmp_path / "v.nir", (torch.rand(10, 2, 4) < 0.5).float(), dt=1e-3)
    assert any("other NIR importers" in n and "1_lif, 3_lif" in n for n in r.notes)
    assert "other NIR importers" in r.to_markdown()
