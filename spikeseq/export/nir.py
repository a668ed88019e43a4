"""NIR 1.0 interchange: ``to_nir(graph)`` / ``write_nir(graph, path)`` and ``from_nir(path_or_graph, dt=...)``.

Conventions (targets.md §1.3, §5.1). NIR nodes are continuous-time ODEs; spikeseq writes them so that *forward Euler
at the NIR step* ``nir_dt`` (default: the graph's dt) reproduces the spikeseq graph step for step:
``tau = nir_dt / (1 - beta)`` for every decay ``beta`` of the graph, ``r`` and ``w_in`` unchanged, so a traced
spikeseq model gets snnTorch's convention ``r = tau/dt``, ``w_in = tau_syn/dt`` (the input adds to ``v`` / ``i``
with gain 1). snnTorch's importer hard-codes ``dt = 1e-4``: write with ``nir_dt=1e-4`` for it.
Norse's importer ignores ``r`` on LIF/IF nodes: ``convention="norse"`` folds ``r`` into the incoming weight rows (or
the output channels of a feeding Conv1d/Conv2d, when ``r`` is one value per channel) and writes ``r = 1`` (the same
continuous model, so every honest importer sees the same dynamics). Norse 1.1's ``IAFCell`` import also ignores dt
(``v += x`` where NIR's ``IF`` integrates ``v += dt * r * x``): an IF layer replays in Norse only with its incoming
weights scaled by ``dt`` on top (tests/test_interop_probe_s13.py).

Graph ``metadata`` records ``dt`` (= nir_dt), ``spikeseq_dt``, ``discretization="euler"``, the update order
(``current then voltage; the new current reaches v in the same step``), the threshold (``v > v_threshold``) and the
timing (``feed-forward edges 0 steps, recurrent edges 1 step``); each neuron node's metadata records its reset
mode (``zero`` = NIR's ``v <- v_reset``; ``subtract`` / ``none`` are spikeseq extensions other tools ignore, so one
:class:`NIRExtensionWarning` per written graph names the nodes). Recurrent loops stay explicit flat edges
``lif -> rec -> lif`` (snnTorch and Lava re-wrap such 2-cycles; nirtorch reads the previous step on the closing
edge). Nested graphs become nested ``NIRGraph`` nodes.

``from_nir`` builds a graph with ``discretization="euler"`` and the ``dt`` you pass (required: NIR carries none;
a ``dt`` found in the file's metadata is only used to check yours). Kinds with no NIR equivalent (graded spikes,
``LMUMemory``, fixed-point kinds; ``DelayAffine`` with ``delays="refuse"``, else written as ``Delay -> Linear``
branches) raise :class:`~spikeseq.errors.ExportError` naming the node; an unreadable, corrupt or foreign HDF5
file, and a node type the reader does not know, raise :class:`~spikeseq.errors.DataError` (naming the node and its
type). A file whose ``version`` is not of the NIR series this module implements (:data:`NIR_SERIES`), or that
records none, is read with a :class:`NIRVersionWarning` naming both versions.

Negative thresholds are valid NIR and are read and written unchanged: NIR 1.0 defines ``Threshold``, ``IF``,
``LIF`` and ``CubaLIF`` by the strict comparison ``v > v_threshold`` with no sign constraint (specs/targets.md §1.2),
and models in physical units have one (``v_leak = v_reset = -65``, ``v_threshold = -50`` in mV). ``to_nir`` does not
refuse them either, so import and export agree. What does refuse them is elsewhere, and names the node: spikeseq's
own ``nn`` neurons need ``v_th > 0`` (their rest is ``v = 0``), and the Loihi quantiser has no negative threshold
mantissa (:class:`~spikeseq.errors.ExportError` ``node '<name>': negative threshold is not representable on Loihi``).
NIR carries no initial state: the interpreter starts every ``v`` at 0, so a neuron whose ``v_threshold`` is below
0 fires in its first step unless its input holds it down.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from spikeseq.errors import DataError, ExportError, ParameterError
from spikeseq.export._io import atomic_path
from spikeseq.graph import ir

__all__ = ["NIR_SERIES", "NIRExtensionWarning", "NIRVersionWarning", "extension_resets", "from_nir", "read_nir",
           "to_nir", "write_nir"]

#: the NIR release series (``major.minor``) this reader and writer implement (pyproject pins ``nir>=1.0.6,<1.1``)
NIR_SERIES = "1.0"
#: the NIR node types the reader converts (``type`` field of each node group in the HDF5 file)
READ_TYPES = ("Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten",
              "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF", "NIRGraph")


class NIRVersionWarning(UserWarning):
    """A NIR file was written by a NIR version of another series than the reader's (or records none): node types
    or fields that changed between the versions may be refused or misread."""


class NIRExtensionWarning(UserWarning):
    """The NIR file keeps a spikeseq semantic that NIR 1.0 cannot express (a reset mode) as node metadata: spikeseq's
    reader honours it, other NIR importers do not."""


UPDATE_ORDER = "current then voltage; the new current reaches v in the same step"
TIMING = "feed-forward edges 0 steps, edges closing a cycle 1 step (previous output)"


def _nir():
    try:
        import nir
    except ModuleNotFoundError as e:  # pragma: no cover - nir is a base dependency
        raise ExportError("NIR export needs the 'nir' package: pip install 'nir>=1.0.6,<1.1'") from e
    return nir


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


# ----------------------------------------------------------------------------------------------------------- write
def _conv_channel_r(node: ir.Node, w: ir.Node) -> np.ndarray | None:
    """The per-output-channel factor of ``node.r`` when it is constant over the positions of each channel fed by
    the convolution ``w`` (else ``None``: a factor that varies with position cannot move into a shared kernel)."""
    r = np.broadcast_to(node.r, w.out_shape).reshape(w.out_shape[0], -1)
    return r[:, 0] if np.allclose(r, r[:, :1]) else None


def _fold_r_into_weights(g: ir.Graph) -> ir.Graph:
    """Norse convention: LIF/IF nodes get r = 1, the factor moves into the rows of the weight nodes feeding them
    (the output channels of a Conv1d/Conv2d, whose kernel and bias scale by the channel's r)."""
    nodes = dict(g.nodes)
    for name, node in g.nodes.items():
        if not isinstance(node, (ir.LIF, ir.IF)) or np.allclose(node.r, 1.0):
            continue
        r = node.r.reshape(-1)
        for p in g.predecessors(name):
            w = nodes[p]
            conv = isinstance(w, (ir.Conv1d, ir.Conv2d))
            rc = _conv_channel_r(node, w) if conv else None
            if not (isinstance(w, (ir.Affine, ir.Linear)) or rc is not None) or len(g.successors(p)) != 1:
                raise ExportError(
                    f"convention='norse' needs node {name!r} ({node.kind}, r != 1) to be fed only by Linear/Affine "
                    f"nodes, or convolutions with one r per output channel, that it does not share; {p!r} is {w.kind}"
                )
            if conv:
                params = w.params()
                params["weight"] = w.weight * rc.reshape((-1,) + (1,) * (w.weight.ndim - 1))
                params["bias"] = w.bias * rc
                nodes[p] = type(w)(**params)
            elif isinstance(w, ir.Affine):
                nodes[p] = ir.Affine(w.weight * r[:, None], w.bias * r)
            else:
                nodes[p] = ir.Linear(w.weight * r[:, None])
        params = node.params()
        params["r"] = np.ones_like(node.r)
        nodes[name] = type(node)(**params)
    return ir.Graph(nodes, list(g.edges), dt=g.dt, discretization=g.discretization, metadata=dict(g.metadata))


def _expand_delays(g: ir.Graph) -> ir.Graph:
    """Per-synapse delays in NIR terms: a DelayAffine ``name`` becomes, per distinct delay k, the branch
    ``Delay(k*dt) -> Linear(W * [D == k])`` (``name_d{k}``, ``name_w{k}``), the bias on the first branch (Affine).
    Same dynamics; the branches are summed at the receiving node as NIR sums edges."""
    if not any(isinstance(n, ir.DelayAffine) for n in g.flat().nodes.values()):
        return g
    g = g.flat()
    nodes: dict[str, ir.Node] = {}
    edges = [e for e in g.edges if not isinstance(g.nodes[e[0]], ir.DelayAffine)
             and not isinstance(g.nodes[e[1]], ir.DelayAffine)]
    rec = set(map(tuple, g.metadata.get("recurrent_edges") or []))
    new_rec = [e for e in rec if e in edges]
    for name, node in g.nodes.items():
        if not isinstance(node, ir.DelayAffine):
            nodes[name] = node
            continue
        preds, succs = g.predecessors(name), g.successors(name)
        for i, k in enumerate(np.unique(node.delay)):
            w = np.where(node.delay == k, node.weight, 0.0)
            dn, wn = f"{name}_d{int(k)}", f"{name}_w{int(k)}"
            nodes[dn] = ir.Delay(np.full(node.in_shape, float(k) * g.dt))
            nodes[wn] = ir.Affine(w, node.bias) if (i == 0 and node.bias is not None) else ir.Linear(w)
            edges += [(p, dn) for p in preds] + [(dn, wn)] + [(wn, s) for s in succs]
            new_rec += [(wn, s) for s in succs if (name, s) in rec]
    meta = dict(g.metadata)
    if rec:
        meta["recurrent_edges"] = new_rec
    return ir.Graph(nodes, edges, dt=g.dt, discretization=g.discretization, metadata=meta)


def _node_to_nir(name: str, node: ir.Node, g: ir.Graph, nir_dt: float):
    nir = _nir()
    if getattr(node, "graded", False):
        raise ExportError(f"node {name!r} ({node.kind}) sends graded spikes, which NIR cannot express")
    meta = {}
    if hasattr(node, "reset"):
        meta["reset"] = node.reset

    def tau(t):
        return _f32(nir_dt / (1.0 - g.decay(t)))

    if isinstance(node, ir.Input):
        return nir.Input(input_type={"input": np.array(node.shape)})
    if isinstance(node, ir.Output):
        return nir.Output(output_type={"output": np.array(node.shape)})
    if isinstance(node, ir.Affine):
        return nir.Affine(weight=_f32(node.weight), bias=_f32(node.bias))
    if isinstance(node, ir.Linear):
        return nir.Linear(weight=_f32(node.weight))
    if isinstance(node, ir.Scale):
        return nir.Scale(scale=_f32(node.scale))
    if isinstance(node, ir.Conv2d):
        return nir.Conv2d(input_shape=tuple(node.input_shape[1:]), weight=_f32(node.weight), stride=node.stride,
                          padding=node.padding, dilation=node.dilation, groups=node.groups, bias=_f32(node.bias))
    if isinstance(node, ir.Conv1d):
        return nir.Conv1d(input_shape=node.input_shape[1], weight=_f32(node.weight), stride=node.stride,
                          padding=node.padding, dilation=node.dilation, groups=node.groups, bias=_f32(node.bias))
    if isinstance(node, ir.SumPool2d):  # AvgPool2d too
        cls = nir.AvgPool2d if node.divide else nir.SumPool2d
        return cls(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                   padding=np.array(node.padding))
    if isinstance(node, ir.Flatten):
        s = node.start_dim - 1 if node.start_dim > 0 else node.start_dim
        e = node.end_dim - 1 if node.end_dim > 0 else node.end_dim
        return nir.Flatten(input_type={"input": np.array(node.input_shape)}, start_dim=s, end_dim=e)
    if isinstance(node, ir.Delay):
        return nir.Delay(delay=_f32(np.rint(node.delay / g.dt) * nir_dt))
    if isinstance(node, ir.Threshold):
        return nir.Threshold(threshold=_f32(node.threshold))
    if isinstance(node, ir.I):
        return nir.I(r=_f32(node.r * g.dt / nir_dt), metadata=meta)
    if isinstance(node, ir.IF):
        return nir.IF(r=_f32(node.r * g.dt / nir_dt), v_threshold=_f32(node.v_threshold),
                      v_reset=_f32(node.v_reset), metadata=meta)
    if isinstance(node, ir.LI):
        return nir.LI(tau=tau(node.tau), r=_f32(node.r), v_leak=_f32(node.v_leak))
    if isinstance(node, ir.LIF):
        return nir.LIF(tau=tau(node.tau), r=_f32(node.r), v_leak=_f32(node.v_leak),
                       v_threshold=_f32(node.v_threshold), v_reset=_f32(node.v_reset), metadata=meta)
    if isinstance(node, ir.CubaLI):
        return nir.CubaLI(tau_syn=tau(node.tau_syn), tau_mem=tau(node.tau_mem), r=_f32(node.r),
                          v_leak=_f32(node.v_leak), w_in=_f32(node.w_in))
    if isinstance(node, ir.CubaLIF):
        return nir.CubaLIF(tau_syn=tau(node.tau_syn), tau_mem=tau(node.tau_mem), r=_f32(node.r),
                           v_leak=_f32(node.v_leak), v_threshold=_f32(node.v_threshold), v_reset=_f32(node.v_reset),
                           w_in=_f32(node.w_in), metadata=meta)
    if isinstance(node, ir.Graph):
        return _graph_to_nir(node, nir_dt, top=False)
    raise ExportError(
        f"node {name!r} of kind {node.kind} has no NIR equivalent (NIR 1.0 lacks per-synapse delays, graded "
        "spikes, LMU memories and fixed-point neurons); export it to 'loihi' or 'spinnaker2', or remove it"
    )


def _graph_to_nir(g: ir.Graph, nir_dt: float, top: bool):
    nir = _nir()
    nodes = {name: _node_to_nir(name, node, g, nir_dt) for name, node in g.nodes.items()}
    meta = {}
    if top:
        meta = {"dt": float(nir_dt), "spikeseq_dt": float(g.dt), "discretization": "euler",
                "update_order": UPDATE_ORDER, "threshold": "v > v_threshold (strict)", "timing": TIMING,
                "spike_amplitude": "1 per step (discrete spikes, not Dirac deltas)", "producer": "spikeseq"}
        rec = g.metadata.get("recurrent_edges")
        if rec:
            meta["recurrent_edges"] = np.array([[a, b] for a, b in rec], dtype="S")
    return nir.NIRGraph(nodes=nodes, edges=list(g.edges), metadata=meta)


def to_nir(graph: ir.Graph, *, nir_dt: float | None = None, convention: str = "snntorch", delays: str = "expand"):
    """The ``nir.NIRGraph`` of ``graph`` (see the module docstring for ``nir_dt`` and ``convention``).

    ``delays="expand"`` writes each per-synapse-delay node as NIR ``Delay -> Linear`` branches, one per distinct
    delay (only NIR consumers that implement ``Delay`` reproduce them; snnTorch and Norse ignore it);
    ``delays="refuse"`` raises :class:`~spikeseq.errors.ExportError` naming the node instead."""
    if delays not in ("expand", "refuse"):
        raise ParameterError(f"delays must be 'expand' or 'refuse', got {delays!r}")
    if convention not in ("snntorch", "norse"):
        raise ParameterError(f"convention must be 'snntorch' or 'norse', got {convention!r}")
    if graph.metadata.get("numerics") not in (None, "float"):
        raise ExportError(f"graph is quantised for {graph.metadata['numerics']!r}; export the float graph to NIR")
    nir_dt = graph.dt if nir_dt is None else float(nir_dt)
    if not nir_dt > 0:
        raise ParameterError(f"nir_dt must be > 0 seconds, got {nir_dt}")
    g = _expand_delays(graph) if delays == "expand" else graph
    g = _fold_r_into_weights(g.flat()) if convention == "norse" else g
    ext = extension_resets(g)
    if ext:   # one warning per file, not one per node
        warnings.warn(extension_message(ext), NIRExtensionWarning, stacklevel=3)
    return _graph_to_nir(g, nir_dt, top=True)


def extension_resets(graph: ir.Graph) -> dict[str, str]:
    """Neuron nodes (nested graphs included, as ``outer.inner``) whose reset NIR 1.0 cannot express (anything but
    ``"zero"``), with their reset mode."""
    out: dict[str, str] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            out.update({f"{name}.{k}": v for k, v in extension_resets(node).items()})
        elif getattr(node, "reset", "zero") != "zero":
            out[name] = node.reset
    return out


def extension_message(ext: dict[str, str]) -> str:
    """What a reset extension means, in one sentence (the warning and the verification notes)."""
    modes = sorted(set(ext.values()))
    return (f"NIR 1.0 has no reset={'/'.join(modes)!s}: nodes {', '.join(ext)} keep it as a spikeseq extension in "
            "their metadata; spikeseq's from_nir honours it, other NIR importers (snnTorch, Norse, ...) reset v to "
            "v_reset instead and would run a different model")


def write_nir(graph: ir.Graph, path: str | os.PathLike, **kwargs) -> Path:
    """Write ``to_nir(graph, **kwargs)`` to ``path`` atomically (nothing is left behind on error)."""
    nir = _nir()
    graph.check_shapes()
    graph.check_finite()
    ng = to_nir(graph, **kwargs)
    with atomic_path(path, suffix=".nir.tmp") as tmp:
        nir.write(tmp, ng)
    return Path(path)


# ----------------------------------------------------------------------------------------------------------- read
def read_nir(path: str | os.PathLike):
    """``nir.read`` with specific errors for a missing, corrupt or foreign file and for a node type the reader does
    not know (naming the node and its type); a :class:`NIRVersionWarning` when the file's NIR version is not of
    :data:`NIR_SERIES`."""
    return _read_nir(path, stacklevel=3)


def _read_nir(path: str | os.PathLike, stacklevel: int):
    nir = _nir()
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"NIR file {path} does not exist")
    version: str | None = None
    unknown: tuple[str, str] | None = None
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            if "node" in keys:
                version = _file_version(f)
                unknown = _unknown_types(f["node"])
    except OSError as e:
        raise DataError(f"{path} is not a readable HDF5 file ({e}); a NIR file is HDF5 with 'version' and 'node'") \
            from e
    if "node" not in keys:
        hint = " (it looks like a lava-dl netx .net file)" if "layer" in keys else ""
        raise DataError(f"{path} is HDF5 but not a NIR file: it has groups {sorted(keys)}, no 'node'{hint}")
    other = version is None or _series(version) != NIR_SERIES
    written = "records no NIR version" if version is None else f"was written by NIR {version}"
    if unknown:
        where, kind = unknown
        newer = f"; the file {written}, whose node types may differ" if other else ""
        raise DataError(f"{path}: corrupt or unsupported NIR content: {where} has type {kind}, which "
                        f"spikeseq's NIR {NIR_SERIES} reader does not know (it reads {', '.join(READ_TYPES)}){newer}; "
                        "re-export the model with those node types or fix the producer of the file")
    if other:
        warnings.warn(f"{path} {written}, but spikeseq's NIR reader was written for NIR {NIR_SERIES}.x (installed "
                      f"nir {getattr(nir, '__version__', '?')}): node types or fields that differ between these "
                      f"versions may be refused or misread; re-export the file with NIR {NIR_SERIES}.x, or check "
                      "the graph read back against the original model", NIRVersionWarning, stacklevel=stacklevel)
    try:
        return nir.read(path)
    except Exception as e:
        raise DataError(f"{path}: corrupt or unsupported NIR content: {_explain(e)}") from e


