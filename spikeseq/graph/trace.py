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
                           "module_of": dict(b.module_of)})
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
    if isinstance(m, Sequential):
        here = b.path
        for i, layer in enumerate(m.layers):
            b.path = f"{here}.layers.{i}" if here else f"layers.{i}"
            prev, shape = _trace(layer, b, prev, shape, f"{prefix}{i}_")
        b.path = here
        return prev, shape
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return prev, shape
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
