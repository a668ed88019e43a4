"""Loihi-style export for graphs a netx ``.net`` chain cannot hold: a Lava process-network description (JSON) plus
a generated Python script that builds the same network with Lava's public API.

``write_lava(graph, path)`` quantises a float graph (:func:`spikeseq.graph.quantize.quantize`, ``"loihi"``) unless
it is quantised already, maps it onto Loihi cores (:func:`spikeseq.export.loihi_cores.map_cores`), refuses with an
:class:`~spikeseq.errors.ExportError` when it does not fit, writes ``path`` (JSON) and ``path.with_suffix(".py")``
atomically, and reads the JSON back (:func:`read_lava`) and compares it with the quantised graph before the rename.
It handles any topology the bit-exact interpreter runs: branching, cross-population feedback (e.g. hidden -> input)
and self-recurrence, since every Lava ``Dense`` hop is buffered by one step (targets.md §2.3, §4.1).

JSON layout (``format = "spikeseq-lava-process/1"``)::

    dt                  model step in seconds
    inputs:  [{name, size, shape, payload, frac_bits}]   payload "spikes" (binary) or "graded" (signed integer
                        payloads; a real-valued input x is sent as round(x * 2**frac_bits))
    populations: [{name, size, shape, model: "lava.proc.lif.process.LIF", readout,
                   i_decay, v_decay (0..4096, the interpreter's iDecay/vDecay), du = i_decay - 1, dv = v_decay
                   (Lava's LIF parameters; Lava adds 1 to du, targets.md §4.2), vth (mantissa, compared as
                   v > vth << 6), bias_mant, bias_exp, scale (float value = mantissa / scale)}]
        a field is a scalar when uniform over the population, else a list per neuron
    connections: [{name, pre, post, process: "Dense" | "DelayDense", weights (out x in, even integer
                   mantissas in [-256, 254]), weight_exp, num_weight_bits: 8, sign_mode: "mixed",
                   num_message_bits (0 binary spikes, 24 graded input), delays (out x in, 0..62; DelayDense),
                   recurrent (closes a cycle: reads the previous step's spikes), latency_steps (1 + delay)}]
    outputs: [{name, source, probe: "v" (non-spiking readout; float value = v / (scale * 64)) | "s_out"}]
    run_extra_steps     steps to run beyond the input's T: the largest input-to-population hop latency
                        (:func:`spikeseq.graph.simulate.hop_latency`), so the last input step reaches every population
    recurrent_edges     the spikeseq graph's recurrent edges [[a, b], ...]
    core_mapping        cores used / available (Loihi 1 limits, :func:`~spikeseq.export.loihi_cores.map_cores`)

Effective synaptic input per step: ``a = (sum_j W_ij s_j) << weight_exp`` (targets.md §4.2). Population sizes are
flat vectors (a ``Flatten`` node is skipped: the connection reads the flat spike vector; a conv synapse is written as
its equivalent dense matrix). Lava's ``LIF`` holds ``du``, ``dv`` and ``vth`` as one value per process: the script
refuses populations whose values differ per neuron (the JSON keeps the per-neuron lists).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from spikeseq.errors import DataError, ExportError
from spikeseq.export._io import write_description_and_script
from spikeseq.export._sources import spike_source
from spikeseq.export.loihi_cores import loihi_graph, map_cores
from spikeseq.export.mapping import MappingReport, raise_if_unfit
from spikeseq.graph import ir
from spikeseq.graph.simulate import hop_latency, synapse_matrix

__all__ = ["FORMAT", "LavaExport", "graph_from_description", "process_network", "read_lava", "write_lava"]

FORMAT = "spikeseq-lava-process/1"
GRADED_MESSAGE_BITS = 24   # Lava graded vectors [src: lava/networks/gradedvecnetwork.py; targets.md §2.2]


@dataclass
class LavaExport:
    """What :func:`write_lava` wrote: the JSON ``path``, the build ``script``, the quantised graph, its core mapping."""

    path: Path
    script: Path
    graph: ir.Graph          # the quantised graph that was described
    mapping: MappingReport
    format: str = FORMAT


def _scalar_or_list(a) -> int | list:
    a = np.asarray(a).reshape(-1).astype(np.int64)
    return int(a[0]) if a.size and np.all(a == a[0]) else [int(v) for v in a]


def _source(g: ir.Graph, name: str) -> str:
    return spike_source(g, name, target="Loihi (Lava)", readout_kind=ir.LoihiCUBA)


def _weight_exp(g: ir.Graph, post: str) -> int:
    return int(g.metadata.get("quant", {}).get(post, {}).get("weight_exp", 0))


def _dense_out_in(node: ir.Node) -> np.ndarray:
    m = synapse_matrix(node)   # [in, out]
    m = m.toarray() if sp.issparse(m) else np.asarray(m)
    return np.asarray(m, np.float64).T


def process_network(g: ir.Graph, *, mapping: MappingReport | None = None) -> dict:
    """The JSON-able Lava process-network description of the quantised graph ``g`` (see the module docstring)."""
    if g.metadata.get("numerics") != "loihi":
        raise ExportError("process_network needs a graph quantised for 'loihi' (spikeseq.graph.quantize)")
    rec = sorted(g.recurrent_edges())
    rec_set = set(rec)
    frac = int(g.metadata.get("input_frac_bits") or 0)
    inputs = [{"name": n, "size": math.prod(g.nodes[n].shape), "shape": list(g.nodes[n].shape),
               "payload": "spikes" if g.nodes[n].payload == "spikes" else "graded", "frac_bits": frac}
              for n in g.inputs()]
    payload = {d["name"]: d["payload"] for d in inputs}
    pops, conns = [], []
    for name, node in g.nodes.items():
        if node.role == "neuron" and not isinstance(node, ir.LoihiCUBA):
            raise ExportError(f"node {name!r} ({node.kind}) is not a Loihi CUBA compartment; quantise for 'loihi'")
        if not isinstance(node, ir.LoihiCUBA):
            continue
        if node.graded:
            raise ExportError(f"population {name!r} sends graded spikes; the Lava description supports binary ones")
        pops.append({"name": name, "size": math.prod(node.out_shape), "shape": list(node.out_shape),
                     "model": "lava.proc.lif.process.LIF", "readout": bool(node.readout),
                     "i_decay": _scalar_or_list(node.i_decay), "v_decay": _scalar_or_list(node.v_decay),
                     "du": _scalar_or_list(node.i_decay - 1), "dv": _scalar_or_list(node.v_decay),
                     "vth": _scalar_or_list(node.vth), "bias_mant": _scalar_or_list(node.bias),
                     "bias_exp": int(node.bias_exp), "scale": float(node.scale)})
        e = _weight_exp(g, name)
        for s in g.predecessors(name):
            syn = g.nodes[s]
            if syn.role != "synapse":
                raise ExportError(f"population {name!r} receives from {s!r} ({syn.kind}), not a synapse")
            pre = _source(g, s)
            w = _dense_out_in(syn)
            mant = w / 2**e
            if not np.array_equal(mant, np.round(mant)):
                raise ExportError(f"synapse {s!r}: weights are not integer multiples of 2**{e}")
            c = {"name": s, "pre": pre, "post": name, "process": "Dense",
                 "weights": mant.astype(np.int64).tolist(), "weight_exp": e, "num_weight_bits": 8,
                 "sign_mode": "mixed",
                 "num_message_bits": GRADED_MESSAGE_BITS if payload.get(pre) == "graded" else 0,
                 "recurrent": (s, name) in rec_set or any((p, s) in rec_set for p in g.predecessors(s)),
                 "latency_steps": 1}
            if isinstance(syn, ir.DelayAffine):
                d = syn.delay.astype(np.int64)
                c.update(process="DelayDense", delays=d.tolist(), max_delay=62,
                         latency_steps=1 + int(d.max(initial=0)))
            conns.append(c)
    outputs = []
    for name in g.outputs():
        src = g.predecessors(name)[0]
        outputs.append({"name": name, "source": src,
                        "probe": "v" if isinstance(g.nodes[src], ir.LoihiCUBA) and g.nodes[src].readout
                        else "s_out"})
    desc = {"format": FORMAT, "dt": g.dt, "inputs": inputs, "populations": pops, "connections": conns,
            "outputs": outputs, "recurrent_edges": [list(e) for e in rec], "run_extra_steps": hop_latency(g),
            "notes": ["every Dense hop delivers at t+1 (DelayDense: t+1+delay), as the spikeseq Loihi interpreter",
                      "readout populations (readout: true) are read through v; like every Lava LIF they spike and "
                      "reset when v > vth << 6 = 2**23 - 64 (only a saturated v), in Lava and the interpreter alike",
                      "Lava's LIF holds du, dv, vth per process: per-neuron lists are refused by the script"]}
    if mapping is not None:
        desc["core_mapping"] = {"cores_used": mapping.units_used, "cores_per_chip": mapping.units_per_chip,
                                "fits": mapping.fits}
    return desc


def graph_from_description(desc: dict) -> ir.Graph:
    """Rebuild the quantised graph (flat shapes, dense synapses) from a description; inverse of
    :func:`process_network` for graphs without Flatten or conv nodes."""
    if desc.get("format") != FORMAT:
        raise DataError(f"not a spikeseq Lava process description: format is {desc.get('format')!r}")
    nodes: dict[str, ir.Node] = {}
    edges: list[tuple[str, str]] = []
    quant: dict[str, dict] = {}
    for d in desc["inputs"]:
        nodes[d["name"]] = ir.Input(tuple(d["shape"]), payload=d["payload"])
    frac = {d["frac_bits"] for d in desc["inputs"]}
    for p in desc["populations"]:
        shape = tuple(p["shape"])
        full = lambda v, shape=shape: np.broadcast_to(np.asarray(v, np.int64), (math.prod(shape),)).reshape(shape)  # noqa: E731
        nodes[p["name"]] = ir.LoihiCUBA(i_decay=full(p["i_decay"]), v_decay=full(p["v_decay"]), vth=full(p["vth"]),
                                        bias=full(p["bias_mant"]), bias_exp=int(p["bias_exp"]),
                                        scale=float(p["scale"]), readout=bool(p["readout"]))
    for c in desc["connections"]:
        w = np.asarray(c["weights"], np.float64) * 2.0 ** int(c["weight_exp"])
        if c["process"] == "DelayDense":
            nodes[c["name"]] = ir.DelayAffine(w, np.asarray(c["delays"], np.int64), None)
        else:
            nodes[c["name"]] = ir.Linear(w)
        edges += [(c["pre"], c["name"]), (c["name"], c["post"])]
        quant.setdefault(c["post"], {"weight_exp": int(c["weight_exp"]), "synapses": []})["synapses"].append(c["name"])
    for o in desc["outputs"]:
        src = nodes[o["source"]]
        nodes[o["name"]] = ir.Output(src.out_shape)
        edges.append((o["source"], o["name"]))
    meta = {"numerics": "loihi", "quant": quant, "recurrent_edges": [tuple(e) for e in desc["recurrent_edges"]],
            "input_frac_bits": max(frac, default=0)}
    return ir.Graph(nodes, edges, dt=float(desc["dt"]), metadata=meta)


def read_lava(path: str | os.PathLike) -> dict:
    """The description at ``path`` (JSON), checked for the format tag."""
    try:
        desc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable JSON Lava process description ({e}); write it again with "
                        "spikeseq.export.lava (or `spikeseq export RUN --target loihi`)") from e
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise DataError(f"{path} is not a spikeseq Lava process description (format {FORMAT!r})")
    return desc


def _check_written(path: Path, g: ir.Graph) -> None:
    """Read the description back before the rename: every population's parameters and every connection's
    weights (mantissa << weight_exp), delays, pre and post must equal the quantised graph the interpreter runs."""
    desc = read_lava(path)
    pops = {p["name"]: p for p in desc["populations"]}
    conns = {c["name"]: c for c in desc["connections"]}
    for name, node in g.nodes.items():
        if isinstance(node, ir.LoihiCUBA):
            p = pops.get(name)
            if p is None:
                raise ExportError(f"Lava description check: population {name!r} is missing")
            for key, want in (("i_decay", node.i_decay), ("v_decay", node.v_decay), ("vth", node.vth),
                              ("bias_mant", node.bias), ("du", node.i_decay - 1)):
                got = np.broadcast_to(np.asarray(p[key], np.int64), (want.size,))
                if not np.array_equal(got, want.reshape(-1)):
                    raise ExportError(f"Lava description check: population {name!r} {key} does not read back")
            if p["bias_exp"] != node.bias_exp or bool(p["readout"]) != bool(node.readout):
                raise ExportError(f"Lava description check: population {name!r} bias_exp/readout differ")
        elif node.role == "synapse":
            c = conns.get(name)
            if c is None:
                raise ExportError(f"Lava description check: connection {name!r} is missing")
            w = np.asarray(c["weights"], np.float64) * 2.0 ** int(c["weight_exp"])
            if not np.array_equal(w, _dense_out_in(node)):
                raise ExportError(f"Lava description check: connection {name!r} weights do not read back")
            if (c["pre"], c["post"]) != (_source(g, name), g.successors(name)[0]):
                raise ExportError(f"Lava description check: connection {name!r} endpoints differ")
            if isinstance(node, ir.DelayAffine) and not np.array_equal(np.asarray(c["delays"]), node.delay):
                raise ExportError(f"Lava description check: connection {name!r} delays do not read back")
    n_syn = sum(1 for n in g.nodes.values() if n.role == "synapse")
    if len(conns) != n_syn:
        raise ExportError(f"Lava description check: {len(conns)} connections written, the graph has {n_syn}")


SCRIPT = '''"""Build and run the spikeseq-exported network with Lava (generated by spikeseq.export.lava).

    python {script} INPUT.npy [--record OUT.npz]

