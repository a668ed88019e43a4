"""Target mode for graphs of :class:`~spikeseq.graph.ir.EGRUCell` populations (SpiNNaker2): a differentiable torch
forward of the quantised graph that computes, operation for operation, what the interpreter's
:func:`~spikeseq.graph.simulate.egru_cell_step` computes on the exported graph.

    out, traces = egru_graph_forward(q, factors, bindings, x)   # q, factors: quantize_with_factors(g, "spinnaker2")

Per cell and step (the fixed point of :func:`~spikeseq.graph.quantize.quantize_cells`): the float32 events times
the int8 weights summed in float64 and rounded once to float32, times the per-gate factor ``1 / s_g``, plus the
float32 biases; ``sigmoid`` / ``tanh`` in float64, rounded once to float32; ``c~ = z * c + (1 - z) * n``; an event
iff ``c~ > theta``; ``y = e * c~``; ``c = c~ - e * theta``; with ``payload_frac_bits = f`` the payload
``clip(round(y * 2**f), -127, 127)`` (int8), which is also the next step's recurrent input. The readout ``Affine``
reads the payloads in float64. Events therefore equal the interpreter's on every unit and step, and readouts agree
to float64 rounding.

Gradients (autograd through the step): the int8 weights pass ``s_g * d(loss)/d(W_int)`` to the bound float weights
(straight-through, :class:`~spikeseq.graph.quantize.QuantFactors` ``.cell``), the readout's weights
``d/d(W) / 2**f``; an event has the cell's own pseudo-derivative (its ``surrogate``, recorded by the lowering), the
reset ``c~ - e * theta`` carries it as the float cell does (:func:`spikeseq.functional.egru.egru_cell`), and the
payload rounding passes gradients straight through. Thresholds are constants (target mode trains weights and
biases only).
"""

from __future__ import annotations

import numpy as np
import torch

from spikeseq import surrogate as sg
from spikeseq.errors import ExportError, ShapeError
from spikeseq.graph import ir
from spikeseq.graph.quantize import QuantFactors
from spikeseq.graph.ste import straight_through

__all__ = ["egru_graph_forward"]


def _sigmoid(a: torch.Tensor) -> torch.Tensor:
    """``1 / (1 + exp(-a))`` in float64, rounded once to float32 (the interpreter's)."""
    return (1.0 / (1.0 + torch.exp(-a.double()))).float()


def _tanh(a: torch.Tensor) -> torch.Tensor:
    """``tanh(a)`` in float64, rounded once to float32 (the interpreter's)."""
    return torch.tanh(a.double()).float()


def _bound(exact: np.ndarray, bound: dict, key: str, factor: np.ndarray | float, dtype: torch.dtype,
           shape_of: str) -> torch.Tensor:
    """``exact`` as a torch tensor whose gradient goes, times ``factor``, into the bound tensor ``key`` (if any)."""
    t = torch.from_numpy(np.ascontiguousarray(exact)).to(dtype)
    src = bound.get(key)
    if src is None:
        return t
    if tuple(src.shape) != tuple(t.shape):
        raise ShapeError(f"target mode: binding {key!r} of {shape_of!r} has shape {tuple(src.shape)}, the node's "
                         f"array {tuple(t.shape)}")
    f = torch.as_tensor(np.asarray(factor, np.float64)).to(dtype)
    return straight_through(t, src.to(dtype) * f)


