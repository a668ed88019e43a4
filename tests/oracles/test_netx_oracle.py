"""lava-dl netx as the oracle of the Loihi export: every kind of ``.net`` file spikeseq writes is loaded by
``lava.lib.dl.netx.hdf5.Network``, run by Lava's bit-accurate models (``Loihi2SimCfg(select_tag="fixed_pt")``) and
must spike exactly like spikeseq's Loihi interpreter, layer by layer and step by step; readout layers must hold the
same membrane values. Firing-rate floors make sure no comparison is between silent networks.

Networks: LIF-like chains (iDecay = 4096) with and without biases, IF (vDecay = 0), CUBA (synaptic current decay),
a recurrent ``dense_rec`` layer, per-synapse delays, three layers, a conv -> flatten -> dense chain, a readout that
saturates (Loihi spikes and resets it), and the N-MNIST MLP and delay SNN trained by tests/export/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.export.loihi import netx_layers, write_net
from spikeseq.graph import simulate, trace
from spikeseq.nn.delay import DelayLinear
from spikeseq.nn.recurrent import RLIF
from tests.oracles.conftest import HERE, run_lava

pytestmark = pytest.mark.oracle

DT = 1e-3
T, B = 40, 3
MIN_RATE = 0.01          # every spiking layer fires on >= 1% of (step, neuron) cells in the compared runs


def _spikes(shape, p, seed):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)


def _scaled(m, factors: dict[int, float]):
    """Multiply the weight of layer i by factors[i] (drives the layers above the firing-rate floor)."""
    with torch.no_grad():
        for i, f in factors.items():
            m[i].weight.mul_(f)
    return m


def _synthetic() -> dict[str, tuple[torch.nn.Module, np.ndarray]]:
    """name -> (model, input [T, B, ...]); seeded, so every run writes the same files."""
    nets: dict[str, tuple[torch.nn.Module, np.ndarray]] = {}
    torch.manual_seed(0)
    nets["lif_chain_no_bias"] = (_scaled(snn.Sequential(
        torch.nn.Linear(12, 20, bias=False), snn.LIF(tau_mem=5e-3, dt=DT, reset="zero"),
        torch.nn.Linear(20, 5, bias=False), snn.LI(tau_mem=1e-2, dt=DT)), {0: 3}), _spikes((T, B, 12), .3, 1))
    torch.manual_seed(1)
    m = snn.Sequential(torch.nn.Linear(12, 20), snn.LIF(tau_mem=8e-3, dt=DT, reset="zero"), torch.nn.Linear(20, 6),
                       snn.LIF(tau_mem=8e-3, dt=DT, reset="zero"))
    with torch.no_grad():
        m[0].bias.uniform_(-0.05, 0.15)
        m[2].weight.mul_(3)
        m[2].bias.uniform_(0.0, 0.1)
    nets["lif_chain_bias"] = (_scaled(m, {0: 2}), _spikes((T, B, 12), .25, 2))
    torch.manual_seed(2)
    nets["if_chain"] = (snn.Sequential(torch.nn.Linear(10, 16), snn.IF(dt=DT, v_th=0.5, reset="zero"),
                                       torch.nn.Linear(16, 4), snn.LI(tau_mem=2e-2, dt=DT)), _spikes((T, B, 10), .3, 3))
    torch.manual_seed(3)
    nets["cuba_chain"] = (_scaled(snn.Sequential(
        torch.nn.Linear(12, 24), snn.CubaLIF(tau_mem=6e-3, tau_syn=3e-3, dt=DT, reset="zero", v_th=0.6),
        torch.nn.Linear(24, 5), snn.LI(tau_mem=1e-2, dt=DT)), {0: 3}), _spikes((T, B, 12), .3, 4))
    torch.manual_seed(4)
    m = snn.Sequential(RLIF(12, 20, neuron="cuba", dt=DT, tau_mem=8e-3, tau_syn=4e-3, reset="zero", v_th=0.8),
                       torch.nn.Linear(20, 5), snn.LI(tau_mem=1e-2, dt=DT))
    with torch.no_grad():
        m[0].fc.weight.mul_(3)
        m[0].rec.weight.mul_(2)
        m[0].fc.bias.uniform_(-0.05, 0.1)
    nets["recurrent_cuba_bias"] = (m, _spikes((T, B, 12), .25, 5))
    torch.manual_seed(5)
    d = DelayLinear(12, 16, max_delay=6, learn_delay=False, bias=True)
    with torch.no_grad():
        d.weight.mul_(3)
    nets["delays"] = (snn.Sequential(d, snn.LIF(tau_mem=8e-3, dt=DT, reset="zero"), torch.nn.Linear(16, 4),
                                     snn.LI(tau_mem=1e-2, dt=DT)), _spikes((T, B, 12), .3, 6))
    torch.manual_seed(6)
    nets["three_layers"] = (_scaled(snn.Sequential(
        torch.nn.Linear(12, 24), snn.LIF(tau_mem=8e-3, dt=DT, reset="zero"), torch.nn.Linear(24, 16),
        snn.CubaLIF(tau_mem=8e-3, tau_syn=2e-3, dt=DT, reset="zero"), torch.nn.Linear(16, 5),
        snn.LI(tau_mem=1e-2, dt=DT)), {0: 3, 2: 4}), _spikes((T, B, 12), .3, 7))
    torch.manual_seed(7)
    nets["conv_flatten_dense"] = (_scaled(snn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), snn.LIF(tau_mem=8e-3, dt=DT, reset="zero"), torch.nn.Flatten(),
        torch.nn.Linear(4 * 5 * 5, 6), snn.LI(tau_mem=1e-2, dt=DT)), {0: 3}), _spikes((T, B, 2, 5, 5), .3, 8))
    torch.manual_seed(8)
    m = snn.Sequential(torch.nn.Linear(8, 3, bias=False), snn.LI(tau_mem=1.0, dt=DT))
    with torch.no_grad():
        m[0].weight.uniform_(0.5, 1.0)
    nets["saturating_readout"] = (m, np.ones((120, B, 8)))
    return nets


SYNTHETIC = ["lif_chain_no_bias", "lif_chain_bias", "if_chain", "cuba_chain", "recurrent_cuba_bias", "delays",
             "three_layers", "conv_flatten_dense", "saturating_readout"]


def _run(tmp: Path, lava_py: str, nets: dict[str, tuple[torch.nn.Module, np.ndarray]]) -> dict[str, dict]:
    """Write every net, run them all in one Lava process, run the interpreter; name -> comparison inputs."""
    jobs, out = [], {}
    for name, (model, x) in nets.items():
        g = trace(model.eval(), dt=DT, input_shape=tuple(x.shape[2:]))
        e = write_net(g, tmp / f"{name}.net")
        layers = [lay for lay in netx_layers(e.graph) if lay["type"] in ("dense", "dense_rec", "conv")]
        pad = len(layers) + sum(int(lay["delay"].max()) for lay in layers if "delay" in lay)
        xp = np.concatenate([x, np.zeros((pad, *x.shape[1:]))])
        sim = simulate(e.graph, xp, numerics="loihi", align=False)
        np.save(tmp / f"{name}.x.npy", np.moveaxis(xp, 1, 0).astype(np.int64))
        jobs.append({"net": str(e.path), "inputs": str(tmp / f"{name}.x.npy"), "out": str(tmp / f"{name}.lava.npz")})
        out[name] = {"graph": e.graph, "layers": layers, "sim": sim, "out": tmp / f"{name}.lava.npz"}
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    run_lava(lava_py, str(HERE / "netx_runner.py"), str(tmp / "jobs.json"))
    for v in out.values():
        err = Path(str(v["out"]) + ".error.txt")
        v["lava"] = dict(np.load(v["out"])) if v["out"].exists() else None
        v["error"] = err.read_text() if err.exists() else None
    return out


def _compare(case: dict) -> dict[str, float]:
    """Assert equality layer by layer; returns each layer's firing rate (spiking) or mean |v| (readout)."""
    if case["lava"] is None:
        pytest.fail(f"netx could not load or run the file:\n{case['error']}")
    g, sim, lava = case["graph"], case["sim"], case["lava"]
    rates = {}
    for i, layer in enumerate(case["layers"]):
        name = layer["name"]
        node = g.nodes[name]
        ours = np.moveaxis(sim.traces[name], 1, 0).reshape(lava[f"s{i}"].shape)
        if node.readout:
            v = np.round(ours * node.scale * 64.0)
            np.testing.assert_array_equal(lava[f"v{i}"], v, err_msg=f"readout {name} (layer {i}) membrane")
            rates[name] = float(np.abs(v).mean())
        else:
            np.testing.assert_array_equal(lava[f"s{i}"], ours, err_msg=f"population {name} (layer {i}) spikes")
            rates[name] = float(ours.mean())
    return rates


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory, lava_python):
    nets = _synthetic()
    assert list(nets) == SYNTHETIC
    return _run(tmp_path_factory.mktemp("netx"), lava_python, nets)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_netx_spikes_equal_interpreter(synthetic_runs, name):
    case = synthetic_runs[name]
    rates = _compare(case)
    for layer in case["layers"]:
        node = case["graph"].nodes[layer["name"]]
        if not node.readout:
            assert rates[layer["name"]] >= MIN_RATE, f"{layer['name']} is (nearly) silent: rate {rates}"
        else:
            assert rates[layer["name"]] > 0, f"readout {layer['name']} never moves"
    types = [lay["type"] for lay in case["layers"]]
    if name == "recurrent_cuba_bias":
        assert types[0] == "dense_rec" and "bias" in case["layers"][0]
    if name == "delays":
        assert case["layers"][0]["delay"].max() >= 3
    if name == "conv_flatten_dense":
        assert types == ["conv", "dense"]
    if name == "cuba_chain":
        assert np.all(case["layers"][0]["neuron"]["iDecay"] < 4096)


