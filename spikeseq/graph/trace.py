"""``trace(model, dt=...)``: turn a spikeseq ``nn`` model into a :class:`~spikeseq.graph.ir.Graph`.

Lowering is by module type (:func:`register_lowering`): this module lowers the ``nn`` building blocks itself
(``spikeseq.nn.Sequential`` (nested too), ``torch.nn.Linear`` (-> Affine, or Linear without bias),
``Conv1d``/``Conv2d``, ``AvgPool2d``, ``Flatten``, ``Dropout``/``Identity`` (dropped), eval-mode ``BatchNorm1d/2d``
(folded into the synapse before it), ``spikeseq.nn.LIF`` / ``IF`` / ``CubaLIF`` / ``LI``,
:class:`spikeseq.nn.recurrent.RLIF` (an explicit recurrent edge ``lif -> rec -> lif``) and
:class:`spikeseq.nn.DelayLinear` (-> :class:`~spikeseq.graph.ir.DelayAffine`), :class:`spikeseq.nn.LMUMemory`
(-> :class:`~spikeseq.graph.ir.LMUMemory`)); a model family registers a lowering
only for wiring that no building block has (``spikeseq.models.registry.Family.lowerings``). Anything else raises
:class:`~spikeseq.errors.ExportError` naming the module.

A lowering is ``fn(module, builder, prev, shape, prefix) -> (exits, shape)``: ``builder`` is the
:class:`GraphBuilder` (add nodes and edges, lower children with :meth:`GraphBuilder.lower`), ``prev`` the names of
the nodes feeding the module, ``shape`` the per-sample input shape, ``prefix`` the node-name prefix; it returns the
names of the nodes its output leaves from and the per-sample output shape.

Neuron parameters are written so that the IR's discrete semantics equal spikeseq's (see :mod:`.ir`): the node
carries the module's ``tau`` (seconds) as stored, the graph uses ``discretization="exp"`` with the one conversion
``beta = decay_from_tau(tau, dt)``, ``r = 1/(1-beta)`` and ``w_in = 1/(1-alpha)``.
``dt`` is required and must equal the ``dt`` every neuron module was built with.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from spikeseq.errors import ExportError, ParameterError
from spikeseq.functional.discretize import decay_from_tau
from spikeseq.graph import ir
from spikeseq.nn import IF, LI, LIF, CubaLIF, DelayLinear, LMUMemory, Sequential
from spikeseq.nn.recurrent import RLIF

__all__ = ["Bindings", "GraphBuilder", "Lowering", "affine_node", "bind", "bind_spiking", "fold_batchnorm",
           "graph_inputs", "infer_input_shape", "linear_node", "lowering_for", "neuron_node", "register_lowering",
           "trace", "trace_bound", "unregister_lowering"]

#: node name -> what target mode needs of the module the node came from: for a synapse node ``{"weight": tensor,
#: "bias": tensor}``, the live torch tensors its arrays were computed from; for a spiking neuron node
#: ``{"surrogate": Surrogate, "detach_reset": bool}``, the spike's surrogate and reset-gradient rule of training
Bindings = dict[str, dict[str, Any]]
#: while :func:`trace_bound` runs: id(node) -> (node, {field: value}); ``None`` otherwise (plain trace)
_RECORDER: contextvars.ContextVar[dict | None] = contextvars.ContextVar("spikeseq_trace_bindings", default=None)


def bind(node: ir.Node, **tensors: torch.Tensor | None) -> ir.Node:
    """Record that ``node``'s arrays (``weight=``, ``bias=``) are the values of these torch tensors (with their
    autograd history), for :func:`trace_bound`; a no-op during a plain :func:`trace`. Returns ``node``.

    The lowering helpers (:func:`affine_node`, :func:`linear_node`, the Conv and DelayLinear lowerings,
    :func:`fold_batchnorm`) call it, so a family lowering built from them gets bindings without code of its own;
    a lowering that builds a synapse node from numpy arrays itself leaves it unbound (a constant in target mode).
    Keyed by the node object, never by matching values."""
    _record(node, {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)})
    return node


def bind_spiking(node: ir.Node, module: nn.Module) -> ir.Node:
    """Record, for :func:`trace_bound`, how ``module`` (a spikeseq neuron) differentiates its spikes in training:
    its ``surrogate`` and ``detach_reset``, so target mode's backward pass is the float model's (a no-op during a
    plain :func:`trace`, and for modules without a surrogate, such as ``LI``). :func:`neuron_node` calls it."""
    surrogate = getattr(module, "surrogate", None)
    if surrogate is not None:
        _record(node, {"surrogate": surrogate, "detach_reset": bool(getattr(module, "detach_reset", False))})
    return node


def _record(node: ir.Node, values: dict[str, Any]) -> None:
    rec = _RECORDER.get()
    if rec is not None and values:
        rec[id(node)] = (node, {**rec.get(id(node), (node, {}))[1], **values})


#: ``fn(module, builder, prev, shape, prefix) -> (exit node names, per-sample output shape)``
Lowering = Callable[..., tuple[list[str], tuple[int, ...]]]
_LOWERINGS: dict[type, Lowering] = {}
_BUILTIN: set[type] = set()


def register_lowering(cls: type, fn: Lowering) -> None:
    """Teach :func:`trace` to lower modules of type ``cls`` (and subclasses without a lowering of their own).

    Raises :class:`~spikeseq.errors.ExportError` when ``cls`` already has a lowering (a building block of
    ``spikeseq.nn`` or another registration): a type is lowered in one place.
    """
    if not isinstance(cls, type) or not callable(fn):
        raise ExportError(f"register_lowering(cls, fn) needs a class and a callable, got {cls!r}, {fn!r}")
    if cls in _LOWERINGS:
        owner = "spikeseq.graph (an nn building block)" if cls in _BUILTIN else _LOWERINGS[cls].__module__
        raise ExportError(f"{cls.__module__}.{cls.__qualname__} already has a lowering (from {owner}); a type is "
                          "lowered in one place")
    _LOWERINGS[cls] = fn


def unregister_lowering(cls: type) -> None:
    """Remove the lowering registered for ``cls`` (building blocks cannot be removed)."""
    if cls in _BUILTIN:
        raise ExportError(f"{cls.__qualname__} is an nn building block lowered by spikeseq.graph itself")
    if _LOWERINGS.pop(cls, None) is None:
        raise ExportError(f"no lowering registered for {cls.__module__}.{cls.__qualname__}")


def lowering_for(cls: type) -> Lowering | None:
    """The lowering of ``cls``: its own or that of the nearest base class that has one (``None``: none)."""
    for k in cls.__mro__:
        if k in _LOWERINGS:
            return _LOWERINGS[k]
    return None


def _builtin(*classes: type) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        for c in classes:
            _LOWERINGS[c] = fn
            _BUILTIN.add(c)
        return fn

    return deco


class GraphBuilder:
    """The graph under construction, handed to every lowering.

    ``dt`` the step (s); ``nodes``/``edges`` the graph so far; ``module_of`` maps a neuron node to the qualified
    name of the module whose output it reproduces (verification compares the two); ``recurrent`` lists edges that
    read the previous step; ``path`` is the qualified module name being lowered; ``metadata`` goes into the
    graph's metadata (e.g. ``output_transform``: ``"cumsum"``/``"cummean"`` when the model's readout accumulates
    the output node over time).
    """

    def __init__(self, dt: float) -> None:
        self.dt = float(dt)
        self.nodes: dict[str, ir.Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.module_of: dict[str, str] = {}
        self.recurrent: list[tuple[str, str]] = []
        self.metadata: dict[str, Any] = {}
        self.path = ""

    def add(self, name: str, node: ir.Node, prev: list[str]) -> str:
        """Add ``node`` called ``name`` fed by the nodes ``prev``; returns ``name``."""
        if name in self.nodes:
            raise ExportError(f"duplicate node name {name!r} while tracing")
        self.nodes[name] = node
        self.edges += [(p, name) for p in prev]
        return name

    def add_recurrent(self, src: str, dst: str) -> None:
        """An edge ``src -> dst`` that reads ``src``'s output of the previous step."""
        self.edges.append((src, dst))
        self.recurrent.append((src, dst))

    def child_path(self, name: str) -> str:
        """The qualified name of child ``name`` of the module being lowered."""
        return f"{self.path}.{name}" if self.path else name

    def lower(self, m: nn.Module, prev: list[str], shape: tuple[int, ...], prefix: str,
              path: str | None = None) -> tuple[list[str], tuple[int, ...]]:
        """Lower module ``m`` (qualified name ``path``, default: unchanged) with its registered lowering."""
        here = self.path
        if path is not None:
            self.path = path
        try:
            fn = lowering_for(type(m))
            if fn is None:
                raise ExportError(
                    f"cannot trace member {prefix.rstrip('_') or 'model'} of type {type(m).__name__}: no IR "
                    f"equivalent; lowered are {', '.join(sorted(c.__name__ for c in _LOWERINGS))} "
                    "(spikeseq.graph.register_lowering adds more)")
            return fn(m, self, prev, tuple(shape), prefix)
        except _Overflow as e:
            if e.named:
                raise
            err = _Overflow(f"cannot trace {self.path or prefix.rstrip('_') or 'model'} ({type(m).__name__}): {e}")
            err.named = True
            raise err from None
        finally:
            self.path = here


