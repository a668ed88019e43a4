"""``trace(model, dt=...)``: turn a spikeseq ``nn`` model into a :class:`~spikeseq.graph.ir.Graph`.

Supported members (anything else raises :class:`~spikeseq.errors.ExportError` naming the module):
``spikeseq.nn.Sequential`` (nested too), ``torch.nn.Linear`` (-> Affine, or Linear without bias),
``Conv1d``/``Conv2d``, ``AvgPool2d``, ``Flatten``, ``Dropout``/``Identity`` (dropped), ``spikeseq.nn.LIF`` / ``IF`` /
``CubaLIF`` / ``LI``, :class:`spikeseq.nn.recurrent.RLIF` (an explicit recurrent edge ``lif -> rec -> lif``), and
``DelayLinear`` (-> :class:`~spikeseq.graph.ir.DelayAffine` from ``integer_weights_and_delays()``) when present.

Neuron parameters are written so that the IR's discrete semantics equal spikeseq's (see :mod:`.ir`): with
``beta = exp(-dt/tau)`` the graph uses ``discretization="exp"``, ``r = 1/(1-beta)`` and ``w_in = 1/(1-alpha)``.
``dt`` is required and must equal the ``dt`` every neuron module was built with.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from spikeseq.errors import ExportError, ParameterError
from spikeseq.graph import ir
from spikeseq.models.delay_snn import DelaySNN
from spikeseq.models.l2mu import L2MU
from spikeseq.nn import IF, LI, LIF, CubaLIF, Sequential
from spikeseq.nn.recurrent import RLIF

__all__ = ["register_tracer", "trace"]

#: module class -> tracer(module, builder, prev_names, shape, prefix) -> (exit names, out shape)
_TRACERS: dict[type, Callable] = {}


def register_tracer(cls: type, fn: Callable) -> None:
    """Teach :func:`trace` a new module class (``fn(module, builder, prev, shape, prefix) -> (exits, shape)``)."""
    _TRACERS[cls] = fn


class _Builder:
    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.nodes: dict[str, ir.Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.module_of: dict[str, str] = {}   # node -> qualified module name whose output it reproduces
        self.recurrent: list[tuple[str, str]] = []   # edges reading the previous step
        self.output_transform: str | None = None
        self.pad_end = 0
        self.path = ""

    def add(self, name: str, node: ir.Node, prev: list[str]) -> str:
        if name in self.nodes:
            raise ExportError(f"duplicate node name {name!r} while tracing")
        self.nodes[name] = node
        self.edges += [(p, name) for p in prev]
        return name


def trace(model: nn.Module, *, dt: float | None = None, input_shape: tuple[int, ...] | int | None = None,
          input_payload: ir.Payload = "spikes") -> ir.Graph:
    """The IR graph of ``model`` at step ``dt`` (seconds, required).

    ``input_shape`` is the per-sample input shape (no time or batch); it is inferred from a first
    ``Linear``/``RLIF``/``DelayLinear`` and required otherwise. ``input_payload`` declares what the input carries
    (``"spikes"`` for 0/1 events, ``"graded"`` for sparse valued events such as event counts, ``"dense"``).
    """
    if dt is None:
        raise ParameterError("trace(model, dt=...) needs the time step dt in seconds (it is recorded in the graph)")
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ParameterError(f"dt must be a positive number of seconds, got {dt!r}")
    shape = _infer_input_shape(model) if input_shape is None else ir._shape(input_shape)
    b = _Builder(float(dt))
    b.add("input", ir.Input(shape, payload=input_payload), [])
    exits, shape = _trace(model, b, ["input"], shape, "")
    b.add("output", ir.Output(shape), exits)
    g = ir.Graph(b.nodes, b.edges, dt=float(dt), discretization="exp",
                 metadata={"source": "spikeseq.graph.trace", "model": type(model).__name__,
                           "module_of": dict(b.module_of), "recurrent_edges": list(b.recurrent)})
    if b.output_transform:
        g.metadata["output_transform"] = b.output_transform
    if b.pad_end:
        g.metadata["pad_end"] = b.pad_end
    g.check_shapes()
    return g


def _infer_input_shape(model: nn.Module) -> tuple[int, ...]:
    first = model
    while isinstance(first, Sequential) and len(first):
        first = first[0]
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    if isinstance(first, RLIF):
        return (first.fc.in_features,)
    if isinstance(first, L2MU):
        return (first.input_size,)
    if isinstance(first, DelaySNN):
        return (first.config.n_inputs,)
    if hasattr(first, "integer_weights_and_delays") and hasattr(first, "in_features"):
        return (int(first.in_features),)
    raise ParameterError(
        f"cannot infer the input shape from a first member of type {type(first).__name__}; pass "
        "trace(model, dt=..., input_shape=(C, H, W))"
    )


def _np(t: torch.Tensor, dtype=np.float64) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy().astype(dtype)


def _trace(m: nn.Module, b: _Builder, prev: list[str], shape: tuple[int, ...], prefix: str):
    for cls, fn in _TRACERS.items():
        if isinstance(m, cls):
            return fn(m, b, prev, shape, prefix)
    if isinstance(m, L2MU):
        return _trace_l2mu(m, b, prev, shape, prefix)
    if isinstance(m, DelaySNN):
        return _trace_delay_snn(m, b, prev, shape, prefix)
    if isinstance(m, Sequential):
        here = b.path
        for i, layer in enumerate(m.layers):
            b.path = f"{here}.layers.{i}" if here else f"layers.{i}"
            prev, shape = _trace(layer, b, prev, shape, f"{prefix}{i}_")
        b.path = here
        return prev, shape
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return prev, shape
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _fold_batchnorm(m, b, prev, prefix), shape
    if isinstance(m, nn.Linear):
        w = _np(m.weight, np.float32)
        node = ir.Affine(w, _np(m.bias, np.float32)) if m.bias is not None else ir.Linear(w)
        return [b.add(f"{prefix}{node.kind.lower()}", node, prev)], node.out_shape
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ExportError(f"{prefix}conv2d: only numeric zero padding is supported, got {m.padding!r}")
        bias = _np(m.bias, np.float32) if m.bias is not None else np.zeros(m.out_channels, np.float32)
        node = ir.Conv2d(shape, _np(m.weight, np.float32), bias, m.stride, m.padding, m.dilation, m.groups)
        return [b.add(f"{prefix}conv2d", node, prev)], node.out_shape
    if isinstance(m, nn.Conv1d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ExportError(f"{prefix}conv1d: only numeric zero padding is supported, got {m.padding!r}")
        bias = _np(m.bias, np.float32) if m.bias is not None else np.zeros(m.out_channels, np.float32)
        node = ir.Conv1d(shape, _np(m.weight, np.float32), bias, m.stride[0], m.padding[0], m.dilation[0],
                         m.groups)
        return [b.add(f"{prefix}conv1d", node, prev)], node.out_shape
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
            raise ExportError(f"{prefix}avgpool2d: ceil_mode / count_include_pad=False / divisor_override "
                              "are not supported")
        node = ir.AvgPool2d(shape, m.kernel_size, m.stride or m.kernel_size, m.padding)
        return [b.add(f"{prefix}avgpool2d", node, prev)], node.out_shape
    if isinstance(m, nn.Flatten):
        node = ir.Flatten(shape, m.start_dim, m.end_dim)
        return [b.add(f"{prefix}flatten", node, prev)], node.out_shape
    if isinstance(m, (LIF, IF, CubaLIF, LI)):
        node = neuron_node(m, shape, b.dt, f"{prefix}{type(m).__name__.lower()}")
        name = b.add(f"{prefix}{node.kind.lower()}", node, prev)
        b.module_of[name] = b.path
        return [name], shape
    if isinstance(m, RLIF):
        fc = b.add(f"{prefix}fc", _affine(m.fc), prev)
        neuron = neuron_node(m.neuron, (m.hidden,), b.dt, f"{prefix}{m.kind}")
        cell = b.add(f"{prefix}{neuron.kind.lower()}", neuron, [fc])
        b.module_of[cell] = b.path
        rec = b.add(f"{prefix}rec", _affine(m.rec), [cell])
        b.edges.append((rec, cell))
        b.recurrent.append((rec, cell))
        return [cell], (m.hidden,)
    if hasattr(m, "integer_weights_and_delays"):
        w, d = m.integer_weights_and_delays()
        bias = getattr(m, "bias", None)
        node = ir.DelayAffine(_np(torch.as_tensor(w), np.float32), _np(torch.as_tensor(d), np.int64),
                              None if bias is None else _np(bias, np.float32))
        return [b.add(f"{prefix}delayaffine", node, prev)], node.out_shape
    raise ExportError(
        f"cannot trace member {prefix.rstrip('_') or 'model'} of type {type(m).__name__}: no IR equivalent; "
        "supported are Sequential, Linear, Conv1d/2d, AvgPool2d, Flatten, LIF, IF, CubaLIF, LI, RLIF, DelayLinear "
        "(register_tracer adds more)"
    )


def _affine(lin: nn.Linear) -> ir.Node:
    w = _np(lin.weight, np.float32)
    return ir.Affine(w, _np(lin.bias, np.float32)) if lin.bias is not None else ir.Linear(w)


def _check_dt(m: nn.Module, dt: float, name: str) -> None:
    if not math.isclose(float(m.dt), dt, rel_tol=1e-9):
        raise ParameterError(f"{name} was built with dt={m.dt} but trace got dt={dt}; trace with the model's dt")


def _tau_gain(beta: torch.Tensor, shape, dt: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    """tau (s) with exp(-dt/tau) = beta, and the input factor r = 1/(1-beta), broadcast to ``shape``."""
    bb = np.broadcast_to(_np(beta), shape).astype(np.float64)
    if (bb <= 0).any() or (bb >= 1).any():
        raise ExportError(
            f"{name}: decay factors must lie strictly in (0, 1) to have a finite time constant, got range "
            f"[{bb.min()}, {bb.max()}]; use IF for beta = 1"
        )
    return -dt / np.log(bb), 1.0 / (1.0 - bb)


def neuron_node(m: nn.Module, shape, dt: float, name: str) -> ir.Node:
    """The IR node of a spikeseq neuron module over a population of ``shape``."""
    _check_dt(m, dt, name)
    shape = tuple(shape)
    if isinstance(m, LI):
        tau, r = _tau_gain(m.beta, shape, dt, name)
        return ir.LI(tau=tau, r=r)
    v_th = np.broadcast_to(_np(m.v_th), shape)
    if isinstance(m, IF):
        return ir.IF(r=np.full(shape, 1.0 / dt), v_threshold=v_th, reset=m.reset)
    if isinstance(m, CubaLIF):
        tau_syn, w_in = _tau_gain(m.alpha, shape, dt, name)
        tau_mem, r = _tau_gain(m.beta, shape, dt, name)
        return ir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_threshold=v_th, w_in=w_in, reset=m.reset)
    if isinstance(m, LIF):
        tau, r = _tau_gain(m.beta, shape, dt, name)
        return ir.LIF(tau=tau, r=r, v_threshold=v_th, reset=m.reset)
    raise ExportError(f"{name}: {type(m).__name__} has no IR neuron kind")


def _linear(w: torch.Tensor | np.ndarray) -> ir.Linear:
    return ir.Linear(_np(torch.as_tensor(w), np.float32))


def _trace_l2mu(m: L2MU, b: _Builder, prev: list[str], shape, prefix: str):
    """L2MU (:mod:`spikeseq.models.l2mu`): populations x, u, m, h, out; the memory update
    ``I_m = A_bar s_m[t-1] + B_bar s_u`` becomes two Linear synapses (block-diagonal ``kron(I, A_bar)`` and
    ``kron(I, B_bar)``); the feedbacks h->u, m->u, h->h, m->m read the previous step (explicit recurrent edges);
    the model's cumulative readout is recorded as ``metadata["output_transform"]``."""
    dt, path, p = b.dt, b.path, prefix
    mod = lambda name: f"{path}.{name}" if path else name  # noqa: E731

    def pop(name, module, size, inputs):
        node = neuron_node(module, (size,), dt, f"{p}{name}")
        n = b.add(f"{p}{name}", node, inputs)
        b.module_of[n] = mod(name)
        return n

    if m.input_module == "lif":
        w_in = b.add(f"{p}w_in", _affine(m.w_in), prev)
        src = [pop("pop_x", m.pop_x, m.w_in.out_features, [w_in])]
    else:
        src = prev
    md, d = m.memory_size, m.order
    eye = torch.eye(md, dtype=torch.float64)
    e_x = b.add(f"{p}e_x", _affine(m.e_x), src)
    u = pop("pop_u", m.pop_u, md, [e_x])
    b.module_of.pop(u)  # stepped functionally inside L2MU.forward: no module output to compare with
    bm = b.add(f"{p}b_mem", _linear(torch.kron(eye, m.b_bar.double().reshape(d, 1))), [u])
    mm = pop("pop_m", m.pop_m, md * d, [bm])
    b.module_of.pop(mm)
    am = b.add(f"{p}a_mem", _linear(torch.kron(eye, m.a_bar.double())), [mm])
    e_m = b.add(f"{p}e_m", _affine(m.e_m), [mm])
    w_x = b.add(f"{p}w_x", _affine(m.w_x), src)
    w_m = b.add(f"{p}w_m", _affine(m.w_m), [mm])
    h = pop("pop_h", m.pop_h, m.hidden_size, [w_x, w_m])
    b.module_of.pop(h)
    w_h = b.add(f"{p}w_h", _affine(m.w_h), [h])
    e_h = b.add(f"{p}e_h", _affine(m.e_h), [h])
    w_out = b.add(f"{p}w_out", _affine(m.w_out), [h])
    out = pop("pop_out", m.pop_out, m.n_classes, [w_out])
    for src_, dst in ((am, mm), (e_m, u), (w_h, h), (e_h, u)):
        b.edges.append((src_, dst))
        b.recurrent.append((src_, dst))
    b.output_transform = "cumsum" if m.readout == "spike_count" else "cummean"
    return [out], (m.n_classes,)