INPUT.npy holds one sample's input as a [T, N] integer array (0/1 spikes or graded payloads round(x * 2**frac_bits)).
Network description: {json_name}. Uses Lava's bit-accurate (fixed_pt) CPU models and runs T + run_extra_steps
steps. --record saves every population's spikes ("<name>.s_out", [steps, N]; readouts: "<name>.v", the raw
membrane) to OUT.npz.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense, DelayDense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF
from lava.proc.monitor.process import Monitor

HERE = Path(__file__).resolve().parent


def _one(p, key):
    v = p[key]
    if isinstance(v, list):
        raise SystemExit(f"population {{p['name']}}: per-neuron {{key}} differs; Lava's LIF takes one value")
    return v


def build(spec, data):
    procs = {{}}
    for d in spec["inputs"]:
        procs[d["name"]] = RingBuffer(data=np.asarray(data, dtype=np.int32).T.reshape(d["size"], -1))
    for p in spec["populations"]:
        procs[p["name"]] = LIF(shape=(p["size"],), du=_one(p, "du"), dv=_one(p, "dv"), vth=_one(p, "vth"),
                               bias_mant=np.broadcast_to(np.asarray(p["bias_mant"]), (p["size"],)).copy(),
                               bias_exp=p["bias_exp"], name=p["name"])
    conns = {{}}
    for c in spec["connections"]:
        kw = dict(weights=np.asarray(c["weights"]), weight_exp=c["weight_exp"],
                  num_weight_bits=c["num_weight_bits"], num_message_bits=c["num_message_bits"], name=c["name"])
        if c["process"] == "DelayDense":
            syn = DelayDense(delays=np.asarray(c["delays"]), max_delay=c["max_delay"], **kw)
        else:
            syn = Dense(**kw)
        procs[c["pre"]].s_out.connect(syn.s_in)
        syn.a_out.connect(procs[c["post"]].a_in)
        conns[c["name"]] = syn
    return procs, conns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--record", metavar="OUT.npz", help="save every population's s_out (readouts: v) here")
    a = ap.parse_args()
    spec = json.loads((HERE / "{json_name}").read_text())
    data = np.load(a.input)
    steps = int(data.shape[0]) + int(spec["run_extra_steps"])
    # RingBuffer replays its data cyclically: pad with silence so the extra steps see no input
    data = np.concatenate([data, np.zeros((steps - data.shape[0], *data.shape[1:]), data.dtype)])
    procs, _ = build(spec, data)
    wanted = {{(o["source"], o["probe"]) for o in spec["outputs"]}}
    if a.record:
        wanted |= {{(p["name"], "v" if p["readout"] else "s_out") for p in spec["populations"]}}
    monitors = {{}}
    for src, var in sorted(wanted):
        mon = Monitor()
        mon.probe(getattr(procs[src], var), steps)
        monitors[(src, var)] = mon
    first = procs[spec["populations"][0]["name"]]
    first.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:   # an unstopped Lava runtime keeps its processes alive: stop it whatever happens
        got = {{k: np.asarray(m.get_data()[k[0]][k[1]]).reshape(steps, -1) for k, m in monitors.items()}}
    finally:
        first.stop()
    for o in spec["outputs"]:
        x = got[(o["source"], o["probe"])]
        if o["probe"] == "v":
            p = next(p for p in spec["populations"] if p["name"] == o["source"])
            x = x / (p["scale"] * 64.0)
        print(o["name"], x.tolist())
    if a.record:
        np.savez(a.record, **{{f"{{src}}.{{var}}": x for (src, var), x in got.items()}})


if __name__ == "__main__":
    main()
'''


def write_lava(graph: ir.Graph, path: str | os.PathLike, *, check_mapping: bool = True,
               **quantize_kwargs) -> LavaExport:
    """Quantise (if needed), map and write the Lava description at ``path`` plus the build script next to it."""
    g = loihi_graph(graph, **quantize_kwargs)
    report = map_cores(g)
    if check_mapping:
        raise_if_unfit(report)
    path, script = write_description_and_script(path, process_network(g, mapping=report), SCRIPT,
                                                lambda tmp: _check_written(tmp, g), "Lava description")
    return LavaExport(path, script, g, report)
