"""The generated Lava process-network scripts (``*.lava.py``, for graphs a netx chain cannot hold) executed as
written by the real Lava (``python m.lava.py x.npy --record out.npz``, Lava 0.10 bit-accurate models): every
population's spikes, and every readout's membrane, equal spikeseq's Loihi interpreter step by step. Networks: L2MU
(LIF and CuBa-LIF, with spike inputs and real-valued inputs sent as graded payloads; feedback h->u, m->u and the
memory recurrence m->m) and a hand-built branching graph (per-synapse delays, cross-population feedback, branch and
merge, self-recurrence, weight_exp = 1, a bias). Firing-rate floors keep silent networks from passing.

Also the bit-exact interpreter against Lava's own processes wired by hand (``RingBuffer -> DelayDense -> LIF`` with a
recurrent ``Dense``), the first oracle of the interpreter.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.export.lava import graph_from_description, read_lava, write_lava
from spikeseq.graph import ir, quantize, simulate, trace
from spikeseq.models.registry import build
from spikeseq.nn.recurrent import RLIF
from spikeseq.verify import export_and_verify
from tests.export.test_lava_description import _branching
from tests.oracles.conftest import run_lava

pytestmark = pytest.mark.oracle

MIN_RATE = 0.01


def _l2mu(neuron: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = build("l2mu", input_size=3, n_classes=4, order=2, hidden_size=6, memory_size=5, input_pop_size=4,
              neuron=neuron)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("weight"):
                p.mul_(3)
        m.pop_m.v_th.fill_(0.02)   # drive the memory population, silent at the default init
        m.pop_u.v_th.fill_(0.1)
    return m


def _check_script(tmp_path, lava_py, desc_path, script, xi: np.ndarray) -> dict[str, float]:
    """Run the generated script on one sample ``xi`` [T, N]; compare every population; returns firing rates."""
    desc = read_lava(desc_path)
    g = graph_from_description(desc)
    steps = xi.shape[0] + desc["run_extra_steps"]
    xp = np.concatenate([xi, np.zeros((steps - xi.shape[0], xi.shape[1]))])[:, None]
    sim = simulate(g, xp, numerics="loihi", align=False)
    np.save(tmp_path / "x.npy", xi.astype(np.int64))
    run_lava(lava_py, str(script), str(tmp_path / "x.npy"), "--record", str(tmp_path / "rec.npz"))
    rec = np.load(tmp_path / "rec.npz")
    rates = {}
    for p in desc["populations"]:
        ours = sim.traces[p["name"]][:, 0].reshape(steps, -1)
        if p["readout"]:
            v = np.round(ours * p["scale"] * 64.0)
            np.testing.assert_array_equal(rec[p["name"] + ".v"], v, err_msg=f"readout {p['name']} membrane")
            rates[p["name"]] = float(np.abs(v).mean())
        else:
            np.testing.assert_array_equal(rec[p["name"] + ".s_out"], ours, err_msg=f"population {p['name']} spikes")
            rates[p["name"]] = float(ours.mean())
    return rates


@pytest.mark.parametrize("neuron,real_input", [("lif", False), ("cuba", False), ("cuba", True)])
def test_l2mu_script_matches_interpreter_in_lava(tmp_path, lava_python, neuron, real_input):
    m = _l2mu(neuron, seed=2)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 1, 3, generator=gen) if real_input else (torch.rand(40, 1, 3, generator=gen) < 0.5).float()
    r = export_and_verify(m, "loihi", tmp_path / "m.net", x, dt=0.02, reset_policy="zero")
    assert r.format == "lava-process-json"
    desc = read_lava(r.artifact)
    k = desc["inputs"][0]["frac_bits"]
    assert (k > 0) == real_input and desc["connections"][0]["num_message_bits"] == (24 if real_input else 0)
    rates = _check_script(tmp_path, lava_python, r.artifact, r.extra_files[0], np.round(x.numpy()[:, 0] * 2.0**k))
    for name in ("pop_x", "pop_u", "pop_m", "pop_h"):
        assert rates[name] >= MIN_RATE, (name, rates)
    assert rates["pop_out"] > 0


def test_branching_graph_script_matches_interpreter_in_lava(tmp_path, lava_python):
    e = write_lava(_branching(), tmp_path / "net.json")
    x = (np.random.default_rng(0).random((40, 3)) < 0.4).astype(np.float64)
    rates = _check_script(tmp_path, lava_python, e.path, e.script, x)
    assert rates["a"] >= MIN_RATE and rates["b"] >= MIN_RATE and rates["c"] > 0, rates


SCRIPT = """
import sys
import numpy as np
from lava.proc.lif.process import LIF
from lava.proc.dense.process import Dense, DelayDense
from lava.proc.io.source import RingBuffer
from lava.proc.monitor.process import Monitor
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.run_conditions import RunSteps

d = np.load(sys.argv[1])
T = d["x"].shape[0]
src = RingBuffer(data=d["x"].T.astype(int))
syn = DelayDense(weights=d["W"].astype(int), delays=d["D"].astype(int), max_delay=62)
# netx passes du = iDecay - 1 (Lava adds 1), dv = vDecay, bias_exp = 6
lif = LIF(shape=(d["W"].shape[0],), du=d["i_decay"] - 1, dv=d["v_decay"], vth=d["vth"], bias_mant=d["bias"],
          bias_exp=6)
rec = Dense(weights=d["R"].astype(int))
src.s_out.connect(syn.s_in)
syn.a_out.connect(lif.a_in)
lif.s_out.connect(rec.s_in)
rec.a_out.connect(lif.a_in)
mon = Monitor()
mon.probe(lif.s_out, T)
lif.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
z = mon.get_data()[lif.name]["s_out"]
lif.stop()
np.save(sys.argv[2], z)
"""


def test_interpreter_matches_lava_processes_wired_by_hand(tmp_path, lava_python):
    torch.manual_seed(1)
    m = snn.Sequential(RLIF(30, 40, neuron="cuba", dt=1e-3, tau_mem=8e-3, tau_syn=4e-3, reset="zero", v_th=0.8))
    with torch.no_grad():
        m[0].fc.weight.mul_(3)
        m[0].rec.weight.mul_(2)
        m[0].fc.bias.uniform_(-0.05, 0.1)
    g = trace(m, dt=1e-3)
    rng = np.random.default_rng(0)
    fc = g.nodes["0_fc"]
    g.nodes["0_fc"] = ir.DelayAffine(fc.weight, rng.integers(0, 5, fc.weight.shape), fc.bias)
    q = quantize(g, "loihi")
    x = (rng.random((60, 1, 30)) < 0.25).astype(float)
    ours = simulate(q, x, numerics="loihi", align=False).traces["0_cubalif"][:, 0]
    n = q.nodes["0_cubalif"]
    np.savez(tmp_path / "net.npz", x=x[:, 0], W=q.nodes["0_fc"].weight, D=q.nodes["0_fc"].delay,
             R=q.nodes["0_rec"].weight, i_decay=n.i_decay, v_decay=n.v_decay, vth=n.vth, bias=n.bias)
    (tmp_path / "run.py").write_text(SCRIPT)
    run_lava(lava_python, str(tmp_path / "run.py"), str(tmp_path / "net.npz"), str(tmp_path / "z.npy"))
    lava = np.load(tmp_path / "z.npy")
    assert ours.sum() > 100
    np.testing.assert_array_equal(lava, ours)
