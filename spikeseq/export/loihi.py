"""Loihi-style export: a lava-dl ``netx`` ``.net`` HDF5 file and a core mapping.

``write_net(graph, path)`` quantises a float graph (:func:`spikeseq.graph.quantize.quantize`, ``"loihi"``) unless
it is quantised already, maps it onto cores (:func:`spikeseq.export.loihi_cores.map_cores`), refuses with an
:class:`~spikeseq.errors.ExportError` naming the node and the limit when it does not fit, and writes the file
atomically. Layout written (targets.md §2.1, from lava-dl ``netx/hdf5.py`` and slayer ``block/*.export_hdf5``)::

    layer/0            type=b"input" (S10, shape (1,)), shape (int64 (N,) or (C,H,W))
    layer/i            type=b"dense" | b"dense_rec" | b"conv" | b"flatten"
        shape          int64, neuron shape (C,H,W) / (N,); flatten: (1, 1, N)
        inFeatures, outFeatures                     (dense, dense_rec: int64 scalars)
        inChannels, outChannels, kernelSize(2), stride(2), padding(2), dilation(2), groups     (conv)
        weight         float32 (out, in) / (Cout, Cin/groups, Kh, Kw) holding integers: even mantissas in
                       [-256, 254] times 2**weight_exp (netx's optimize_weight_bits recovers the exponent)
        weight_rec     float32 (out, out), same exponent as weight        (dense_rec)
        bias           float32 holding integers: bias_mant (netx uses bias_exp = 6)              (optional)
                       dense: (out,); conv: (Cout,) when uniform per channel, else (W, H, Cout) (netx's order)
        delay          float32 (out, in) holding integers in 0..62 (per-synapse delays)          (optional)
        neuron/        type="CUBA" (str), iDecay, vDecay (int64 in 0..4096), vThMant (int64 <= 131071),
                       refDelay=1 (int64), gradedSpike=False (bool)
        attributes     spikeseq_population (name), spikeseq_readout (bool: a non-spiking readout of the model,
                       read through v), spikeseq_weight_scale (float per population: float value = integer / scale;
                       slayer fixes 64, lava-dl slayer/neuron/cuba.py ``scale=1 << 6``), spikeseq_weight_exp
    file attributes    spikeseq_format="netx", spikeseq_semantics (a sentence; netx reads datasets only)

netx is sequential (layer i feeds layer i+1): the graph must be a chain Input -> (synapse -> population)* with
optional Flatten, where a population may also feed itself through one recurrent synapse (``dense_rec``).

Core mapping (Loihi 1 per-core limits from ``hardware/loihi.toml``): a population is split into equal slices; a
slice must hold <= 1024 compartments, receive from <= 4096 input axons, send to <= 4096 output axons, and fit its
synapses in 1,048,576 bits of synapse memory at ``weight_bits`` (+ 6 delay bits when delays are present) per
synapse. This synapse-memory model ignores nengo-loihi's compression and per-axon headers (an approximation).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeseq.errors import DataError, ExportError
from spikeseq.export._io import atomic_path
from spikeseq.export.lava import write_lava
from spikeseq.export.loihi_cores import DELAY_BITS, loihi_graph, map_cores
from spikeseq.export.mapping import MappingReport, raise_if_unfit
from spikeseq.graph import ir

#: HDF5 attributes of the file (netx reads datasets only; attributes are spikeseq's metadata)
FILE_ATTRS = {
    "spikeseq_format": "netx",
    "spikeseq_semantics": (
        "Loihi CUBA (lava PyLifModelBitAcc, targets.md 4.2); weights are integer mantissas times 2**weight_exp; "
        "float value = integer / spikeseq_weight_scale (per population; slayer's fixed convention is 64); a layer "
        "with spikeseq_readout=True is a non-spiking readout of the model, read through v: netx runs it as a LIF "
        "that spikes and resets only when v > vThMant << 6 (a saturated membrane), as spikeseq's interpreter does"),
}

__all__ = ["DELAY_BITS", "LoihiExport", "is_chain", "loihi_graph", "map_cores", "netx_layers", "read_net",
           "write_loihi", "write_net"]

@dataclass
class LoihiExport:
    """What the Loihi writer produced: ``path``, the quantised graph written, its core mapping and the ``format``.

    ``format`` is ``"netx"`` (a lava-dl ``.net`` HDF5) or ``"lava-process-json"`` (:mod:`spikeseq.export.lava`);
    ``extra_files`` lists any other file written beside ``path``.
    """

    path: Path
    graph: ir.Graph          # the quantised graph that was written
    mapping: MappingReport
    format: str = "netx"     # "netx" (.net HDF5) or "lava-process-json" (spikeseq.export.lava)
    extra_files: tuple[Path, ...] = ()


# ------------------------------------------------------------------------------------------------------ chain
def _chain(g: ir.Graph) -> list[dict]:
    """The sequential layers of a quantised graph (see module docstring), as dicts of datasets."""
    ins = g.inputs()
    if len(ins) != 1:
        raise ExportError(f"netx .net files have one input layer; the graph has inputs {ins}")
    layers: list[dict] = [{"name": ins[0], "type": "input", "shape": np.array(g.nodes[ins[0]].shape, np.int64)}]
    cur = ins[0]
    seen = {cur}
    while True:
        nxt = [s for s in g.successors(cur) if not (g.nodes[s].role == "synapse" and cur in g.successors(s))]
        if len(nxt) != 1:
            raise ExportError(
                f"node {cur!r} feeds {nxt}; a netx .net file is a sequential chain of layers (each population fed by "
                "the previous one, plus at most a self-recurrent synapse), so branching or cross-population "
                "feedback (e.g. a hidden -> encoder loop) cannot be written; simulate it with "
                "numerics='loihi' or export it to 'spinnaker2'"
            )
        s = nxt[0]
        node = g.nodes[s]
        if isinstance(node, ir.Output):
            return layers
        if s in seen:
            raise ExportError(f"node {s!r} is reached twice; a netx .net file is a sequential chain")
        seen.add(s)
        if isinstance(node, ir.Flatten):
            layers.append({"name": s, "type": "flatten", "shape": np.array([1, 1, math.prod(node.out_shape)],
                                                                           np.int64)})
            cur = s
            continue
        if node.role != "synapse":
            raise ExportError(f"node {s!r} ({node.kind}) follows {cur!r} directly; netx layers are synapse + neuron")
        pop_names = g.successors(s)
        pop = g.nodes[pop_names[0]]
        if not isinstance(pop, ir.LoihiCUBA):
            raise ExportError(f"node {pop_names[0]!r} ({pop.kind}) is not a Loihi CUBA population")
        p = pop_names[0]
        syns = g.predecessors(p)
        rec = [r for r in syns if r != s]
        if any(g.predecessors(r) != [p] for r in rec) or len(rec) > 1:
            raise ExportError(f"population {p!r} receives from {syns}; netx supports one feed-forward synapse plus "
                              "at most one recurrent synapse from the population itself")
        layers.append(_layer(s, node, p, pop, rec[0] if rec else None, g))
        seen.add(p)
        cur = p


def _int_or_array(a: np.ndarray):
    a = np.asarray(a).reshape(-1)
    return np.int64(a[0]) if np.all(a == a[0]) else a.astype(np.int64)


def _neuron(pop: ir.LoihiCUBA) -> dict:
    return {"type": "CUBA", "iDecay": _int_or_array(pop.i_decay), "vDecay": _int_or_array(pop.v_decay),
            "vThMant": _int_or_array(pop.vth), "refDelay": np.int64(1), "gradedSpike": np.bool_(False)}


def _layer(sname: str, syn: ir.Node, pname: str, pop: ir.LoihiCUBA, rec: str | None, g: ir.Graph) -> dict:
    d: dict = {"name": pname, "synapse": sname, "shape": np.array(pop.out_shape, np.int64), "neuron": _neuron(pop),
               "attrs": {"spikeseq_population": pname, "spikeseq_readout": bool(pop.readout),
                         "spikeseq_weight_scale": float(pop.scale),
                         "spikeseq_weight_exp": int(g.metadata.get("quant", {}).get(pname, {}).get("weight_exp", 0))}}
    if isinstance(syn, (ir.Linear, ir.DelayAffine)):
        d.update(type="dense_rec" if rec else "dense", inFeatures=np.int64(syn.weight.shape[1]),
                 outFeatures=np.int64(syn.weight.shape[0]), weight=syn.weight.astype(np.float32))
        if isinstance(syn, ir.DelayAffine):
            d["delay"] = syn.delay.astype(np.float32)
        if rec:
            r = g.nodes[rec]
            if not isinstance(r, ir.Linear):
                raise ExportError(f"recurrent synapse {rec!r} ({r.kind}) must be a plain Linear for dense_rec")
            d["weight_rec"] = r.weight.astype(np.float32)
    elif isinstance(syn, ir.Conv2d):
        if rec:
            raise ExportError(f"population {pname!r}: recurrent conv layers are not supported by netx")
        d.update(type="conv", inChannels=np.int64(syn.input_shape[0]), outChannels=np.int64(syn.weight.shape[0]),
                 kernelSize=np.array(syn.weight.shape[2:], np.int64), stride=np.array(syn.stride, np.int64),
                 padding=np.array(syn.padding, np.int64), dilation=np.array(syn.dilation, np.int64),
                 groups=np.int64(syn.groups), weight=syn.weight.astype(np.float32))
    else:
        raise ExportError(f"synapse {sname!r} of kind {syn.kind} has no netx layer type")
    if np.any(pop.bias):
        d["bias"] = _bias_dataset(pop.bias, d["type"])
    return d


def _bias_dataset(bias: np.ndarray, layer_type: str) -> np.ndarray:
    """netx's bias layouts (lava-dl ``netx/blocks/process.py`` ``AbstractBlock._neuron``): dense layers take one
    value per neuron; conv layers take one value per channel, or the full neuron shape in Lava's (W, H, C) order."""
    if layer_type != "conv":
        return bias.reshape(-1).astype(np.float32)
    chw = bias.reshape(bias.shape[0], -1)
    if np.all(chw == chw[:, :1]):
        return chw[:, 0].astype(np.float32)
    return np.ascontiguousarray(bias.transpose(2, 1, 0)).astype(np.float32)