def trace(model: nn.Module, *, dt: float | None = None, input_shape: tuple[int, ...] | int | None = None,
          input_payload: ir.Payload = "spikes") -> ir.Graph:
    """The IR graph of ``model`` at step ``dt`` (seconds, required).

    ``input_shape`` is the per-sample input shape (no time or batch); it is inferred from a first
    ``Linear``/``RLIF``/``DelayLinear`` or from the model's ``input_shape`` attribute, and required otherwise.
    ``input_payload`` declares what the input carries (``"spikes"`` for 0/1 events, ``"graded"`` for sparse valued
    events such as event counts, ``"dense"``).
    """
    if dt is None:
        raise ParameterError("trace(model, dt=...) needs the time step dt in seconds (it is recorded in the graph)")
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ParameterError(f"dt must be a positive number of seconds, got {dt!r}")
    shape = infer_input_shape(model) if input_shape is None else ir.as_shape(input_shape)
    b = GraphBuilder(float(dt))
    b.add("input", ir.Input(shape, payload=input_payload), [])
    exits, shape = b.lower(model, ["input"], shape, "")
    b.add("output", ir.Output(shape), exits)
    g = ir.Graph(b.nodes, b.edges, dt=float(dt), discretization="exp",
                 metadata={"source": "spikeseq.graph.trace", "model": type(model).__name__,
                           "module_of": dict(b.module_of), "recurrent_edges": list(b.recurrent), **b.metadata})
    g.check_shapes()
    return g


