"""SpiNNaker2-style description of custom-program populations (:class:`~spikeseq.graph.ir.EGRUCell`) and their
int8 readouts: populations, CSR projections, PE mapping and the read-back check used by
:mod:`spikeseq.export.spinnaker2`.

A cell population (``neuron_model = "custom_egru"``: a program per PE, as the SpiNNaker 2 EGRU of Nazeer et al.,
arXiv 2312.09084; py-spinnaker2 ships no such model) has the params ``threshold`` [H], ``bias_ih``/``bias_hh``
[3H] (float32), ``ih_scale``/``hh_scale`` [3] (per-gate divisors of the int8 products), ``gate_order = "r,z,n"``
and ``payload`` (``"float32 y"`` or ``"int8 round(y * 2**f)"``). Its two projections are always CSR with rows = the
presynaptic neurons: ``<cell>.ih`` from its input (``weight_ih.T``, ``[I, 3H]``) and ``<cell>.hh`` from itself
(``weight_hh.T``, ``[H, 3H]``), column ``gate * H + unit``; only non-zero (unpruned) int8 weights are stored.

A readout (``neuron_model = "custom_readout"``: an ``Affine`` from cells into the output) accumulates int8 weights
times the int8 payloads in int32 and writes ``acc / (scale * 2**f) + bias`` (float32): params ``bias``, ``scale``,
``payload_frac_bits``; projection ``<readout>`` in CSR as above.

PE mapping (assumptions, stated in the report): a cell is split into slices of ``k`` units; a slice holds the
gate columns of its units (``3k`` columns of the stacked ``[I + H, 3H]`` matrix), so its SRAM use is
``reserved + k * cell_state_bytes + rows * row_header_bytes + synapses * synapse_word_bytes`` with
``cell_state_bytes = 60`` (15 float32 words per unit: c, y, theta, six biases and six gate accumulators) and the
other constants of :class:`~spikeseq.graph.targets.SpiNNaker2Limits`; a readout slice of ``k`` outputs uses
``k * neuron_state_bytes``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from spikeseq.errors import ExportError
from spikeseq.export.mapping import PlacedPopulation, place_on_pes
from spikeseq.graph import ir, targets

__all__ = ["CELL_STATE_BYTES", "cell_description", "cell_mapping", "check_cells", "csr_of", "matrix_of",
           "readout_weights"]

#: bytes per EGRU unit on a PE: 15 float32 words (c, y, theta, 6 biases, 6 gate accumulators): an assumption.
CELL_STATE_BYTES = 60


def _list(a) -> list:
    return [float(v) for v in np.asarray(a, np.float64).reshape(-1)]


def readout_weights(g: ir.Graph, name: str) -> np.ndarray:
    """The int8 weights ``[out, in]`` of readout ``name`` (``weight * scale * 2**f``, exact integers)."""
    q = g.metadata["quant"][name]
    f = q["payload_frac_bits"]
    w = g.nodes[name].weight.astype(np.float64) * q["scale"] * (1.0 if f is None else 2.0**f)
    wi = np.rint(w)
    if np.abs(w - wi).max(initial=0) > 1e-3 or np.abs(wi).max(initial=0) > 127:
        raise ExportError(f"readout {name!r}: weights are not int8 multiples of 1/(scale * 2**f)")
    return wi


def csr_of(w_in_out: np.ndarray) -> dict:
    """A ``[in, out]`` integer matrix as the JSON CSR fields (rows = presynaptic neurons, zeros dropped)."""
    m = sp.csr_matrix(np.asarray(w_in_out, np.float64))
    m.eliminate_zeros()
    m.sort_indices()
    return {"format": "csr", "shape": list(m.shape), "indptr": m.indptr.tolist(), "indices": m.indices.tolist(),
            "weights": [int(v) for v in m.data], "delays": [0] * m.nnz}


def matrix_of(q: dict) -> np.ndarray:
    """The dense ``[in, out]`` matrix of a CSR projection written by :func:`csr_of`."""
    return sp.csr_matrix((np.asarray(q["weights"], np.float64), np.asarray(q["indices"], np.int64),
                          np.asarray(q["indptr"], np.int64)), shape=tuple(q["shape"])).toarray()


def _pre(g: ir.Graph, name: str) -> str:
    p = g.predecessors(name)
    if len(p) != 1:
        raise ExportError(f"{name!r} has {len(p)} inputs {p}; a SpiNNaker2 custom population reads one source")
    return g.behind_flatten(p[0])


def cell_description(g: ir.Graph, per_unit: dict[str, int]) -> tuple[list[dict], list[dict]]:
    """(populations, projections) of the cells and readouts of the quantised graph ``g``."""
    pops, projs = [], []
    for name, node in g.nodes.items():
        if isinstance(node, ir.EGRUCell):
            f = node.payload_frac_bits
            pops.append({"name": name, "size": node.hidden, "neuron_model": "custom_egru", "params": {
                "threshold": _list(node.threshold), "bias_ih": _list(node.bias_ih), "bias_hh": _list(node.bias_hh),
                "ih_scale": _list(node.ih_scale), "hh_scale": _list(node.hh_scale), "gate_order": "r,z,n",
                "payload_frac_bits": f, "payload": "float32 y" if f is None else f"int8 round(y * 2**{f})"},
                "record": ["payload"], "max_atoms_per_core": per_unit.get(name, 1), "w_scale": 1.0})
            projs.append({"name": f"{name}.ih", "pre": _pre(g, name), "post": name, **csr_of(node.weight_ih.T)})
            projs.append({"name": f"{name}.hh", "pre": name, "post": name, **csr_of(node.weight_hh.T)})
        elif node.role == "synapse":
            q = g.metadata["quant"][name]
            bias = getattr(node, "bias", None)
            pops.append({"name": name, "size": node.weight.shape[0], "neuron_model": "custom_readout", "params": {
                "bias": _list(np.zeros(node.weight.shape[0]) if bias is None else bias), "scale": q["scale"],
                "payload_frac_bits": q["payload_frac_bits"]}, "record": ["value"],
                "max_atoms_per_core": per_unit.get(name, 1), "w_scale": q["scale"]})
            projs.append({"name": name, "pre": _pre(g, name), "post": name, **csr_of(readout_weights(g, name).T)})
    return pops, projs


def cell_mapping(g: ir.Graph) -> tuple[list[PlacedPopulation], list[str], int, list[str]]:
    """(placed populations, problems, PEs used, assumptions) of the cells and readouts of ``g``."""
    lim = targets.spinnaker2()
    placed, problems, used = [], [], 0
    for name, node in g.nodes.items():
        if isinstance(node, ir.EGRUCell):
            h = node.hidden
            w = np.vstack([node.weight_ih.T, node.weight_hh.T])            # [I + H, 3H], column gate*H + unit
            order = np.arange(3 * h).reshape(3, h).T.reshape(-1)          # unit-major: r_u, z_u, n_u
            m, n, state, group = sp.csc_matrix(w[:, order]), h, CELL_STATE_BYTES, 3
        elif node.role == "synapse":
            m, n, state, group = sp.csc_matrix(node.weight.T.astype(np.float64)), node.weight.shape[0], \
                lim.neuron_state_bytes, 1
        else:
            continue
        m.eliminate_zeros()
        pop, problem = place_on_pes(name, m, n, lim, state_bytes=state, group=group, what="unit")
        placed.append(pop)
        used += pop.units
        if problem is not None:
            problems.append(problem)
    assumptions = [f"custom EGRU program: {CELL_STATE_BYTES} bytes per unit (15 float32 words: c, y, theta, 6 biases, "
                   "6 gate accumulators), a unit's 3 gate columns (r, z, n) on one PE, input and recurrent CSR rows "
                   "stored on the PE of their columns (assumed; not in hardware/spinnaker2.toml)",
                   "readout program: int32 accumulators, one division by scale * 2**f per output and step"]
    return placed, problems, used, assumptions


def check_cells(desc: dict, g: ir.Graph) -> None:
    """The written CSR projections and the cell parameters (thresholds, biases, per-gate scales) read back equal
    to the quantised graph (exact)."""
    projs = {q["name"]: q for q in desc["projections"]}
    pops = {p["name"]: p for p in desc["populations"]}
    for name, node in g.nodes.items():
        if isinstance(node, ir.EGRUCell):
            ok = (np.array_equal(matrix_of(projs[f"{name}.ih"]), node.weight_ih.T)
                  and np.array_equal(matrix_of(projs[f"{name}.hh"]), node.weight_hh.T)
                  and all(np.array_equal(np.asarray(pops[name]["params"][k], np.float64),
                                         np.asarray(getattr(node, k), np.float64))
                          for k in ("threshold", "bias_ih", "bias_hh", "ih_scale", "hh_scale"))
                  and pops[name]["params"]["payload_frac_bits"] == node.payload_frac_bits)
        elif node.role == "synapse":
            ok = np.array_equal(matrix_of(projs[name]), readout_weights(g, name).T)
        else:
            continue
        if not ok:
            raise ExportError(f"SpiNNaker2 description check: population/projection {name!r} does not read back")