def netx_layers(graph: ir.Graph, **quantize_kwargs) -> list[dict]:
    """The netx layer descriptions (dicts of datasets) of ``graph``, quantised if needed."""
    return _chain(loihi_graph(graph, **quantize_kwargs))


def is_chain(graph: ir.Graph, **quantize_kwargs) -> bool:
    """Whether the quantised ``graph`` is a netx chain (see the module docstring)."""
    try:
        _chain(loihi_graph(graph, **quantize_kwargs))
    except ExportError:
        return False
    return True


# ------------------------------------------------------------------------------------------------------ write/read
def write_net(graph: ir.Graph, path: str | os.PathLike, *, check_mapping: bool = True,
              **quantize_kwargs) -> LoihiExport:
    """Quantise (if needed), map and write ``graph`` as a netx ``.net`` file at ``path`` (atomically)."""
    import h5py

    g = loihi_graph(graph, **quantize_kwargs)
    layers = _chain(g)
    report = map_cores(g)
    if check_mapping:
        raise_if_unfit(report)
    with atomic_path(path, suffix=".net.tmp") as tmp:
        with h5py.File(tmp, "w") as f:
            sim = f.create_group("simulation")
            sim.create_dataset("Ts", data=np.int64(1))
            sim.create_dataset("tSample", data=np.int64(0))
            f.attrs.update(FILE_ATTRS)
            root = f.create_group("layer")
            for i, layer in enumerate(layers):
                h = root.create_group(str(i))
                h.create_dataset("type", (1,), "S10", [layer["type"].encode("ascii")])
                h.attrs.update(layer.get("attrs", {}))
                for key, val in layer.items():
                    if key in ("type", "name", "synapse", "attrs"):
                        continue
                    if key == "neuron":
                        ng = h.create_group("neuron")
                        for nk, nv in val.items():
                            ng.create_dataset(nk, data=nv)
                    else:
                        h.create_dataset(key, data=val)
        _check_written(tmp, layers)
    return LoihiExport(Path(path), g, report)