def trace_bound(model: nn.Module, *, dt: float | None = None, input_shape: tuple[int, ...] | int | None = None,
                input_payload: ir.Payload = "spikes") -> tuple[ir.Graph, Bindings]:
    """:func:`trace` plus the :data:`Bindings` of every synapse node whose arrays came from torch tensors: node
    name -> ``{"weight": tensor, "bias": tensor}`` holding the values of the node's arrays (up to float rounding: the
    arrays stay the reference), computed from the model's parameters with autograd history (BatchNorm folding
    included, in torch). Target-mode training
    (:mod:`spikeseq.graph.target_forward`) sends gradients through them to the model's parameters."""
    rec: dict = {}
    token = _RECORDER.set(rec)
    try:
        g = trace(model, dt=dt, input_shape=input_shape, input_payload=input_payload)
    finally:
        _RECORDER.reset(token)
    by_id = {id(node): name for name, node in g.nodes.items()}
    out: Bindings = {}
    for key, (node, tensors) in rec.items():
        name = by_id.get(key)
        if name is not None and g.nodes[name] is node:
            out[name] = tensors
    return g, out


def graph_inputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x``, the model's input, as the traced graph's input: the model's ``graph_inputs(x)`` where it has one
    (token ids ``[T, B]`` -> one-hot events ``[T, B, vocab]``), else ``x`` itself. The verifier, the interpreter's
    callers and target mode all feed the graph through it."""
    to_graph = getattr(model, "graph_inputs", None)
    return to_graph(x) if callable(to_graph) else x


def infer_input_shape(model: nn.Module) -> tuple[int, ...]:
    """The per-sample input shape :func:`trace` infers for ``model`` (its own ``input_shape`` attribute or that of
    its first member, or the width of a first ``Linear``/``RLIF``/``DelayLinear``); ParameterError otherwise."""
    first = model
    while isinstance(first, Sequential) and len(first):
        first = first[0]
    declared = getattr(first, "input_shape", None)
    if declared is not None:
        return ir.as_shape(declared)
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    if isinstance(first, RLIF):
        return (first.fc.in_features,)
    if isinstance(first, DelayLinear):
        return (int(first.in_features),)
    raise ParameterError(
        f"cannot infer the input shape from a first member of type {type(first).__name__}; pass "
        "trace(model, dt=..., input_shape=(C, H, W)) or give the model an input_shape attribute"
    )


class _Overflow(ExportError):
    """A finite parameter that the IR's dtype cannot hold (named with the module by :meth:`GraphBuilder.lower`)."""

    named = False


