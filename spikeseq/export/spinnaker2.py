"""SpiNNaker2-style export: a py-spinnaker2 network description (JSON), a Python script that builds it with the
py-spinnaker2 API, and a processing-element (PE) mapping.

``write_spinnaker2(graph, path)`` quantises a float graph (:func:`spikeseq.graph.quantize.quantize`,
``"spinnaker2"``), maps it (:func:`map_pes`), refuses with an :class:`~spikeseq.errors.ExportError` naming the node
and the limit when it does not fit, and writes ``path`` (JSON) and ``path.with_suffix(".py")`` atomically.

JSON layout (``format = "spikeseq-spinnaker2/1"``)::

    dt, sys_tick_in_s           the model step in seconds (also the suggested real-time tick)
    populations: [{name, size, neuron_model, params, record, max_atoms_per_core, w_scale}]
        neuron_model  "spike_list" (inputs), "lif_no_delay", "lif_curr_exp_no_delay" or "lif" (delayed inputs)
        params        threshold, alpha_decay, i_offset, v_reset, reset ("reset_by_subtraction" |
                      "reset_to_v_reset"), and exc_decay = inh_decay (lif_curr_exp), t_refrac = 0; a scalar when
                      uniform over the population, else a list; readouts get threshold = 3.0e38 (never spikes);
                      graded populations (spikes carry the membrane) get graded_payload = "v / w_scale"
    projections: [{name, pre, post, format: "list", connections: [[pre, post, weight, delay], ...]}]
                 or format "csr" with indptr / indices / weights / delays (rows = pre neurons) when large
    run_extra_steps  ticks to run beyond the input's T: the largest input-to-population hop latency
                 (:func:`spikeseq.graph.simulate.hop_latency`; one tick per projection on a feed-forward path)

Custom-program populations (:class:`~spikeseq.graph.ir.EGRUCell`, ``neuron_model = "custom_egru"``, and their
int8 readouts, ``"custom_readout"``) are described, mapped and checked by :mod:`spikeseq.export.spinnaker2_cells`
(CSR rows of the pruned int8 weights, payload format, PE mapping with its assumptions).

Weights are int8 (``round(W * w_scale)``, ``|w| <= 127``; ``|w| <= 15`` and delay <= 7 for the ``lif`` model,
whose hardware delay is delay + 1), targets.md §3.2-3.3.

PE mapping: a population is split into equal slices of at most ``max_atoms_per_pe`` neurons; a slice's SRAM use is
``reserved + neurons * neuron_state_bytes + rows * row_header_bytes + synapses * synapse_word_bytes`` (rows = the
presynaptic neurons with at least one synapse into the slice) and must fit 128 kB (``hardware/spinnaker2.toml``).
The per-item byte counts are assumptions listed in :mod:`spikeseq.graph.targets` and in the report.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from spikeseq.errors import ExportError
from spikeseq.export._io import write_description_and_script
from spikeseq.export._sources import spike_source
from spikeseq.export.mapping import MappingReport, PlacedPopulation, place_on_pes, raise_if_unfit
from spikeseq.export.spinnaker2_cells import cell_description, cell_mapping, check_cells
from spikeseq.graph import ir, targets
from spikeseq.graph.quantize import quantize
from spikeseq.graph.simulate import hop_latency, synapse_matrix

__all__ = ["SpiNNaker2Export", "map_pes", "network_description", "write_spinnaker2"]

FORMAT = "spikeseq-spinnaker2/1"
NEVER = 3.0e38
CSR_ABOVE = 20000   # projections with more synapses are written as CSR


@dataclass
class SpiNNaker2Export:
    """What :func:`write_spinnaker2` wrote: the JSON ``path``, the build ``script``, quantised graph, PE mapping."""

    path: Path
    script: Path
    graph: ir.Graph
    mapping: MappingReport


def _qgraph(graph: ir.Graph, **quantize_kwargs) -> ir.Graph:
    if graph.metadata.get("numerics") == "spinnaker2":
        return graph.flat()
    return quantize(graph, "spinnaker2", **quantize_kwargs)


def _scalar_or_list(a) -> float | list:
    a = np.asarray(a, np.float64).reshape(-1)
    a = np.where(np.isfinite(a), a, NEVER)
    return float(a[0]) if np.all(a == a[0]) else [float(v) for v in a]


def _source(g: ir.Graph, name: str) -> str:
    return spike_source(g, name, target="SpiNNaker2", readout_kind=ir.S2LIF)


def _model(g: ir.Graph, name: str) -> str:
    return g.metadata["quant"][name]["model"]


def network_description(graph: ir.Graph, *, mapping: MappingReport | None = None) -> dict:
    """The JSON-able py-spinnaker2 network description of ``graph`` (quantised if needed)."""
    g = _qgraph(graph)
    per_unit = {p.node: p.per_unit for p in (mapping or map_pes(g)).populations}
    pops, projs = [], []
    cells = any(isinstance(n, ir.EGRUCell) for n in g.nodes.values())
    for name in g.inputs():
        pops.append({"name": name, "size": math.prod(g.nodes[name].shape), "neuron_model": "spike_list",
                     "params": {}, "record": [], "max_atoms_per_core": per_unit.get(name, 256), "w_scale": 1.0})
    for name, node in g.nodes.items():
        if not isinstance(node, ir.S2LIF):
            continue
        model = _model(g, name)
        params = {"threshold": _scalar_or_list(node.threshold), "alpha_decay": _scalar_or_list(node.alpha_decay),
                  "i_offset": _scalar_or_list(node.i_offset), "v_reset": _scalar_or_list(node.v_reset),
                  "v_init": 0.0,
                  "reset": "reset_by_subtraction" if node.reset == "subtract" else "reset_to_v_reset"}
        if node.exc_decay is not None:
            params.update(exc_decay=_scalar_or_list(node.exc_decay), inh_decay=_scalar_or_list(node.exc_decay),
                          t_refrac=0)
        if node.graded:   # each spike carries v' / w_scale (float32, or int8 fixed point), spikeseq's graded events
            f = node.payload_frac_bits
            params.update(graded_payload="v / w_scale" if f is None else f"int8 round(v / w_scale * 2**{f})")
        pops.append({"name": name, "size": math.prod(node.out_shape), "neuron_model": model, "params": params,
                     "record": ["v"] if node.readout else ["spikes"], "max_atoms_per_core": per_unit.get(name, 1),
                     "w_scale": float(node.w_scale)})
        for s in g.predecessors(name):
            syn = g.nodes[s]
            m = synapse_matrix(syn)
            m = sp.coo_matrix(m)
            w = np.rint(m.data).astype(np.int64)
            if isinstance(syn, ir.DelayAffine):
                d = syn.delay.T[m.row, m.col].astype(np.int64)
            else:
                d = np.zeros_like(w)
            proj = {"name": s, "pre": _source(g, s), "post": name}
            if m.nnz > CSR_ABOVE:
                csr = sp.csr_matrix((np.arange(1, m.nnz + 1), (m.row, m.col)), shape=m.shape)
                order = csr.data - 1
                proj.update(format="csr", indptr=csr.indptr.tolist(), indices=csr.indices.tolist(),
                            weights=w[order].tolist(), delays=d[order].tolist())
            else:
                proj.update(format="list", connections=np.stack([m.row, m.col, w, d], 1).tolist())
            projs.append(proj)
    if cells:
        cpops, cprojs = cell_description(g, per_unit)
        pops, projs = pops + cpops, projs + cprojs
    return {"format": FORMAT, "dt": g.dt, "sys_tick_in_s": g.dt, "populations": pops, "projections": projs,
            "run_extra_steps": hop_latency(g),
            "notes": ["one step of latency per projection (SpiNNaker2 '*_no_delay': next tick; 'lif': delay + 1)",
                      "run T + run_extra_steps ticks: the largest input-to-population hop latency",
                      "voltages of readouts are in int8-weight units: divide by w_scale for model units"]}


SCRIPT = '''"""Build and run the spikeseq-exported network with py-spinnaker2 (generated by spikeseq.export.spinnaker2).

    python {script} INPUT.npy [--eth-ip 192.168.1.52] [--brian2] [--record OUT.npz]