def _text(v) -> str:
    v = v.item() if isinstance(v, np.ndarray) and v.size == 1 else v
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _file_version(f) -> str | None:
    """The ``version`` string a NIR file records (None when it has none)."""
    d = f.get("version")
    return _text(d[()]) if d is not None and hasattr(d, "shape") else None


def _series(version: str) -> str | None:
    m = re.match(r"\s*v?(\d+)\.(\d+)", version)
    return f"{int(m.group(1))}.{int(m.group(2))}" if m else None


def _unknown_types(group, name: str = "") -> tuple[str, str] | None:
    """``(node, type)`` of the first node group (depth first) whose ``type`` is missing or not in
    :data:`READ_TYPES`; ``name``: the dotted path of ``group`` ("" for the top-level graph)."""
    import h5py

    where = f"node {name!r}" if name else "the top-level graph node"
    d = group.get("type") if isinstance(group, h5py.Group) else None
    if d is None or not hasattr(d, "shape"):
        return where, "(none: the node has no 'type' field)"
    kind = _text(d[()])
    if kind not in READ_TYPES:
        return where, repr(kind)
    children = group.get("nodes") if kind == "NIRGraph" else None
    if isinstance(children, h5py.Group):
        for child in children:
            found = _unknown_types(children[child], f"{name}.{child}" if name else str(child))
            if found:
                return found
    return None