def _fold_batchnorm(m: nn.Module, b: _Builder, prev: list[str], prefix: str) -> list[str]:
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
    b.nodes[name] = new
    return prev


def _trace_delay_snn(m: DelaySNN, b: _Builder, prev: list[str], shape, prefix: str):
    """:class:`spikeseq.models.delay_snn.DelaySNN` in eval mode: (DelayLinear -> BatchNorm folded -> LIF) x n,
    DelayLinear -> LI. The model appends ``pad_end`` silent steps to its input; the graph does not (feed the
    padded input to the interpreter, as :func:`spikeseq.graph.verify.export_and_verify` does)."""
    path = b.path
    for k, (syn, norm, lif) in enumerate(zip(m.synapses, m.norms, m.neurons)):
        b.path = f"{path}.synapses.{k}" if path else f"synapses.{k}"
        prev, shape = _synapse_of(syn, b, prev, f"{prefix}syn{k}_")
        if not isinstance(norm, nn.Identity):
            prev = _fold_batchnorm(norm, b, prev, f"{prefix}norm{k}_")
        b.path = f"{path}.neurons.{k}" if path else f"neurons.{k}"
        prev, shape = _trace(lif, b, prev, shape, f"{prefix}lif{k}_")
    prev, shape = _synapse_of(m.synapses[-1], b, prev, f"{prefix}syn{len(m.neurons)}_")
    b.path = f"{path}.readout" if path else "readout"
    prev, shape = _trace(m.readout, b, prev, shape, f"{prefix}readout_")
    b.path = path
    b.pad_end = int(m.config.pad_end)
    return prev, shape


def _synapse_of(syn: nn.Module, b: _Builder, prev: list[str], prefix: str):
    if hasattr(syn, "integer_weights_and_delays"):
        return _trace(syn, b, prev, (), prefix)
    w = _np(syn.weight, np.float32)
    node = ir.Affine(w, _np(syn.bias, np.float32)) if syn.bias is not None else ir.Linear(w)
    return [b.add(f"{prefix}{node.kind.lower()}", node, prev)], node.out_shape
