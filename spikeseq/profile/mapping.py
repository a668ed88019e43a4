"""Target-mapped energy: the interpreter's counts priced on a hardware table, using the placement of the export.

    sim = spikeseq.graph.simulate(graph, x, numerics="loihi")             # per-node counts over the run
    placement = spikeseq.export.loihi.map_cores(graph)                     # populations -> cores
    est = mapped_energy(sim.counts(), placement, "loihi", samples=x.shape[1], graph=graph)

``counts``: ``{node: {"events", "synops", "dense_macs", "neuron_updates"}}`` totals over the run and the batch
(:meth:`spikeseq.graph.simulate.SimResult.counts`). ``placement``: a mapping report with ``populations`` (each
with ``node`` and ``units``, the cores / PEs it occupies) or a plain ``{node: units}`` dict. ``graph`` (optional,
anything with ``successors(name)``): lets each event be routed to every core of every population it reaches.

Energy per sample (``kind = "neuromorphic"`` tables):

* synaptic: ``(synops + dense_macs) * synaptic_op`` (dense products of non-event inputs priced per MAC);
* neuron: ``neuron_updates * neuron_update`` (the interpreter does not report active vs inactive updates, so
  Loihi's active figure is used for all);
* routing: ``events * destination cores * spike_within_tile`` where the table has it, plus
  ``events * destination cores * mean_hops * mean(hop_east_west, hop_north_south)`` when ``mean_hops`` is given.
  Without core coordinates the hop count is unknown; the default 0 leaves mesh hops out (stated in the notes).

Units (cores / PEs) in use are reported; no table has a sourced static power per core, so they are not priced.
"""

from __future__ import annotations

from spikeseq.errors import ConfigError
from spikeseq.hardware import HardwareSpec, load
from spikeseq.profile.energy import EnergyEstimate


def _units(placement) -> dict[str, int]:
    if placement is None:
        return {}
    if isinstance(placement, dict):
        return {str(k): int(v) for k, v in placement.items()}
    pops = getattr(placement, "populations", None)
    if pops is None:
        raise ConfigError("placement must be a mapping report with .populations or a {node: units} dict")
    return {p.node: int(p.units) for p in pops}


def destinations(graph, units: dict[str, int]) -> dict[str, int]:
    """Cores reached by one event of each population: the units of every population two edges downstream
    (population -> synapse -> population); 1 when nothing placed is reached."""
    out: dict[str, int] = {}
    for node in units:
        total = 0
        for s in graph.successors(node):
            for t in graph.successors(s):
                total += units.get(t, 0)
        out[node] = max(total, 1)
    return out


def mapped_energy(counts: dict[str, dict[str, float]], placement, table: str | HardwareSpec, *,
                  samples: int = 1, graph=None, mean_hops: float = 0.0) -> EnergyEstimate:
    """Energy per sample of an exported graph from interpreter counts and a placement (see module docstring)."""
    spec = table if isinstance(table, HardwareSpec) else load(table)
    if spec.kind != "neuromorphic":
        raise ConfigError(f"mapped energy needs a neuromorphic table (loihi, spinnaker2, ...); {spec.name!r} is "
                          f"{spec.kind!r}: use ProfileReport.energy for it")
    e = spec.energy
    if "synaptic_op" not in e:
        raise ConfigError(f"hardware table {spec.name!r} has no energy.synaptic_op. " + " ".join(spec.notes))
    units = _units(placement)
    dest = destinations(graph, units) if graph is not None else {n: 1 for n in units}
    n = max(int(samples), 1)
    hop = 0.0
    if mean_hops:
        hops = [e[k].pj for k in ("hop_east_west", "hop_north_south") if k in e]
        if not hops:
            raise ConfigError(f"hardware table {spec.name!r} has no hop energies; leave mean_hops = 0")
        hop = sum(hops) / len(hops)
    per_node: dict[str, float] = {}
    terms = {"synaptic": 0.0, "neuron": 0.0, "routing": 0.0}
    for node, c in counts.items():
        syn = (float(c.get("synops", 0)) + float(c.get("dense_macs", 0))) * e["synaptic_op"].pj / n
        neu = float(c.get("neuron_updates", 0)) * e["neuron_update"].pj / n if "neuron_update" in e else 0.0
        routes = float(c.get("events", 0)) * dest.get(node, 1) / n
        rout = routes * (e["spike_within_tile"].pj if "spike_within_tile" in e else 0.0) + routes * mean_hops * hop
        per_node[node] = syn + neu + rout
        terms["synaptic"] += syn
        terms["neuron"] += neu
        terms["routing"] += rout
    notes = list(spec.notes)
    if units:
        notes.append(f"placement: {sum(units.values())} {spec.name} cores/PEs in use "
                     f"({', '.join(f'{k}: {v}' for k, v in units.items())}); static power not priced (no sourced "
                     "figure)")
    if not mean_hops and ("hop_east_west" in e or "hop_north_south" in e):
        notes.append("mesh hops not included (core coordinates unknown); pass mean_hops to add them")
    if graph is None and units:
        notes.append("graph not given: one destination core per event assumed")
    return EnergyEstimate(table=spec.name, memory=False, precision=None, total_pj=sum(per_node.values()),
                          per_layer_pj=per_node, terms_pj=terms, notes=tuple(notes))