class _Cell:
    """One quantised EGRU population with its straight-through parameters."""

    def __init__(self, name: str, node: ir.EGRUCell, factors: QuantFactors, bound: dict,
                 surrogate: sg.Surrogate):
        if node.ih_scale is None or node.hh_scale is None:
            raise ExportError(f"target mode: cell {name!r} is not quantised (no per-gate scales)")
        h = node.hidden
        fac = factors.cell.get(name, {})
        self.name, self.h, self.frac = name, h, node.payload_frac_bits
        self.w_ih = _bound(node.weight_ih.astype(np.float64), bound, "weight_ih", fac.get("weight_ih", 1.0),
                           torch.float64, name)
        self.w_hh = _bound(node.weight_hh.astype(np.float64), bound, "weight_hh", fac.get("weight_hh", 1.0),
                           torch.float64, name)
        self.b_ih = _bound(node.bias_ih.astype(np.float32), bound, "bias_ih", 1.0, torch.float32, name)
        self.b_hh = _bound(node.bias_hh.astype(np.float32), bound, "bias_hh", 1.0, torch.float32, name)
        self.ki = torch.from_numpy(np.repeat(1.0 / node.ih_scale, h).astype(np.float32))
        self.kh = torch.from_numpy(np.repeat(1.0 / node.hh_scale, h).astype(np.float32))
        self.th = torch.from_numpy(node.threshold.astype(np.float32))
        self.surrogate = surrogate

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The payloads ``[T, B, H]`` (float32) of the cell on the events ``x [T, B, I]``, from rest."""
        steps, batch = x.shape[0], x.shape[1]
        h = self.h
        gi_all = (x.float().double() @ self.w_ih.t()).float() * self.ki + self.b_ih   # no state in it: all steps
        c = torch.zeros(batch, h, dtype=torch.float32)
        y = torch.zeros(batch, h, dtype=torch.float32)
        outs = []
        for t in range(steps):
            gi = gi_all[t]
            gh = (y.double() @ self.w_hh.t()).float() * self.kh + self.b_hh
            r = _sigmoid(gi[:, :h] + gh[:, :h])
            z = _sigmoid(gi[:, h:2 * h] + gh[:, h:2 * h])
            n = _tanh(gi[:, 2 * h:] + r * gh[:, 2 * h:])
            ct = z * c + (1 - z) * n
            e = sg.spike(ct - self.th, self.surrogate)      # ct - th > 0 exactly when ct > th (IEEE subtraction)
            y = e * ct
            c = ct - e * self.th
            if self.frac is not None:
                scaled = y * float(2.0**self.frac)
                y = straight_through(torch.round(scaled.detach()).clamp_(-127, 127), scaled)
            outs.append(y)
        return torch.stack(outs)

    def value(self, payload: torch.Tensor) -> torch.Tensor:
        """Payloads in float units (``y``)."""
        return payload if self.frac is None else payload / float(2.0**self.frac)


def egru_graph_forward(q: ir.Graph, factors: QuantFactors, bindings: dict, x: torch.Tensor, *,
                       surrogate: sg.Surrogate | None = None, record: bool = False
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run the quantised cell graph ``q`` on ``x [T, B, n_in]`` (module docstring): ``(output [T, B, n_out]`` in
    float64, aligned to the input steps as the interpreter aligns it, ``traces)`` (per cell its payloads in float
    units when ``record``). ``surrogate`` overrides every cell's own pseudo-derivative."""
    order = [k for k in q._toposort([e for e in q.edges if e not in q.recurrent_edges()])]
    sends: dict[str, torch.Tensor] = {q.inputs()[0]: x}
    cells: dict[str, _Cell] = {}
    outputs: dict[str, torch.Tensor] = {}
    for k in order:
        node = q.nodes[k]
        if isinstance(node, ir.Input | ir.Flatten):
            if isinstance(node, ir.Flatten):
                sends[k] = sends[q.predecessors(k)[0]]
            continue
        preds = q.predecessors(k)
        if isinstance(node, ir.EGRUCell):
            rec = bindings.get(k) or {}
            cells[k] = _Cell(k, node, factors, rec, surrogate or rec.get("surrogate") or sg.DEFAULT)
            src = preds[0]
            sends[k] = cells[k].run(sends[src].reshape(x.shape[0], x.shape[1], -1))
        elif isinstance(node, ir.Affine | ir.Linear):
            rec = bindings.get(k) or {}
            w = _bound(np.asarray(node.weight, np.float64), rec, "weight",
                       factors.weight.get(k, np.ones((node.weight.shape[0], 1))), torch.float64, k)
            y = sends[preds[0]].double() @ w.t()
            bias = getattr(node, "bias", None)
            if bias is not None and np.any(bias):
                y = y + _bound(np.asarray(bias, np.float64), rec, "bias", 1.0, torch.float64, k)
            sends[k] = y
        elif isinstance(node, ir.Output):
            outputs[k] = sends[preds[0]]
        else:
            raise ExportError(f"target mode: node {k!r} of kind {node.kind} next to EGRUCell populations")
    (out,) = outputs.values()
    traces = {k: c.value(sends[k]) for k, c in cells.items()} if record else {}
    return out.reshape(x.shape[0], x.shape[1], *q.nodes[q.outputs()[0]].out_shape), traces
