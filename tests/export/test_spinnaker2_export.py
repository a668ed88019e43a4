"""SpiNNaker2 export: the py-spinnaker2 network description, the generated build script, PE mapping and limits."""

from __future__ import annotations

import json
import py_compile

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import ExportError
from spikeseq.export.spinnaker2 import map_pes, network_description, write_spinnaker2
from spikeseq.graph import simulate, trace
from spikeseq.graph.targets import spinnaker2 as s2_limits
from spikeseq.models.l2mu import L2MU
from spikeseq.nn.recurrent import RLIF
from spikeseq.verify import export_and_verify

DT = 1e-3


def _net():
    torch.manual_seed(0)
    m = snn.Sequential(RLIF(12, 20, neuron="cuba", dt=DT, tau_mem=5e-3, tau_syn=3e-3), torch.nn.Linear(20, 5),
                       snn.LI(tau_mem=1e-2, dt=DT))
    with torch.no_grad():
        m[0].fc.weight.mul_(3)
    return m


def test_description_and_script(tmp_path):
    m = _net()
    e = write_spinnaker2(trace(m, dt=DT), tmp_path / "net.json")
    desc = json.loads(e.path.read_text())
    assert desc["format"] == "spikeseq-spinnaker2/1" and desc["dt"] == DT
    pops = {p["name"]: p for p in desc["populations"]}
    assert pops["input"]["neuron_model"] == "spike_list"
    cell = pops["0_cubalif"]
    assert cell["neuron_model"] == "lif_curr_exp_no_delay"
    assert cell["params"]["reset"] == "reset_by_subtraction"
    assert cell["params"]["exc_decay"] == pytest.approx(np.exp(-1 / 3))
    assert cell["params"]["alpha_decay"] == pytest.approx(np.exp(-1 / 5))
    assert pops["2_li"]["params"]["threshold"] == 3.0e38 and pops["2_li"]["record"] == ["v"]
    projs = {p["name"]: p for p in desc["projections"]}
    assert projs["0_rec"]["pre"] == "0_cubalif" and projs["0_rec"]["post"] == "0_cubalif"
    w = np.array([c[2] for p in projs.values() for c in p["connections"]])
    assert w.dtype.kind == "i" and np.abs(w).max() == 127
    assert all(c[3] == 0 for p in projs.values() for c in p["connections"])
    fc = np.zeros((12, 20))
    for pre, post, wt, _ in projs["0_fc"]["connections"]:
        fc[pre, post] = wt
    scale = cell["w_scale"]
    np.testing.assert_allclose(fc / scale, m[0].fc.weight.detach().numpy().T, atol=0.5 / scale + 1e-6)
    py_compile.compile(str(e.script), doraise=True)
    text = e.script.read_text()
    assert "snn.Population(" in text and "snn.Projection(" in text and "net.json" in text


def test_interpreter_tracks_model_and_counts_pes():
    m = _net()
    x = (torch.rand(50, 3, 12, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with torch.no_grad():
        h = m[0](x)[0].numpy()
    r = simulate(trace(m, dt=DT), x, numerics="spinnaker2")
    assert h.mean() > 0.02 and np.mean(r.traces["0_cubalif"] == h) > 0.97
    rep = map_pes(trace(m, dt=DT))
    assert rep.fits and rep.units_used == 3  # input, the recurrent population, the readout


def test_pe_budget_splits_and_refuses(tmp_path):
    lim = s2_limits()
    fan_in = 2000
    m = snn.Sequential(torch.nn.Linear(fan_in, 300), snn.LIF(tau_mem=5e-3, dt=DT))
    with torch.no_grad():
        m[0].weight.uniform_(0.5, 1.0)  # no weight rounds to 0 in int8: every synapse is stored
    g = trace(m, dt=DT)
    pop = next(p for p in map_pes(g).populations if p.node == "1_lif")
    budget = lim.sram_bytes_per_pe - lim.reserved_bytes_per_pe
    per = pop.per_unit
    def used(n):
        return n * lim.neuron_state_bytes + fan_in * lim.row_header_bytes + n * fan_in * lim.synapse_word_bytes

    assert used(per) <= budget < used(per + 1)
    assert pop.units == -(-300 // per)
    huge = trace(snn.Sequential(torch.nn.Linear(30000, 2), snn.LIF(tau_mem=5e-3, dt=DT)), dt=DT)
    with pytest.raises(ExportError, match=r"'1_lif'.*fan-in \d+ needs \d+ bytes.*131072"):
        write_spinnaker2(huge, tmp_path / "huge.json")
    assert list(tmp_path.iterdir()) == []


def test_l2mu_exports_as_projections(tmp_path):
    m = L2MU(6, 4, order=2, theta=4.0, hidden_size=8, memory_size=4, dt=0.02, input_pop_size=6)
    desc = network_description(trace(m, dt=0.02))
    names = {(p["pre"], p["post"]) for p in desc["projections"]}
    assert ("pop_h", "pop_u") in names and ("pop_m", "pop_m") in names and ("pop_u", "pop_m") in names
    with torch.no_grad():   # drive every population: silent ones would "agree" by matching zeros
        for n, p in m.named_parameters():
            if n.endswith("weight"):
                p.mul_(3)
        m.pop_m.v_th.fill_(0.02)
        m.pop_u.v_th.fill_(0.1)
    x = torch.randn(30, 4, 6)
    r = export_and_verify(m, "spinnaker2", tmp_path / "l2mu.json", x, dt=0.02, readout="last")
    assert r.layer_agreement["pop_x"] == 1.0
    # every population, not only the input one (measured: precision/recall 0.89-1.0, rates 0.38-0.80)
    assert set(r.spike_metrics) == {"pop_x", "pop_u", "pop_m", "pop_h", "pop_out"}
    for k, sm in r.spike_metrics.items():
        assert sm["rate_model"] >= 0.2 and sm["rate_graph"] >= 0.2, (k, sm)
        assert sm["precision"] >= 0.85 and sm["recall"] >= 0.85, (k, sm)
    assert (tmp_path / "l2mu.py").exists()


def test_trained_mlp_spinnaker2_accuracy(tmp_path, trained_mlp, nmnist_frames):
    _, (x, y) = nmnist_frames
    r = export_and_verify(trained_mlp, "spinnaker2", tmp_path / "mlp.json", x, y, dt=DT)
    assert r.model_accuracy > 0.5 and r.accuracy_drop <= 0.01 + 1e-9
    assert r.mapping["units_used"] >= 3
