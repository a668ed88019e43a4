"""Energy = counts x a hardware table (``hardware/*.toml``), with memory terms on or off.

How each table ``kind`` prices the counters (per layer; all energies in pJ):

* ``arithmetic`` (horowitz45nm), at a ``precision`` (fp32, fp16, int32, int8):
  ``eff_macs*(mult+add) + eff_acs*add + bias_adds*add + state_mults*mult + state_adds*add``. With
  ``memory=True`` it adds Lemaire et al.'s addressing (``addr_adds`` integer adds, int32 when the table has
  them) and every memory access: a ``w``-bit word costs ``w/64`` of the 64-bit access energy of the smallest
  Horowitz SRAM (8 kB, 32 kB, 1 MB; DRAM above) that holds the layer's parameters and state (word widths from
  ``report.bits``). Comparisons and nonlinearities are counted but not priced.
* ``neuromorphic`` (loihi, spinnaker2, spinnaker, truenorth): ``(eff_acs + eff_macs) * synaptic_op +
  neuron updates * neuron_update`` (Loihi: active ones at ``neuron_update``, inactive ones at
  ``neuron_update_inactive``) ``+ spikes_out * spike_within_tile`` where the table has it. The published
  figures already include the cores' memory accesses, so ``memory`` changes nothing (a note says so).
* ``dense`` (cpu, gpu, arm; Degnan et al. via keras-spiking): the device computes every connection every step,
  ``dense_macs * synaptic_op + neuron_updates * neuron_update``; memory is inside the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spikeseq.errors import ConfigError
from spikeseq.hardware import HardwareSpec, load

SRAM_LEVELS = (("sram_64b_8kB", 8 * 1024), ("sram_64b_32kB", 32 * 1024), ("sram_64b_1MB", 1024 * 1024))


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per sample (one inference over all time steps), in pJ, with per-layer and per-term splits."""

    table: str
    memory: bool
    precision: str | None
    total_pj: float
    per_layer_pj: dict[str, float]
    terms_pj: dict[str, float]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_nj(self) -> float:
        """Total energy per sample in nJ."""
        return self.total_pj / 1e3

    @property
    def total_uj(self) -> float:
        """Total energy per sample in uJ."""
        return self.total_pj / 1e6

    def to_dict(self) -> dict:
        """The estimate as JSON-ready data (pJ totals, per layer and per term, and the table's notes)."""
        return {"table": self.table, "memory": self.memory, "precision": self.precision,
                "total_pj": self.total_pj, "per_layer_pj": dict(self.per_layer_pj), "terms_pj": dict(self.terms_pj),
                "notes": list(self.notes)}


def _spec(table: str | HardwareSpec) -> HardwareSpec:
    return table if isinstance(table, HardwareSpec) else load(table)


def price(counts: dict[str, float], spec: HardwareSpec, *, memory: bool = True, precision: str = "fp32",
          footprint_bytes: float = 0.0, bits: dict[str, int] | None = None) -> dict[str, float]:
    """Energy terms (pJ) of one layer's total ``counts`` on ``spec``."""
    c = lambda k: float(counts.get(k, 0.0))  # noqa: E731
    e = spec.energy
    if not e:
        raise ConfigError(
            f"hardware table {spec.name!r} has no energy figures. " + " ".join(spec.notes)
        )
    terms: dict[str, float] = {}
    if spec.kind == "arithmetic":
        add, mult = f"{precision}_add", f"{precision}_mult"
        if add not in e or mult not in e:
            have = sorted({k.rsplit('_', 1)[0] for k in e if k.endswith("_mult")})
            raise ConfigError(f"table {spec.name!r} has no {add}/{mult}; precisions with both: {', '.join(have)}")
        a, m = e[add].pj, e[mult].pj
        terms["mac"] = c("eff_macs") * (a + m)
        terms["ac"] = c("eff_acs") * a
        terms["bias"] = c("bias_adds") * a
        terms["state"] = c("state_mults") * m + c("state_adds") * a
        if memory:
            b = {"weight": 32, "state": 32, "io": 32, **(bits or {})}
            level = next((k for k, size in SRAM_LEVELS if footprint_bytes <= size and k in e), "dram_64b")
            if level not in e:
                raise ConfigError(f"table {spec.name!r} has no {level} entry for memory accesses")
            word = e[level].pj / 64.0
            addr = e["int32_add"].pj if "int32_add" in e else a
            terms["addressing"] = c("addr_adds") * addr
            terms["mem_weights"] = c("mem_weight_reads") * b["weight"] * word
            terms["mem_state"] = (c("mem_state_reads") + c("mem_state_writes")) * b["state"] * word
            terms["mem_io"] = (c("mem_input_reads") + c("mem_output_writes")) * b["io"] * word
    elif spec.kind == "neuromorphic":
        syn = e.get("synaptic_op")
        if syn is None:
            raise ConfigError(f"table {spec.name!r} has no energy.synaptic_op")
        terms["synaptic"] = (c("eff_acs") + c("eff_macs")) * syn.pj
        if "neuron_update" in e:
            if "neuron_update_inactive" in e:
                active = float(counts.get("neuron_updates_active", counts.get("neuron_updates", 0.0)))
                terms["neuron"] = (active * e["neuron_update"].pj
                                   + (c("neuron_updates") - active) * e["neuron_update_inactive"].pj)
            else:
                terms["neuron"] = c("neuron_updates") * e["neuron_update"].pj
        if "spike_within_tile" in e:
            terms["spikes"] = c("spikes_out") * e["spike_within_tile"].pj
    elif spec.kind == "dense":
        terms["synaptic"] = c("dense_macs") * e["synaptic_op"].pj
        if "neuron_update" in e:
            terms["neuron"] = c("neuron_updates") * e["neuron_update"].pj
    else:
        raise ConfigError(f"table {spec.name!r} has kind {spec.kind!r}; energy needs arithmetic/neuromorphic/dense")
    return terms


def estimate(report, table: str | HardwareSpec, *, memory: bool = True, precision: str = "fp32") -> EnergyEstimate:
    """Energy per sample of a :class:`~spikeseq.profile.ProfileReport` on one hardware table."""
    spec = _spec(table)
    n = max(report.n_samples, 1)
    per_layer: dict[str, float] = {}
    terms: dict[str, float] = {}
    for layer in report.layers:
        totals = {k: float(v.sum()) / n for k, v in layer.counts.items()}
        state_words = totals.get("neuron_updates", 0.0) / max(report.time_steps, 1)
        footprint = (layer.params * report.bits.get("weight", 32) + state_words * report.bits.get("state", 32)) / 8
        t = price(totals, spec, memory=memory, precision=precision, footprint_bytes=footprint, bits=report.bits)
        per_layer[layer.name] = sum(t.values())
        for k, v in t.items():
            terms[k] = terms.get(k, 0.0) + v
    notes = list(spec.notes)
    if spec.kind != "arithmetic" and memory:
        notes.append(f"{spec.name}: memory accesses are inside the per-op figures; memory=True adds nothing")
    if report.not_counted:
        notes.append("modules not counted (energy excludes them): "
                     + ", ".join(f"{d['name']} ({d['type']})" for d in report.not_counted))
    return EnergyEstimate(table=spec.name, memory=memory, precision=precision if spec.kind == "arithmetic" else None,
                          total_pj=sum(per_layer.values()), per_layer_pj=per_layer, terms_pj=terms, notes=tuple(notes))
