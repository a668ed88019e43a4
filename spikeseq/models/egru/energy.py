"""Energy per token of an EGRU graph on SpiNNaker2 (event-driven) against a GPU (dense), from measured events.

Counts per token (one time step of one sequence), from the graph's weights (the quantised int8 weights for
SpiNNaker2: pruned and rounded-to-zero synapses are not stored) and the events of an interpreter run:

- SpiNNaker2 synaptic operations: per :class:`~spikeseq.graph.ir.EGRUCell`, every input event (the one-hot token,
  or a non-zero payload of the layer below) times the stored synapses of its column of ``weight_ih`` (all three
  gates), plus every own event of the previous step times the stored synapses of its ``weight_hh`` column; per
  readout, every event of the cell it reads times the stored synapses of its column;
- SpiNNaker2 neuron updates: every unit of every cell and every readout output, every step (the PE program updates
  the gates of all units: ``c`` decays towards ``n`` even without input);
- GPU: the dense equivalent, every weight of every matrix every step (``3H * I + 3H * H`` per cell, ``V * H`` for
  the readout) as MACs, plus the same unit updates, as ``torch.nn.GRU`` computes it (batch 1). The LM's input
  matrix is counted as the graph holds it, ``[3H, vocab]`` with the embedding folded in: ``3H * (vocab - embed)``
  MACs more than a GPU's lookup plus ``[3H, embed]`` product (768 of 262,400 per token for the recipe).

Per-op energies come from ``hardware/spinnaker2.toml`` (Höppner et al. 2019, SpiNNaker 2 prototype, 450 pJ per
synaptic event, 2.19 nJ per neuron update) and ``hardware/gpu.toml`` (Degnan et al. 2015, GTX Titan Black, 0.3 nJ
per op), both as tabulated in keras-spiking. Assumptions: one EGRU unit update costs one prototype neuron update
(an underestimate: the unit computes 2 sigmoids, 1 tanh and about 10 multiply-adds, the prototype figure is a
LIF update); an int8 x int8 synaptic event costs one prototype synaptic event; static power, the host and the
input/output transfers are not counted; the GPU figure is per MAC including memory traffic at batch 1.
The SpiNNaker 2 EGRU paper (Nazeer et al., arXiv 2312.09084; SNUFA 2024 abstract) reports 5-18x less energy than a
GPU for single-batch inference; its absolute per-inference energies and its GPU model were not retrieved
(specs/energy.md §4), so only that ratio can be compared.
"""

from __future__ import annotations

import numpy as np

from spikeseq import hardware
from spikeseq.graph import ir

#: The SpiNNaker 2 paper's claim: 5-18x less energy than a GPU for batch-1 inference (Nazeer et al., arXiv
#: 2312.09084, SNUFA 2024 abstract; specs/energy.md §1 table and §4).
PAPER_GPU_OVER_SPINNAKER2 = (5.0, 18.0)


def _col_nnz(w: np.ndarray) -> np.ndarray:
    return np.count_nonzero(w, axis=0).astype(np.float64)


def token_counts(g: ir.Graph, inputs: np.ndarray, traces: dict[str, np.ndarray]) -> dict[str, float]:
    """Operations per token of graph ``g`` (flat; quantised or float) on ``inputs`` ``[T, B, I]`` given each cell's
    recorded payloads ``traces[cell]`` ``[T, B, H]`` (see the module docstring)."""
    tokens = inputs.shape[0] * inputs.shape[1]
    out = {"input_synops": 0.0, "recurrent_synops": 0.0, "readout_synops": 0.0, "unit_updates": 0.0,
           "readout_updates": 0.0, "events": 0.0, "dense_macs": 0.0}
    for name, node in g.nodes.items():
        preds = g.predecessors(name)
        if isinstance(node, ir.EGRUCell):
            src = preds[0]
            x = inputs if isinstance(g.nodes[src], ir.Input) else traces[src]
            y = traces[name] != 0
            out["input_synops"] += float(((x != 0).reshape(-1, x.shape[-1]) @ _col_nnz(node.weight_ih)).sum())
            out["recurrent_synops"] += float((y[:-1].reshape(-1, y.shape[-1]) @ _col_nnz(node.weight_hh)).sum())
            out["unit_updates"] += node.hidden * tokens
            out["events"] += float(y.sum())
            out["dense_macs"] += (node.weight_ih.size + node.weight_hh.size) * tokens
        elif node.role == "synapse" and preds and isinstance(g.nodes[preds[0]], ir.EGRUCell):
            x = traces[preds[0]] != 0
            out["readout_synops"] += float((x.reshape(-1, x.shape[-1]) @ _col_nnz(node.weight)).sum())
            out["readout_updates"] += node.weight.shape[0] * tokens
            out["dense_macs"] += node.weight.size * tokens
    return {k: v / tokens for k, v in out.items()}


def energy_per_token(counts: dict[str, float]) -> dict:
    """SpiNNaker2 and GPU energy per token (pJ) from :func:`token_counts`, with the per-op figures and sources."""
    s2, gpu = hardware.load("spinnaker2"), hardware.load("gpu")
    synops = counts["input_synops"] + counts["recurrent_synops"] + counts["readout_synops"]
    updates = counts["unit_updates"] + counts["readout_updates"]
    e_s2 = synops * s2.energy_pj("synaptic_op") + updates * s2.energy_pj("neuron_update")
    e_gpu = counts["dense_macs"] * gpu.energy_pj("synaptic_op") + updates * gpu.energy_pj("neuron_update")
    lo, hi = PAPER_GPU_OVER_SPINNAKER2
    return {"spinnaker2_pj": e_s2, "gpu_pj": e_gpu, "gpu_over_spinnaker2": e_gpu / e_s2,
            "paper_gpu_over_spinnaker2": [lo, hi],
            "per_op_pj": {"spinnaker2.synaptic_op": s2.energy_pj("synaptic_op"),
                          "spinnaker2.neuron_update": s2.energy_pj("neuron_update"),
                          "gpu.synaptic_op": gpu.energy_pj("synaptic_op"),
                          "gpu.neuron_update": gpu.energy_pj("neuron_update")},
            "sources": {"spinnaker2": s2.energy["synaptic_op"].source, "gpu": gpu.energy["synaptic_op"].source,
                        "paper": "Nazeer et al., arXiv 2312.09084 / SNUFA 2024 abstract: 5-18x less energy than a "
                                 "GPU at batch 1 (absolute figures not retrieved, specs/energy.md §4)"}}
