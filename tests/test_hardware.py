"""spikeseq.hardware: every shipped table loads, every number has a source, bad tables fail clearly."""

from __future__ import annotations

import tomllib

import pytest

from spikeseq import hardware
from spikeseq.errors import ConfigError


def test_available_lists_the_shipped_tables():
    names = hardware.available()
    for n in ("loihi", "loihi2", "spinnaker2", "horowitz45nm", "truenorth", "cpu", "gpu"):
        assert n in names


@pytest.mark.parametrize("name", hardware.available())
def test_every_table_loads_and_every_entry_is_sourced(name):
    spec = hardware.load(name)
    assert spec.name == name
    for table in (spec.limits, spec.formats, spec.energy):
        for key, e in table.items():
            assert e.source.strip(), f"{name}.{key} has no source"
    for e in spec.energy.values():
        assert e.pj > 0


def test_known_values():
    loihi = hardware.load("loihi")
    assert loihi.limit("neurons_per_core") == 1024
    assert loihi.limit("synapse_memory_bits_per_core") == 16384 * 64
    assert loihi.limit("max_delay") == 62
    assert loihi.limit("weight_bits") == 8
    assert loihi.energy_pj("synaptic_op") == pytest.approx(23.6)
    assert loihi.energy_pj("neuron_update") == pytest.approx(81.0)
    s2 = hardware.load("spinnaker2")
    assert s2.limit("sram_bytes_per_pe") == 128 * 1024
    assert s2.limit("pes_per_chip") == 152
    assert s2.energy_pj("synaptic_op") == pytest.approx(450.0)
    assert s2.energy_pj("neuron_update") == pytest.approx(2190.0)
    h = hardware.load("horowitz45nm")
    assert h.energy_pj("fp32_add") + h.energy_pj("fp32_mult") == pytest.approx(4.6)
    assert h.energy_pj("dram_64b") == pytest.approx(1300.0)


def test_loihi2_has_no_invented_energy():
    spec = hardware.load("loihi2")
    assert spec.energy == {}
    with pytest.raises(ConfigError, match=r"no energy\.synaptic_op"):
        spec.energy_pj("synaptic_op")
    assert any("No per-operation energy" in n for n in spec.notes)


def test_unknown_name_lists_available():
    with pytest.raises(ConfigError) as e:
        hardware.load("loihi3")
    for n in ("loihi", "spinnaker2", "horowitz45nm"):
        assert n in str(e.value)


def test_missing_limit_key_lists_keys():
    with pytest.raises(ConfigError, match="neurons_per_core"):
        hardware.load("loihi").limit("neurons_per_pe")


def test_table_without_source_fails(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('name = "bad"\nkind = "neuromorphic"\n[energy.synaptic_op]\nvalue = 1.0\nunit = "pJ"\n')
    with pytest.raises(ConfigError, match=r"energy\.synaptic_op.*no source"):
        hardware.load(p)


def test_empty_source_and_bad_unit_fail(tmp_path):
    p = tmp_path / "empty.toml"
    p.write_text('[limits.x]\nvalue = 3\nsource = "  "\n')
    with pytest.raises(ConfigError, match="no source"):
        hardware.load(p)
    q = tmp_path / "unit.toml"
    q.write_text('[energy.x]\nvalue = 3\nunit = "W"\nsource = "s"\n')
    with pytest.raises(ConfigError, match="unit 'W'"):
        hardware.load(q)


def test_directory_override(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text('[energy.synaptic_op]\nvalue = 2\nunit = "nJ"\nsource = "test"\n')
    monkeypatch.setenv("SPIKESEQ_HARDWARE", str(tmp_path))
    assert hardware.available() == ["mine"]
    assert hardware.load("mine").energy_pj("synaptic_op") == 2000.0


def test_spec_is_frozen_and_raw_kept():
    spec = hardware.load("loihi")
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
    raw = tomllib.loads((hardware.hardware_dir() / "loihi.toml").read_text())
    assert spec.raw == raw
