"""The generated SpiNNaker2 build script RUN as written (``python m.py x.npy --record out.npz``) against a stand-in
for py-spinnaker2 (``tests/oracles/spinnaker2_standin``: py-spinnaker2's API surface simulated with the semantics
of targets.md §4.4; py-spinnaker2 itself cannot be installed), for a recurrent CuBa-LIF net, a LIF chain with
delays (the ``lif`` model) and every population of L2MU: spikes of every population match spikeseq's SpiNNaker2
interpreter exactly, the readout's voltage within float32 rounding. Needs no Lava: runs in the main environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch

from spikeseq import nn as snn
from spikeseq.export.spinnaker2 import write_spinnaker2
from spikeseq.graph import simulate, trace
from spikeseq.models.l2mu import L2MU
from spikeseq.nn.delay import DelayLinear
from spikeseq.nn.recurrent import RLIF
from tests.oracles.conftest import HERE

DT = 1e-3
MIN_RATE = 0.01


def _run_script(tmp_path, script, x: np.ndarray) -> dict[str, np.ndarray]:
    np.save(tmp_path / "x.npy", x.astype(np.int64))
    env = dict(os.environ, PYTHONPATH=str(HERE / "spinnaker2_standin"))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "x.npy"), "--record", str(tmp_path / "r.npz")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return dict(np.load(tmp_path / "r.npz"))


def _compare(tmp_path, graph, x: np.ndarray, **kw) -> dict[str, float]:
    """Export, run the script on x [T, N] and the interpreter; assert equality; return rates per population."""
    e = write_spinnaker2(graph, tmp_path / "net.json", **kw)
    desc = json.loads(e.path.read_text())
    steps = x.shape[0] + desc["run_extra_steps"]
    rec = _run_script(tmp_path, e.script, x)
    xp = np.concatenate([x, np.zeros((steps - x.shape[0], x.shape[1]))])[:, None]
    sim = simulate(e.graph, xp, numerics="spinnaker2", align=False)
    rates = {}
    pops = [p for p in desc["populations"] if p["neuron_model"] != "spike_list"]
    assert pops
    for p in pops:
        ours = sim.traces[p["name"]][:, 0].reshape(steps, -1)
        if "v" in p["record"]:
            # float32 state: the stand-in adds i_offset before the synaptic input and keeps excitatory and
            # inhibitory currents apart (targets.md §4.4), the interpreter adds one signed current last, so the
            # membranes differ by float32 rounding only: 1e-5 of the largest |v|
            got = rec[p["name"] + ".v"] / np.float32(p["w_scale"])
            np.testing.assert_allclose(got, ours, rtol=0, atol=1e-5 * np.abs(ours).max(),
                                       err_msg=f"readout {p['name']}")
            rates[p["name"]] = float(np.abs(ours).mean())
        else:
            np.testing.assert_array_equal(rec[p["name"] + ".spikes"], ours, err_msg=f"population {p['name']}")
            rates[p["name"]] = float(ours.mean())
    return rates


def test_recurrent_cuba_net_script_matches_interpreter(tmp_path):
    torch.manual_seed(0)
    m = snn.Sequential(RLIF(12, 20, neuron="cuba", dt=DT, tau_mem=5e-3, tau_syn=3e-3), torch.nn.Linear(20, 5),
                       snn.LI(tau_mem=1e-2, dt=DT))
    with torch.no_grad():
        m[0].fc.weight.mul_(3)
    x = (np.random.default_rng(0).random((50, 12)) < 0.3).astype(np.float64)
    rates = _compare(tmp_path, trace(m, dt=DT), x)
    assert rates["0_cubalif"] >= MIN_RATE and rates["2_li"] > 0, rates


def test_delayed_lif_chain_script_matches_interpreter(tmp_path):
    torch.manual_seed(1)
    d = DelayLinear(10, 16, max_delay=5, learn_delay=False, bias=False)
    with torch.no_grad():
        d.weight.uniform_(0.0, 1.0)
    m = snn.Sequential(d, snn.LIF(tau_mem=8e-3, dt=DT), torch.nn.Linear(16, 4), snn.LIF(tau_mem=8e-3, dt=DT))
    with torch.no_grad():
        m[2].weight.uniform_(0.2, 1.0)
    x = (np.random.default_rng(1).random((50, 10)) < 0.3).astype(np.float64)
    rates = _compare(tmp_path, trace(m, dt=DT), x)
    assert rates["1_lif"] >= MIN_RATE and rates["3_lif"] >= MIN_RATE, rates


def test_l2mu_every_population_matches_interpreter(tmp_path):
    torch.manual_seed(2)
    m = L2MU(6, 4, order=2, theta=4.0, hidden_size=8, memory_size=4, dt=0.02, input_pop_size=6)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("weight"):
                p.mul_(3)
        m.pop_m.v_th.fill_(0.02)
        m.pop_u.v_th.fill_(0.1)
    x = (np.random.default_rng(2).random((40, 6)) < 0.5).astype(np.float64)
    rates = _compare(tmp_path, trace(m, dt=0.02), x)
    for name in ("pop_x", "pop_u", "pop_m", "pop_h"):
        assert rates[name] >= MIN_RATE, (name, rates)
