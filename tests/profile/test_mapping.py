"""Target-mapped energy from the event-driven interpreter's counts and the Loihi core placement."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeseq import nn as snn
from spikeseq import profile
from spikeseq.errors import ConfigError

graph_mod = pytest.importorskip("spikeseq.graph")


@pytest.fixture(scope="module")
def setup():
    from spikeseq.export.loihi import map_cores
    from spikeseq.graph.simulate import simulate

    torch.manual_seed(0)
    model = snn.Sequential(nn.Linear(20, 16), snn.LIF(16, beta=0.9, reset="zero"), nn.Linear(16, 4),
                           snn.LIF(4, beta=0.9, reset="zero"))
    x = (torch.rand(10, 8, 20, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    g = graph_mod.trace(model, dt=1e-3)
    sim = simulate(g, x.numpy(), numerics="float")
    return model, x, g, sim, map_cores(g)


def test_interpreter_counts_equal_profiler_counts(setup):
    model, x, g, sim, _ = setup
    rep = profile.count(model, x)
    c = sim.counts()
    assert c["0_affine"]["synops"] == rep.layer("layers.0").total("eff_acs")
    assert c["2_affine"]["synops"] == rep.layer("layers.2").total("eff_acs")
    assert c["1_lif"]["neuron_updates"] == rep.layer("layers.1").total("neuron_updates")
    assert c["1_lif"]["events"] == rep.layer("layers.1").total("spikes_out")
    assert c["3_lif"]["events"] == rep.layer("layers.3").total("spikes_out")


def test_mapped_energy_formula(setup):
    _, x, g, sim, placement = setup
    c = sim.counts()
    est = profile.mapped_energy(c, placement, "loihi", samples=8, graph=g)
    syn = sum(v["synops"] + v["dense_macs"] for v in c.values()) * 23.6 / 8
    neu = sum(v["neuron_updates"] for v in c.values()) * 81 / 8
    units = {p.node: p.units for p in placement.populations}
    # 1_lif's events reach the cores of 3_lif; unplaced nodes (input, output) and 3_lif (which reaches nothing
    # placed) count one destination per event
    routes = (c["input"]["events"] + c["1_lif"]["events"] * units["3_lif"] + c["3_lif"]["events"]
              + c["output"]["events"]) / 8
    assert est.terms_pj["synaptic"] == pytest.approx(syn)
    assert est.terms_pj["neuron"] == pytest.approx(neu)
    assert est.terms_pj["routing"] == pytest.approx(routes * 1.7)
    hops = profile.mapped_energy(c, placement, "loihi", samples=8, graph=g, mean_hops=2.0)
    assert hops.total_pj == pytest.approx(est.total_pj + routes * 2.0 * 3.5)
    assert any("cores/PEs in use" in n for n in est.notes)


def test_mapped_energy_bad_tables(setup):
    _, _, _, sim, placement = setup
    with pytest.raises(ConfigError, match=r"no energy\.synaptic_op"):
        profile.mapped_energy(sim.counts(), placement, "loihi2")
    with pytest.raises(ConfigError, match="neuromorphic"):
        profile.mapped_energy(sim.counts(), placement, "horowitz45nm")
    with pytest.raises(ConfigError, match="no hop energies"):
        profile.mapped_energy(sim.counts(), {"1_lif": 1}, "spinnaker2", mean_hops=1.0)
