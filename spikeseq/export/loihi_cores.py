"""Loihi core mapping: place every population of a (quantised) graph on Loihi cores.

Per-core limits (Loihi 1, ``hardware/loihi.toml``): a population is split into equal slices; a slice must hold
<= 1024 compartments, receive from <= 4096 input axons, send to <= 4096 output axons, and fit its synapses in
1,048,576 bits of synapse memory at ``weight_bits`` (+ :data:`DELAY_BITS` delay bits when delays are present) per
synapse. This synapse-memory model ignores nengo-loihi's compression and per-axon headers (an approximation).
Shared by the netx writer (:mod:`spikeseq.export.loihi`) and the Lava description writer
(:mod:`spikeseq.export.lava`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from spikeseq.export.mapping import MappingReport, PlacedPopulation, best_split, column_slices
from spikeseq.graph import ir, targets
from spikeseq.graph.quantize import quantize
from spikeseq.graph.simulate import synapse_matrix

__all__ = ["DELAY_BITS", "loihi_graph", "map_cores"]

#: bits of a per-synapse delay in Loihi synapse memory (delays 0..62)
DELAY_BITS = 6


def loihi_graph(graph: ir.Graph, **quantize_kwargs) -> ir.Graph:
    """``graph`` quantised for Loihi (:func:`spikeseq.graph.quantize.quantize`), or flattened when it is already."""
    if graph.metadata.get("numerics") == "loihi":
        return graph.flat()
    return quantize(graph, "loihi", **quantize_kwargs)


def _population_matrix(g: ir.Graph, name: str) -> tuple[sp.csc_matrix, bool]:
    mats, delays = [], False
    for s in g.predecessors(name):
        m = synapse_matrix(g.nodes[s])
        mats.append(sp.csr_matrix(m) if not sp.issparse(m) else m)
        delays |= isinstance(g.nodes[s], ir.DelayAffine)
    return sp.vstack(mats).tocsc(), delays


def map_cores(graph: ir.Graph, **quantize_kwargs) -> MappingReport:
    """Place every population of ``graph`` (quantised if needed) on Loihi cores; see the module docstring."""
    g = loihi_graph(graph, **quantize_kwargs)
    lim = targets.loihi()
    pops, problems = [], []
    names = [k for k, n in g.nodes.items() if isinstance(n, ir.LoihiCUBA)]
    # output axons: how many cores of each population a neuron of ``name`` projects to is known only after
    # placing the targets; place in two passes (targets first need only their own inputs).
    placed: dict[str, int] = {}
    info: dict[str, tuple] = {}
    for name in names:
        m, delays = _population_matrix(g, name)
        bits = int(lim.synapse_memory_bits_per_core)
        per_syn = 8 + (DELAY_BITS if delays else 0)
        n = m.shape[1]

        def ok(size, m=m, per_syn=per_syn, bits=bits):
            return all(rows <= lim.input_axons_per_core and nnz * per_syn <= bits
                       for rows, nnz, _ in column_slices(m, size))

        size = best_split(n, lim.neurons_per_core, ok)
        fan_in = int(np.diff(m.indptr).max(initial=0))
        if size == 0:
            worst_rows = max(r for r, _, _ in column_slices(m, 1))
            if worst_rows > lim.input_axons_per_core:
                problems.append(f"population {name!r}: fan-in of one neuron is {worst_rows} input axons, above the "
                                f"Loihi limit of {lim.input_axons_per_core} per core")
            else:
                problems.append(f"population {name!r}: one neuron's {fan_in} synapses x {per_syn} bits exceed the "
                                f"{bits}-bit synapse memory of a core")
            placed[name] = 0
            info[name] = (n, fan_in, int(m.nnz), 0, {})
            continue
        sl = column_slices(m, size)
        usage = {"compartments": (size, lim.neurons_per_core),
                 "input_axons": (max(r for r, _, _ in sl), lim.input_axons_per_core),
                 "synapse_bits": (max(z for _, z, _ in sl) * per_syn, bits)}
        placed[name] = math.ceil(n / size)
        info[name] = (n, fan_in, int(m.nnz), size, usage)
    for name in names:
        n, fan_in, nnz, size, usage = info[name]
        if size:
            targets_cores = sum(placed[t] for s in g.successors(name) for t in g.successors(s) if t in placed)
            out_axons = size * max(1, targets_cores)
            usage["output_axons"] = (out_axons, lim.output_axons_per_core)
            if out_axons > lim.output_axons_per_core:
                problems.append(f"population {name!r}: {size} neurons per core x {targets_cores} target cores = "
                                f"{out_axons} output axons, above the Loihi limit of {lim.output_axons_per_core}")
        pops.append(PlacedPopulation(name, n, fan_in, nnz, size, placed[name], usage))
    used = sum(placed.values())
    if used > lim.cores_per_chip:
        problems.append(f"{used} cores needed, a Loihi chip has {lim.cores_per_chip} (multi-chip not modelled)")
    return MappingReport("loihi", "core", pops, used, lim.cores_per_chip, problems,
                         assumptions=[f"synapse memory: {8} weight bits (+{DELAY_BITS} delay bits) per synapse, no "
                                      "compression or per-axon overhead (nengo-loihi's encoding is not modelled)"])