def _np(t: torch.Tensor, dtype=np.float64) -> np.ndarray:
    """``t`` as a numpy array of ``dtype``; :class:`ExportError` when a finite value overflows it (a float64
    parameter of 1e40 would otherwise become Inf in the float32 graph and be reported as an Inf weight)."""
    src = t.detach().cpu().to(torch.float64).numpy()
    if np.dtype(dtype).kind != "f" or np.dtype(dtype).itemsize >= 8:
        return src.astype(dtype)
    big = np.isfinite(src) & (np.abs(src) > np.finfo(dtype).max)
    if big.any():
        v = float(src[big].flat[0])
        lim = float(np.finfo(dtype).max)
        raise _Overflow(f"a parameter of shape {tuple(src.shape)} holds {v:g} ({int(big.sum())} such values), beyond "
                        f"the {np.dtype(dtype).name} range (+-{lim:.3g}) of the graph and of NIR files; rescale "
                        "that layer (its weights, bias and the next neurons' threshold together) or "
                        "check the checkpoint")
    return src.astype(dtype)


# ----------------------------------------------------------------------------- lowerings of nn building blocks
@_builtin(Sequential)
def _lower_sequential(m: Sequential, b: GraphBuilder, prev, shape, prefix):
    for i, layer in enumerate(m.layers):
        prev, shape = b.lower(layer, prev, shape, f"{prefix}{i}_", path=b.child_path(f"layers.{i}"))
    return prev, shape


@_builtin(nn.Dropout, nn.Identity)
def _lower_nothing(m, b: GraphBuilder, prev, shape, prefix):
    return prev, shape


@_builtin(nn.BatchNorm1d, nn.BatchNorm2d)
def _lower_batchnorm(m, b: GraphBuilder, prev, shape, prefix):
    return fold_batchnorm(m, b, prev, prefix), shape


@_builtin(nn.Linear)
def _lower_linear(m: nn.Linear, b: GraphBuilder, prev, shape, prefix):
    node = affine_node(m)
    return [b.add(f"{prefix}{node.kind.lower()}", node, prev)], node.out_shape


@_builtin(nn.Conv2d)
def _lower_conv2d(m: nn.Conv2d, b: GraphBuilder, prev, shape, prefix):
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise ExportError(f"{prefix}conv2d: only numeric zero padding is supported, got {m.padding!r}")
    bias = _np(m.bias, np.float32) if m.bias is not None else np.zeros(m.out_channels, np.float32)
    node = bind(ir.Conv2d(shape, _np(m.weight, np.float32), bias, m.stride, m.padding, m.dilation, m.groups),
                weight=m.weight, bias=m.bias)
    return [b.add(f"{prefix}conv2d", node, prev)], node.out_shape


@_builtin(nn.Conv1d)
def _lower_conv1d(m: nn.Conv1d, b: GraphBuilder, prev, shape, prefix):
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise ExportError(f"{prefix}conv1d: only numeric zero padding is supported, got {m.padding!r}")
    bias = _np(m.bias, np.float32) if m.bias is not None else np.zeros(m.out_channels, np.float32)
    node = bind(ir.Conv1d(shape, _np(m.weight, np.float32), bias, m.stride[0], m.padding[0], m.dilation[0],
                          m.groups), weight=m.weight, bias=m.bias)
    return [b.add(f"{prefix}conv1d", node, prev)], node.out_shape


@_builtin(nn.AvgPool2d)
def _lower_avgpool2d(m: nn.AvgPool2d, b: GraphBuilder, prev, shape, prefix):
    if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
        raise ExportError(f"{prefix}avgpool2d: ceil_mode / count_include_pad=False / divisor_override "
                          "are not supported")
    node = ir.AvgPool2d(shape, m.kernel_size, m.stride or m.kernel_size, m.padding)
    return [b.add(f"{prefix}avgpool2d", node, prev)], node.out_shape


@_builtin(nn.Flatten)
def _lower_flatten(m: nn.Flatten, b: GraphBuilder, prev, shape, prefix):
    node = ir.Flatten(shape, m.start_dim, m.end_dim)
    return [b.add(f"{prefix}flatten", node, prev)], node.out_shape