INPUT.npy holds one sample's input spikes as a [T, N] 0/1 array. Network description: {json_name}. Runs
T + run_extra_steps ticks. --record saves every recorded population as dense arrays in OUT.npz: "<name>.spikes"
[steps, N] (0/1) and "<name>.v" [steps, N] (in int8-weight units, as the hardware reports them).
"""

import argparse
import json
from pathlib import Path

import numpy as np
from spinnaker2 import hardware, snn

HERE = Path(__file__).resolve().parent


def build(spec, spikes):
    pops = {{}}
    for p in spec["populations"]:
        if p["neuron_model"].startswith("custom_"):
            raise SystemExit(p["name"] + ": neuron model " + p["neuron_model"] + " is a custom PE program that "
                             "py-spinnaker2 does not ship; see the description's params and CSR projections")
        if p["neuron_model"] == "spike_list":
            t_idx, n_idx = np.nonzero(spikes)
            params = {{int(i): [int(t) for t in t_idx[n_idx == i]] for i in range(p["size"])}}
            pop = snn.Population(size=p["size"], neuron_model="spike_list", params=params, name=p["name"])
        else:
            pop = snn.Population(size=p["size"], neuron_model=p["neuron_model"], params=p["params"],
                                 name=p["name"], record=p["record"])
        pop.set_max_atoms_per_core(int(p["max_atoms_per_core"]))
        pops[p["name"]] = pop
    projs = []
    for q in spec["projections"]:
        if q["format"] == "list":
            conns = q["connections"]
        else:
            ptr = q["indptr"]
            conns = [[i, q["indices"][k], q["weights"][k], q["delays"][k]]
                     for i in range(len(ptr) - 1) for k in range(ptr[i], ptr[i + 1])]
        projs.append(snn.Projection(pre=pops[q["pre"]], post=pops[q["post"]], connections=conns))
    net = snn.Network("spikeseq")
    net.add(*pops.values(), *projs)
    return net, pops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--eth-ip", default="192.168.1.52")
    ap.add_argument("--brian2", action="store_true", help="run on the Brian2 software backend")
    ap.add_argument("--record", metavar="OUT.npz", help="save recorded spikes and voltages as dense arrays")
    a = ap.parse_args()
    spec = json.loads((HERE / "{json_name}").read_text())
    spikes = np.load(a.input)
    net, pops = build(spec, spikes)
    if a.brian2:
        from spinnaker2 import brian2_sim
        hw = brian2_sim.Brian2Backend()
    else:
        hw = hardware.SpiNNaker2Chip(eth_ip=a.eth_ip)
    steps = int(spikes.shape[0]) + int(spec["run_extra_steps"])
    hw.run(net, steps, sys_tick_in_s=spec["sys_tick_in_s"])
    dense = {{}}
    for p in spec["populations"]:
        if "spikes" in p["record"]:
            got = pops[p["name"]].get_spikes()
            print(p["name"], "spikes", got)
            z = np.zeros((steps, p["size"]), np.int8)
            for n, ts in got.items():
                z[np.asarray(ts, np.int64), int(n)] = 1
            dense[p["name"] + ".spikes"] = z
        if "v" in p["record"]:
            v = pops[p["name"]].get_voltages()
            print(p["name"], "v / w_scale", {{k: (np.asarray(x) / p["w_scale"]).tolist() for k, x in v.items()}})
            dense[p["name"] + ".v"] = np.stack([np.asarray(v[n], np.float32) for n in range(p["size"])], 1)
    if a.record:
        np.savez(a.record, **dense)


if __name__ == "__main__":
    main()
'''


def map_pes(graph: ir.Graph) -> MappingReport:
    """Place every population on PEs against the 128 kB SRAM budget; see the module docstring."""
    g = _qgraph(graph)
    lim = targets.spinnaker2()
    pops, problems, used = [], [], 0
    for name in g.inputs():
        n = math.prod(g.nodes[name].shape)
        k = math.ceil(n / lim.max_atoms_per_pe)
        pops.append(PlacedPopulation(name, n, 0, 0, min(n, lim.max_atoms_per_pe), k, {}))
        used += k
    if any(isinstance(n, ir.EGRUCell) for n in g.nodes.values()):
        cpops, cprobs, cused, cassume = cell_mapping(g)
        pops, problems, used = pops + cpops, problems + cprobs, used + cused
    else:
        cassume = []
    for name, node in g.nodes.items():
        if not isinstance(node, ir.S2LIF):
            continue
        mats = [synapse_matrix(g.nodes[s]) for s in g.predecessors(name)]
        m = sp.vstack([sp.csr_matrix(x) if not sp.issparse(x) else x for x in mats]).tocsc()
        placed, problem = place_on_pes(name, m, m.shape[1], lim, state_bytes=lim.neuron_state_bytes)
        pops.append(placed)
        used += placed.units
        if problem is not None:
            problems.append(problem)
    if used > lim.pes_per_chip:
        problems.append(f"{used} PEs needed, a SpiNNaker2 chip has {lim.pes_per_chip} (multi-chip not modelled)")
    return MappingReport("spinnaker2", "PE", pops, used, lim.pes_per_chip, problems, assumptions=[
        f"per PE {lim.reserved_bytes_per_pe} bytes reserved for code/stack/recording, {lim.neuron_state_bytes} bytes "
        f"per neuron, {lim.row_header_bytes} bytes per synapse row, {lim.synapse_word_bytes} bytes per synapse "
        "(assumed; not in hardware/spinnaker2.toml)", "input spike sources: one PE per "
        f"{lim.max_atoms_per_pe} input neurons", *cassume])


def _projection_matrix(q: dict, shape: tuple[int, int]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    if q["format"] == "list":
        c = np.asarray(q["connections"], np.int64).reshape(-1, 4)
        rows, cols, w, d = c.T
    else:
        ptr = np.asarray(q["indptr"])
        rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        cols, w, d = np.asarray(q["indices"]), np.asarray(q["weights"]), np.asarray(q["delays"])
    return (sp.csr_matrix((w, (rows, cols)), shape=shape), sp.csr_matrix((d + 1, (rows, cols)), shape=shape))


def _check_written(path: Path, g: ir.Graph) -> None:
    """Read the description back before it is renamed into place: every projection's weights and delays and every
    population's threshold must equal the quantised graph that the interpreter runs."""
    desc = json.loads(Path(path).read_text())
    projs = {q["name"]: q for q in desc["projections"]}
    pops = {p["name"]: p for p in desc["populations"]}
    if any(isinstance(n, ir.EGRUCell) for n in g.nodes.values()):
        check_cells(desc, g)
        return
    for name, node in g.nodes.items():
        if isinstance(node, ir.S2LIF):
            th = np.broadcast_to(np.asarray(pops[name]["params"]["threshold"], np.float64), node.threshold.shape)
            if not np.allclose(np.where(np.isfinite(node.threshold), node.threshold, NEVER), th, rtol=1e-12):
                raise ExportError(f"SpiNNaker2 description check: population {name!r} threshold differs")
        if node.role != "synapse":
            continue
        m = sp.csr_matrix(synapse_matrix(node))
        w, d = _projection_matrix(projs[name], m.shape)
        if (abs(w - m)).max() != 0:
            raise ExportError(f"SpiNNaker2 description check: projection {name!r} weights do not read back")
        if isinstance(node, ir.DelayAffine):
            want = sp.csr_matrix(((node.delay.T + 1) * (node.weight.T != 0)).astype(np.int64))
            if (abs(d - want)).max() != 0:
                raise ExportError(f"SpiNNaker2 description check: projection {name!r} delays do not read back")


def write_spinnaker2(graph: ir.Graph, path: str | os.PathLike, *, check_mapping: bool = True,
                     payload_frac_bits: int | None = None) -> SpiNNaker2Export:
    """Quantise (``payload_frac_bits``: as :func:`~spikeseq.graph.quantize.quantize`), map and write the JSON
    description at ``path`` plus the build script next to it (atomically)."""
    graph.check_shapes()
    graph.check_finite()
    g = _qgraph(graph, payload_frac_bits=payload_frac_bits)
    report = map_pes(g)
    if check_mapping:
        raise_if_unfit(report)
    path, script = write_description_and_script(path, network_description(g, mapping=report), SCRIPT,
                                                lambda tmp: _check_written(tmp, g), "network description")
    return SpiNNaker2Export(path, script, g, report)