def test_saturating_readout_spikes_and_resets_like_netx(synthetic_runs):
    """A readout that reaches Loihi's saturation crosses vth << 6 = 2**23 - 64: netx's LIF spikes and resets it to
    0, and so does the interpreter (ir.LoihiCUBA readout semantics), so the membrane trajectories agree."""
    case = synthetic_runs["saturating_readout"]
    lava = case["lava"]
    assert lava["s0"].sum() > 0                          # Lava's readout spiked ...
    assert (lava["v0"] == 0).any() and lava["v0"].max() > 2**23 - 64 - 2**17
    _compare(case)                                       # ... and the interpreter reset it at the same steps


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory, lava_python, trained_mlp, trained_delay_snn, nmnist_frames):
    _, (x, _) = nmnist_frames
    xs = x[:, :6].numpy()
    return _run(tmp_path_factory.mktemp("netx_trained"), lava_python,
                {"nmnist_mlp": (trained_mlp, xs), "nmnist_delay_snn": (trained_delay_snn, xs)})


@pytest.mark.parametrize("name", ["nmnist_mlp", "nmnist_delay_snn"])
def test_trained_nmnist_nets_equal_interpreter(trained_runs, name):
    case = trained_runs[name]
    rates = _compare(case)
    hidden = case["layers"][0]["name"]
    assert rates[hidden] >= MIN_RATE, rates
    if name == "nmnist_delay_snn":
        assert case["layers"][0]["delay"].max() >= 3