def _explain(e: BaseException) -> str:
    """A NIR exception as text that says what is wrong and what to do (NIR's checks are bare ``assert``s)."""
    import traceback

    text = str(e).strip()
    if isinstance(e, AssertionError) or not text:
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno} ({(tb[-1].line or '').strip()[:80]})" if tb else ""
        text = (f"NIR's own consistency check failed{where}{': ' + text if text else ''}; the file holds a node "
                "type this NIR version does not know, a node with missing or malformed fields, or shapes that do "
                "not match between connected nodes")
    elif "type mismatch" in text or "Type inference" in text:
        text = f"{type(e).__name__}: {text} (the shapes of connected nodes do not match)"
    else:
        text = f"{type(e).__name__}: {text}"
    return text + "; re-export the model (spikeseq export RUN --target nir) or fix the producer of the file"


def _arr(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _node_from_nir(name: str, n, dt: float, nir_dt_in_file: float | None):
    nir = _nir()
    reset = (getattr(n, "metadata", None) or {}).get("reset", "zero")
    if isinstance(reset, bytes):
        reset = reset.decode()
    reset = str(reset)
    if isinstance(n, nir.NIRGraph):
        return _graph_from_nir(n, dt, nir_dt_in_file, top=False)
    if isinstance(n, nir.Input):
        return ir.Input(tuple(int(s) for s in np.atleast_1d(n.input_type["input"])))
    if isinstance(n, nir.Output):
        return ir.Output(tuple(int(s) for s in np.atleast_1d(n.output_type["output"])))
    if isinstance(n, nir.Affine):
        return ir.Affine(n.weight, n.bias)
    if isinstance(n, nir.Linear):
        return ir.Linear(n.weight)
    if isinstance(n, nir.Scale):
        return ir.Scale(n.scale)
    if isinstance(n, nir.Conv2d):
        shape = n.input_type["input"]
        if shape is None or len(shape) != 3:
            raise DataError(f"NIR node {name!r}: Conv2d without a known input shape (C, H, W); give the graph's "
                            "Input node its input_type (e.g. [2, 34, 34]) so NIR can infer the shapes")
        return ir.Conv2d(tuple(int(s) for s in shape), n.weight, n.bias, tuple(n.stride), tuple(n.padding),
                         tuple(n.dilation), int(n.groups))
    if isinstance(n, nir.Conv1d):
        shape = n.input_type["input"]
        return ir.Conv1d(tuple(int(s) for s in shape), n.weight, n.bias, int(np.atleast_1d(n.stride)[0]),
                         int(np.atleast_1d(n.padding)[0]), int(np.atleast_1d(n.dilation)[0]), int(n.groups))
    if isinstance(n, (nir.SumPool2d, nir.AvgPool2d)):
        shape = n.input_type.get("input") if n.input_type else None
        if shape is None:
            raise DataError(f"NIR node {name!r}: {type(n).__name__} without an inferred input shape; give the "
                            "graph's Input node its input_type so NIR can infer the shapes")
        cls = ir.AvgPool2d if isinstance(n, nir.AvgPool2d) else ir.SumPool2d
        return cls(tuple(int(s) for s in shape), tuple(n.kernel_size), tuple(n.stride), tuple(n.padding))
    if isinstance(n, nir.Flatten):
        s = n.start_dim + 1 if n.start_dim >= 0 else n.start_dim
        e = n.end_dim + 1 if n.end_dim >= 0 else n.end_dim
        return ir.Flatten(tuple(int(v) for v in n.input_type["input"]), s, e)
    if isinstance(n, nir.Delay):
        return ir.Delay(_arr(n.delay))
    if isinstance(n, nir.Threshold):
        return ir.Threshold(n.threshold)
    if isinstance(n, nir.I):
        return ir.I(n.r)
    if isinstance(n, nir.IF):
        return ir.IF(n.r, n.v_threshold, getattr(n, "v_reset", None), reset=reset)
    if isinstance(n, nir.LI):
        return ir.LI(n.tau, n.r, n.v_leak)
    if isinstance(n, nir.LIF):
        return ir.LIF(n.tau, n.r, n.v_threshold, n.v_leak, getattr(n, "v_reset", None), reset=reset)
    if isinstance(n, nir.CubaLI):
        return ir.CubaLI(n.tau_syn, n.tau_mem, n.r, n.w_in, n.v_leak)
    if isinstance(n, nir.CubaLIF):
        w_in = np.broadcast_to(_arr(n.w_in), np.shape(n.r))
        return ir.CubaLIF(n.tau_syn, n.tau_mem, n.r, n.v_threshold, w_in, n.v_leak, getattr(n, "v_reset", None),
                          reset=reset)
    raise DataError(f"NIR node {name!r} of type {type(n).__name__} is not supported by spikeseq's reader; supported "
                    "are Input, Output, Affine, Linear, Scale, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, Delay, "
                    "Threshold, I, IF, LI, LIF, CubaLI, CubaLIF and nested NIRGraphs")


def _graph_from_nir(ng, dt: float, nir_dt_in_file, top: bool) -> ir.Graph:
    nodes = {str(k): _node_from_nir(str(k), v, dt, nir_dt_in_file) for k, v in ng.nodes.items()}
    meta = {"source": "nir"}
    if top:
        meta.update({k: (v.decode() if isinstance(v, bytes) else v) for k, v in (ng.metadata or {}).items()})
        rec = meta.get("recurrent_edges")
        if rec is not None:
            meta["recurrent_edges"] = [tuple(x.decode() if isinstance(x, bytes) else str(x) for x in e)
                                       for e in np.asarray(rec).reshape(-1, 2)]
    return ir.Graph(nodes, [tuple(e) for e in ng.edges], dt=dt, discretization="euler", metadata=meta)


def from_nir(src, *, dt: float | None = None) -> ir.Graph:
    """A spikeseq graph from a NIR file path or a ``nir.NIRGraph``, discretised with forward Euler at ``dt``."""
    if dt is None:
        raise ParameterError(
            "from_nir needs dt (seconds): NIR graphs are continuous-time and carry no step; use the dt the file "
            "was written for (spikeseq writes it to metadata['dt'], snnTorch uses 1e-4)"
        )
    try:
        dt_ok = not isinstance(dt, bool) and math.isfinite(float(dt)) and float(dt) > 0
    except (TypeError, ValueError):
        dt_ok = False
    if not dt_ok:  # before reading (and before a "differs from the file's dt" warning about a dt that is invalid)
        raise ParameterError(f"dt must be a positive number of seconds, got {dt!r}; use the dt the file was written "
                             "for (spikeseq writes it to metadata['dt'])")
    ng = _read_nir(src, stacklevel=3) if isinstance(src, (str, os.PathLike)) else src
    file_dt = (getattr(ng, "metadata", None) or {}).get("dt")
    if file_dt is not None and not math.isclose(float(file_dt), float(dt), rel_tol=1e-9):
        warnings.warn(f"from_nir: dt={dt} differs from the dt={float(file_dt)} recorded in the file's metadata",
                      stacklevel=2)
    try:
        return _graph_from_nir(ng, float(dt), file_dt, top=True)
    except (ExportError, DataError, ParameterError):
        raise
    except Exception as e:
        raise DataError(f"NIR graph could not be converted: {_explain(e)}") from e
