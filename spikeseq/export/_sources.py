"""Which population a synapse reads spikes from, shared by the hardware writers (Lava, SpiNNaker2)."""

from __future__ import annotations

from spikeseq.errors import ExportError
from spikeseq.graph import ir


def spike_source(g: ir.Graph, name: str, *, target: str, readout_kind: type[ir.Node]) -> str:
    """The population or input that synapse ``name`` reads (looking through Flatten nodes).

    Raises :class:`ExportError` when the synapse has several inputs, reads something other than a population or an
    input, or reads a readout population (of type ``readout_kind``), which never spikes on ``target``.
    """
    preds = g.predecessors(name)
    if len(preds) != 1:
        raise ExportError(f"synapse {name!r} has {len(preds)} inputs {preds}; a {target} connection reads one "
                          "population")
    p = g.behind_flatten(preds[0])
    if g.nodes[p].role not in ("neuron", "io"):
        raise ExportError(f"synapse {name!r} reads from {p!r} ({g.nodes[p].kind}); a {target} connection reads the "
                          "spikes of a population or an input")
    if isinstance(g.nodes[p], readout_kind) and getattr(g.nodes[p], "readout", False):
        raise ExportError(f"synapse {name!r} reads from readout {p!r}, which does not spike on {target}")
    return p