@_builtin(LIF, IF, CubaLIF, LI)
def _lower_neuron(m, b: GraphBuilder, prev, shape, prefix):
    node = neuron_node(m, shape, b.dt, f"{prefix}{type(m).__name__.lower()}")
    name = b.add(f"{prefix}{node.kind.lower()}", node, prev)
    b.module_of[name] = b.path
    return [name], shape


@_builtin(RLIF)
def _lower_rlif(m: RLIF, b: GraphBuilder, prev, shape, prefix):
    fc = b.add(f"{prefix}fc", affine_node(m.fc), prev)
    neuron = neuron_node(m.neuron, (m.hidden,), b.dt, f"{prefix}{m.kind}")
    cell = b.add(f"{prefix}{neuron.kind.lower()}", neuron, [fc])
    b.module_of[cell] = b.path
    rec = b.add(f"{prefix}rec", affine_node(m.rec), [cell])
    b.add_recurrent(rec, cell)
    return [cell], (m.hidden,)


@_builtin(DelayLinear)
def _lower_delay_linear(m: DelayLinear, b: GraphBuilder, prev, shape, prefix):
    """The eval-mode layer: its delays clamped and rounded (``DelayLinear.eval_weights_and_delays``)."""
    w, d = m.eval_weights_and_delays()
    bias = getattr(m, "bias", None)
    node = bind(ir.DelayAffine(_np(torch.as_tensor(w), np.float32), _np(torch.as_tensor(d), np.int64),
                               None if bias is None else _np(bias, np.float32)), weight=m.weight, bias=bias)
    return [b.add(f"{prefix}delayaffine", node, prev)], node.out_shape


@_builtin(LMUMemory)
def _lower_lmu_memory(m: LMUMemory, b: GraphBuilder, prev, shape, prefix):
    """``m[t] = A_bar m[t-1] + B_bar u[t]`` per channel: one :class:`~spikeseq.graph.ir.LMUMemory` node over all
    ``N`` channels with block-diagonal ``kron(I_N, A_bar)`` and ``kron(I_N, B_bar)``; it sends the memory flattened
    channel-major (``[N * d]``, the module's ``[N, d]`` output reshaped)."""
    if math.prod(shape) != shape[-1] or not shape:
        raise ExportError(f"{prefix}lmu_memory: needs one vector of channels per step, got shape {shape}")
    n = int(shape[-1])
    eye = np.eye(n)
    a, bb = (t.detach().double().cpu().numpy() for t in m.matrices())
    node = ir.LMUMemory(np.kron(eye, a), np.kron(eye, bb.reshape(-1, 1)))
    return [b.add(f"{prefix}lmu_memory", node, prev)], node.out_shape


# ------------------------------------------------------------------------------------ helpers for lowerings
def affine_node(lin: nn.Linear) -> ir.Node:
    """``Affine`` (or ``Linear`` without bias) node of a ``torch.nn.Linear``."""
    w = _np(lin.weight, np.float32)
    node = ir.Affine(w, _np(lin.bias, np.float32)) if lin.bias is not None else ir.Linear(w)
    return bind(node, weight=lin.weight, bias=lin.bias)


def _check_dt(m: nn.Module, dt: float, name: str) -> None:
    if not math.isclose(float(m.dt), dt, rel_tol=1e-9):
        raise ParameterError(f"{name} was built with dt={m.dt} but trace got dt={dt}; trace with the model's dt")


