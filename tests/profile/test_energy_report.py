"""Energy = counts x hardware table (memory on/off), report outputs, and the figure."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from spikeseq import hardware, profile
from spikeseq import nn as snn
from spikeseq.errors import ConfigError


@pytest.fixture(scope="module")
def report():
    torch.manual_seed(0)
    model = snn.Sequential(nn.Linear(20, 16), snn.LIF(16, beta=0.9), nn.Linear(16, 4), snn.LIF(4, beta=0.9))
    x = (torch.rand(10, 8, 20, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    return profile.count(model, x)


def test_arithmetic_energy_is_counts_times_table(report):
    t = report.totals()
    h = hardware.load("horowitz45nm")
    add, mult = h.energy_pj("fp32_add"), h.energy_pj("fp32_mult")
    expected = (t["eff_macs"] * (add + mult) + t["eff_acs"] * add + t["bias_adds"] * add
                + t["state_mults"] * mult + t["state_adds"] * add)
    off = report.energy("horowitz45nm", memory=False)
    assert off.total_pj == pytest.approx(expected, rel=1e-12)
    assert sum(off.per_layer_pj.values()) == pytest.approx(off.total_pj, rel=1e-12)
    # every layer here fits in 8 kB: 32-bit words cost half a 64-bit 8 kB access
    word = h.energy_pj("sram_64b_8kB") / 2
    accesses = sum(t[k] for k in ("mem_weight_reads", "mem_state_reads", "mem_state_writes", "mem_input_reads",
                                  "mem_output_writes"))
    on = report.energy("horowitz45nm", memory=True)
    assert on.total_pj == pytest.approx(expected + accesses * word + t["addr_adds"] * h.energy_pj("int32_add"))
    int8 = report.energy("horowitz45nm", memory=False, precision="int8")
    assert int8.total_pj < off.total_pj
    with pytest.raises(ConfigError, match="precisions with both"):
        report.energy("horowitz45nm", precision="int16")


def test_neuromorphic_and_dense_energy(report):
    t = report.totals()
    loihi = report.energy("loihi")
    active, total = t["neuron_updates_active"], t["neuron_updates"]
    expected = ((t["eff_acs"] + t["eff_macs"]) * 23.6 + active * 81 + (total - active) * 52
                + t["spikes_out"] * 1.7)
    assert loihi.total_pj == pytest.approx(expected)
    assert report.energy("loihi", memory=False).total_pj == loihi.total_pj
    s2 = report.energy("spinnaker2")
    assert s2.total_pj == pytest.approx((t["eff_acs"] + t["eff_macs"]) * 450 + total * 2190)
    gpu = report.energy("gpu")
    assert gpu.total_pj == pytest.approx(t["dense_macs"] * 300 + total * 300)


def test_tables_without_figures_and_unknown_names(report):
    with pytest.raises(ConfigError, match="no energy figures"):
        report.energy("loihi2")
    with pytest.raises(ConfigError, match=r"available: .*horowitz45nm"):
        report.energy("loihi9")
    e = report.energies()
    assert e["loihi2"]["memory_on_pj"] is None
    assert e["horowitz45nm"]["memory_on_pj"] > e["horowitz45nm"]["memory_off_pj"] > 0


def test_report_outputs(report, tmp_path):
    d = json.loads(json.dumps(report.to_dict()))
    assert d["n_samples"] == 8 and d["time_steps"] == 10
    assert [layer["name"] for layer in d["layers"]] == ["layers.0", "layers.1", "layers.2", "layers.3"]
    assert len(d["layers"][1]["per_step_per_sample"]["spikes_out"]) == 10
    assert d["totals_per_sample"]["eff_acs"] == pytest.approx(report.totals()["eff_acs"])
    path = report.save_json(tmp_path / "profile.json")
    assert json.loads(path.read_text())["model"] == "Sequential"
    md = report.to_markdown()
    assert "| layers.1 | LIF |" in md and "| horowitz45nm |" in md and "no published figures" in md
    assert report.per_step("eff_acs").sum() == pytest.approx(report.totals()["eff_acs"])
    rate = report.spike_rate("layers.1")
    assert rate.shape == (10,) and ((rate >= 0) & (rate <= 1)).all()


def test_plot_profile_writes_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    from spikeseq.profile.plots import plot_profile

    path = plot_profile(report, tmp_path / "profile.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