def write_loihi(graph: ir.Graph, path: str | os.PathLike, *, check_mapping: bool = True,
                **quantize_kwargs) -> LoihiExport:
    """Write ``graph`` for a Loihi-style target: a netx ``.net`` file at ``path`` when the quantised graph is a
    chain (:func:`write_net`), else a Lava process-network description at ``path.with_suffix(".lava.json")``
    plus its build script ``.lava.py`` (:func:`spikeseq.export.lava.write_lava`; branching and cross-population
    feedback). ``format`` in the result names the choice ("netx" or "lava-process-json")."""
    graph.check_shapes()
    graph.check_finite()
    g = loihi_graph(graph, **quantize_kwargs)
    if is_chain(g):
        return write_net(g, path, check_mapping=check_mapping)
    path = Path(path)
    e = write_lava(g, path.with_suffix(".lava.json"), check_mapping=check_mapping)
    return LoihiExport(e.path, e.graph, e.mapping, format="lava-process-json", extra_files=(e.script,))


def _check_written(path: Path, layers: list[dict]) -> None:
    """Read the file back before it is renamed into place: every dataset must equal what was simulated."""
    back = read_net(path)
    if len(back) != len(layers):
        raise ExportError(f"netx file check: wrote {len(layers)} layers, read back {len(back)}")
    for i, (want, got) in enumerate(zip(layers, back)):
        for key, val in want.items():
            if key in ("name", "synapse"):
                continue
            if key == "attrs":
                if got.get("attrs") != val:
                    raise ExportError(f"netx file check: layer {i} attributes read back as {got.get('attrs')}, "
                                      f"not {val}")
                continue
            if key == "neuron":
                for nk, nv in val.items():
                    g = got["neuron"][nk]
                    g = g.decode() if isinstance(g, bytes) else g
                    if not np.array_equal(np.asarray(g), np.asarray(nv)):
                        raise ExportError(f"netx file check: layer {i} neuron/{nk} reads back as {g}, not {nv}")
            elif key != "type" and not np.array_equal(np.asarray(got[key]), np.asarray(val)):
                raise ExportError(f"netx file check: layer {i} dataset {key!r} does not read back identically")