def _tau_gain(m: nn.Module, which: str, shape, dt: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The module's time constant ``tau_<which>`` (seconds, as stored: no round trip through the decay) and the
    input factor ``r = 1/(1 - beta)`` with ``beta = decay_from_tau(tau, dt)`` (the conversion the graph's semantics
    use too), broadcast to ``shape``."""
    decay = np.broadcast_to(_np(m.alpha if which == "syn" else m.beta), shape)
    if (decay <= 0).any() or (decay >= 1).any():
        hint = (f"a decay of 0 means tau_{which} is so short against dt={dt:g} s that exp(-dt/tau) underflows "
                "and nothing is kept between steps: use a longer tau or a smaller dt"
                ) if (decay <= 0).any() else "use IF for beta = 1 (no leak)"
        raise ExportError(
            f"{name}: decay factors must lie strictly in (0, 1) to have a finite time constant, got range "
            f"[{decay.min()}, {decay.max()}]; {hint}"
        )
    tau = np.ascontiguousarray(np.broadcast_to(_np(getattr(m, f"tau_{which}")), shape), dtype=np.float64)
    return tau, 1.0 / (1.0 - decay_from_tau(tau, dt))


def neuron_node(m: nn.Module, shape, dt: float, name: str) -> ir.Node:
    """The IR node of a spikeseq neuron module over a population of ``shape``."""
    _check_dt(m, dt, name)
    shape = tuple(shape)
    if isinstance(m, LI):
        tau, r = _tau_gain(m, "mem", shape, dt, name)
        return ir.LI(tau=tau, r=r)
    v_th = np.broadcast_to(_np(m.v_th), shape)
    if isinstance(m, IF):
        return bind_spiking(ir.IF(r=np.full(shape, 1.0 / dt), v_threshold=v_th, reset=m.reset), m)
    if isinstance(m, CubaLIF):
        tau_syn, w_in = _tau_gain(m, "syn", shape, dt, name)
        tau_mem, r = _tau_gain(m, "mem", shape, dt, name)
        return bind_spiking(ir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_threshold=v_th, w_in=w_in,
                                       reset=m.reset), m)
    if isinstance(m, LIF):
        tau, r = _tau_gain(m, "mem", shape, dt, name)
        return bind_spiking(ir.LIF(tau=tau, r=r, v_threshold=v_th, reset=m.reset), m)
    raise ExportError(f"{name}: {type(m).__name__} has no IR neuron kind")


def linear_node(w: torch.Tensor | np.ndarray) -> ir.Linear:
    """A bias-free ``Linear`` node with weight ``w`` ``[out, in]``."""
    node = ir.Linear(_np(torch.as_tensor(w), np.float32))
    return bind(node, weight=w) if isinstance(w, torch.Tensor) else node


def fold_batchnorm(m: nn.Module, b: GraphBuilder, prev: list[str], prefix: str) -> list[str]:
    """An eval-mode BatchNorm is a per-channel affine map ``a*x + c``: fold it into the synapse node before it."""
    name = prev[0] if len(prev) == 1 else None
    node = b.nodes.get(name) if name else None
    if m.training or node is None or not isinstance(node, (ir.Affine, ir.Linear, ir.DelayAffine, ir.Conv2d,
                                                            ir.Conv1d)):
        raise ExportError(
            f"{prefix.rstrip('_') or 'batchnorm'}: a BatchNorm can be traced only in eval mode and right after a "
            f"Linear/Conv/DelayLinear (found {'training mode' if m.training else type(node).__name__})"
        )
    if any(a == name for a, _ in b.edges):
        raise ExportError(f"{name}: cannot fold a BatchNorm into a synapse that already feeds other nodes")
    rv = m.running_var.detach().double()
    a = (m.weight.detach().double() if m.affine else torch.ones_like(rv)) / torch.sqrt(rv + m.eps)
    c = (m.bias.detach().double() if m.affine else torch.zeros_like(rv)) - a * m.running_mean.detach().double()
    a, c = a.numpy(), c.numpy()
    w = node.weight.astype(np.float64) * a.reshape(-1, *([1] * (node.weight.ndim - 1)))
    bias = getattr(node, "bias", None)
    bias = c if bias is None else a * bias + c
    if isinstance(node, ir.DelayAffine):
        new = ir.DelayAffine(w, node.delay, bias)
    elif isinstance(node, (ir.Affine, ir.Linear)):
        new = ir.Affine(w, bias)
    elif isinstance(node, ir.Conv2d):
        new = ir.Conv2d(node.input_shape, w, bias, node.stride, node.padding, node.dilation, node.groups)
    else:
        new = ir.Conv1d(node.input_shape, w, bias, node.stride, node.padding, node.dilation, node.groups)
    rec = _RECORDER.get()
    if rec is not None and id(node) in rec:  # the same fold in torch, so gradients reach the BatchNorm and weights
        bound = rec.pop(id(node))[1]
        ta = (m.weight if m.affine else torch.ones_like(m.running_var)) / torch.sqrt(m.running_var + m.eps)
        tc = (m.bias if m.affine else torch.zeros_like(m.running_var)) - ta * m.running_mean
        tw = bound.get("weight")
        tb = bound.get("bias")
        bind(new, weight=None if tw is None else tw * ta.reshape(-1, *([1] * (tw.dim() - 1))),
             bias=tc if tb is None else ta * tb + tc)
    b.nodes[name] = new
    return prev
