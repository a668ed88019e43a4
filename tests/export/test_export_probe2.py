"""Export writers and the interpreter on networks other than the other tests' (second adversarial probe): single
neurons, layers without bias, zero weights, conv and recurrent layers round-trip through NIR with the same weights and
the same interpreter outputs; parameters beyond float32 and time constants whose decay underflows are refused with
an error naming the layer, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import ExportError, ParameterError
from spikeseq.export.nir import from_nir, read_nir, write_nir
from spikeseq.graph import ir, simulate, trace
from spikeseq.nn.recurrent import RLIF
from spikeseq.verify import export_and_verify

DT = 1e-3


def _scaled(m: torch.nn.Module, s: float) -> torch.nn.Module:
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(s)
    return m


def _zeroed(m: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    return m


def _set(m: torch.nn.Module, **values: float) -> torch.nn.Module:
    """``m`` with the named parameters filled with the given values (e.g. ``**{"0.weight": 2.0}``)."""
    with torch.no_grad():
        for k, v in values.items():
            m.get_parameter(k).fill_(v)
    return m


def _lif(**kw):
    return snn.LIF(tau_mem=5e-3, dt=DT, reset="zero", **kw)


CASES = {
    "one neuron": (lambda: _set(snn.Sequential(torch.nn.Linear(1, 1), _lif()), **{"layers.0.weight": 0.6,
                                                                                    "layers.0.bias": 0.1}), (1,)),
    "no bias": (lambda: _scaled(snn.Sequential(torch.nn.Linear(4, 3, bias=False), _lif()), 3.0), (4,)),
    "zero weights": (lambda: snn.Sequential(_zeroed(torch.nn.Linear(4, 3)), _lif()), (4,)),
    "conv, stride 2, no bias": (lambda: _scaled(snn.Sequential(
        torch.nn.Conv2d(2, 3, 3, stride=2, bias=False), _lif(), torch.nn.Flatten(), torch.nn.Linear(12, 2), _lif()),
        3.0), (2, 5, 5)),
    "conv1d": (lambda: _scaled(snn.Sequential(torch.nn.Conv1d(2, 3, 3), _lif(), torch.nn.Flatten(),
                                              torch.nn.Linear(9, 2), _lif()), 3.0), (2, 5)),
    "recurrent cuba, 1 neuron": (lambda: _set(snn.Sequential(
        RLIF(1, 1, neuron="cuba", dt=DT, tau_mem=5e-3, tau_syn=2e-3, reset="zero")),
        **{"layers.0.fc.weight": 3.0, "layers.0.fc.bias": 0.0, "layers.0.rec.weight": -1.0}), (1,)),
    "LI readout": (lambda: _scaled(snn.Sequential(torch.nn.Linear(4, 6), _lif(), torch.nn.Linear(6, 2),
                                                  snn.LI(tau_mem=5e-3, dt=DT)), 3.0), (4,)),
}


def _weights(g: ir.Graph) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.weight) for k, v in g.flat().nodes.items() if hasattr(v, "weight")}


@pytest.mark.parametrize("name", list(CASES))
def test_nir_round_trip_keeps_weights_and_outputs(tmp_path, name):
    make, shape = CASES[name]
    torch.manual_seed(1)
    m = make()
    g = trace(m, dt=DT, input_shape=shape)
    path = write_nir(g, tmp_path / "m.nir")
    g2 = from_nir(read_nir(path), dt=DT)
    w1, w2 = _weights(g), _weights(g2)
    assert sorted(w1) == sorted(w2) and w1
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k], err_msg=k)
    x = (torch.rand(25, 3, *shape, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    with torch.no_grad():
        y = m(x)[0].numpy()
    out1, out2 = simulate(g, x.numpy()).output, simulate(g2, x.numpy()).output
    assert (np.abs(out1).sum() > 0) == (name != "zero weights")  # the cases that should spike do
    if name == "LI readout":  # membrane readout: NIR stores tau and r as float32, so it agrees to float32 rounding
        np.testing.assert_allclose(out1, out2, rtol=1e-6, atol=1e-6)
    else:  # spikes: identical
        np.testing.assert_array_equal(out1, out2)
    np.testing.assert_allclose(out1, y, rtol=1e-5, atol=1e-5)


def test_float64_weights_beyond_float32_name_the_layer_and_write_nothing(tmp_path):
    m = snn.Sequential(torch.nn.Linear(4, 3), _lif(), torch.nn.Linear(3, 2), _lif()).double()
    with torch.no_grad():
        m[2].weight[1, 2] = 1e40  # float64 holds it; the float32 graph and NIR file cannot (was: "holds Inf")
    with pytest.raises(ExportError, match=r"cannot trace layers\.2 \(Linear\): a parameter of shape \(2, 3\) holds "
                                          r"1e\+40 \(1 such values\), beyond the float32 range"):
        trace(m, dt=DT)
    x = torch.zeros(5, 2, 4, dtype=torch.float64)
    for target, name in (("nir", "m.nir"), ("spinnaker2", "m.json"), ("loihi", "m.net")):
        with pytest.raises(ExportError, match=r"layers\.2 \(Linear\).*beyond the float32 range"):
            export_and_verify(m, target, tmp_path / name, x, dt=DT)
    assert list(tmp_path.iterdir()) == []


def test_ir_node_built_from_float64_beyond_float32_is_refused():
    with pytest.raises(ParameterError, match=r"a value -3e\+39 \(1 such values in an array of shape \(2, 2\)\) is "
                                             r"beyond the float32 range"):
        ir.Affine(np.array([[1.0, -3e39], [0.0, 1.0]]), np.zeros(2))
    assert np.isinf(ir.Affine(np.full((1, 1), np.inf), np.zeros(1)).weight).all()  # an explicit Inf stays Inf


def test_time_constant_whose_decay_underflows_gets_the_right_hint(tmp_path):
    m = snn.Sequential(torch.nn.Linear(3, 2), snn.LIF(tau_mem=1e-9, dt=DT, reset="zero"))
    with pytest.raises(ExportError, match=r"got range \[0\.0, 0\.0\]; a decay of 0 means tau_mem is so short "
                                          r"against dt=0\.001 s that exp\(-dt/tau\) underflows") as e:
        export_and_verify(m, "nir", tmp_path / "m.nir", torch.zeros(4, 1, 3), dt=DT)
    assert "use IF" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def _net(tmp_path):
    from spikeseq.export.loihi import write_net

    m = snn.Sequential(torch.nn.Linear(4, 3), _lif())
    path = tmp_path / "ok.net"
    write_net(trace(m, dt=DT), path)
    return path


@pytest.mark.parametrize("damage,pattern", [
    (lambda f: f.move("layer/1", "layer/2"), r"the 'layer' group holds \['0', '2'\], but a netx \.net file numbers "
                                             r"its layers 0, 1, 2, \.\.\. without gaps"),
    (lambda f: f.__delitem__("layer/1/type"), r"layer/1 is not a netx layer \(a group with a 1-element 'type'"),
    (lambda f: (f.__delitem__("layer/1/type"), f.create_dataset("layer/1/type", data=np.zeros(0, "S5"))),
     r"layer/1 is not a netx layer"),
    (lambda f: (f.__delitem__("layer/1/type"), f.create_dataset("layer/1/type", data=np.array([5]))),
     r"layer/1/type holds .*5\)?, not a layer type name"),
])
def test_read_net_of_a_damaged_file_names_the_layer(tmp_path, damage, pattern):
    import h5py

    from spikeseq.errors import DataError
    from spikeseq.export.loihi import read_net

    path = _net(tmp_path)
    assert [d["type"] for d in read_net(path)] == ["input", "dense"]
    with h5py.File(path, "a") as f:  # before: KeyError / IndexError / AttributeError
        damage(f)
    with pytest.raises(DataError, match=r"ok\.net: " + pattern):
        read_net(path)


@pytest.mark.parametrize("dt", [0.0, -1e-3, float("nan"), float("inf"), True])
def test_from_nir_refuses_a_bad_dt_before_comparing_it_with_the_file(tmp_path, dt, recwarn):
    path = write_nir(trace(snn.Sequential(torch.nn.Linear(2, 2), _lif()), dt=DT), tmp_path / "m.nir")
    with pytest.raises(ParameterError, match=r"dt must be a positive number of seconds"):
        from_nir(path, dt=dt)
    assert not [w for w in recwarn if "differs from the dt" in str(w.message)]


@pytest.mark.parametrize("existing", [False, True])
def test_description_and_script_stay_consistent_when_the_last_rename_fails(tmp_path, monkeypatch, existing):
    """The build script is renamed into place before the JSON description; when the JSON's rename then fails (a
    permission change, a full quota), the script is restored (before: the new script stayed, beside no JSON or beside
    the previous export's JSON)."""
    import os

    from spikeseq.errors import OutputError
    from spikeseq.export.spinnaker2 import write_spinnaker2

    g = trace(snn.Sequential(torch.nn.Linear(4, 3), _lif()), dt=DT)
    path = tmp_path / "net.json"
    if existing:
        path.write_text('{"old": true}')
        path.with_suffix(".py").write_text("# the previous export's script\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real, calls, broken = os.replace, [], [True]

    def flaky(src, dst, *a, **k):
        calls.append(Path(dst).name)
        if broken[0] and Path(dst).name == "net.json":
            raise PermissionError(13, "Permission denied")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OutputError, match=r"cannot write .*net\.json: permission denied"):
        write_spinnaker2(g, path)
    broken[0] = False
    assert calls[:2] == ["net.py", "net.json"]  # the script was in place when the description failed
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    write_spinnaker2(g, path)  # and a later export succeeds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.py"]


def test_real_inputs_beyond_the_loihi_payload_range_are_stated(tmp_path):
    torch.manual_seed(0)
    m = _scaled(snn.Sequential(torch.nn.Linear(4, 3), _lif()), 3.0)
    x = torch.randn(20, 4, 4, generator=torch.Generator().manual_seed(0))
    small = export_and_verify(m, "loihi", tmp_path / "a.net", x, dt=DT)
    assert not [n for n in small.notes if "saturate" in n]
    big = x * 1000.0  # before: a 0.77 agreement explained only by "round(x * 2**0) (8-bit)"
    n_clip = int((big.round().abs() > 127).sum())
    r = export_and_verify(m, "loihi", tmp_path / "b.net", big, dt=DT)
    note = next(n for n in r.notes if "saturate" in n)
    assert note.startswith(f"{n_clip} of {big.numel()} input values saturate at +-127 (max |x| = ")
    assert "pass input_bits=" in note
    wide = export_and_verify(m, "loihi", tmp_path / "c.net", big, dt=DT, input_bits=16)  # fits 16 bits
    assert not [n for n in wide.notes if "saturate" in n]