def read_net(path: str | os.PathLike) -> list[dict]:
    """The layers of a ``.net`` file as dicts of numpy values (``type`` decoded), for inspection and tests."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "layer" not in f:
                raise DataError(f"{path} is HDF5 but has no 'layer' group: not a netx .net file")
            names = sorted(f["layer"].keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
            if names != [str(i) for i in range(len(names))]:
                raise DataError(f"{path}: the 'layer' group holds {names[:8]}{' ...' if len(names) > 8 else ''}, but "
                                "a netx .net file numbers its layers 0, 1, 2, ... without gaps: write it again with "
                                "`spikeseq export RUN --target loihi`")
            out = []
            for i in range(len(names)):
                h = f["layer"][str(i)]
                if not isinstance(h, h5py.Group) or "type" not in h or getattr(h["type"], "shape", None) != (1,):
                    raise DataError(f"{path}: layer/{i} is not a netx layer (a group with a 1-element 'type' "
                                    "dataset, e.g. b'input' or b'dense'): write it again with `spikeseq export RUN "
                                    "--target loihi`")
                d = {}
                for k, v in h.items():
                    if isinstance(v, h5py.Group):
                        d[k] = {nk: nv[()] for nk, nv in v.items()}
                    else:
                        d[k] = v[()]
                t = d["type"][0]
                if not isinstance(t, bytes | str):
                    raise DataError(f"{path}: layer/{i}/type holds {t!r}, not a layer type name (b'input', b'dense', "
                                    "...): write the file again with `spikeseq export RUN --target loihi`")
                d["type"] = t.decode() if isinstance(t, bytes) else t
                if h.attrs:
                    d["attrs"] = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in h.attrs.items()}
                out.append(d)
            return out
    except OSError as e:
        raise DataError(f"{path} is not a readable HDF5 file ({e}); a lava-dl netx .net file is HDF5 with a 'layer' "
                        "group: write it again with `spikeseq export RUN --target loihi`") from e
