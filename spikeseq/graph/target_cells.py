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

Gradients (written out, float32: :class:`_CellScanFn` for the recurrence, :class:`_InputFn` and :class:`_ReadoutFn`
for the products over the whole sequence; a test compares them with autograd through the same step): the int8
weights pass ``s_g * d(loss)/d(W_int)`` to the bound float weights (straight-through,
:class:`~spikeseq.graph.quantize.QuantFactors` ``.cell``), the readout's weights ``d/d(W) / 2**f``; an event has the
cell's own pseudo-derivative (its ``surrogate``, recorded by the lowering), the reset ``c~ - e * theta`` carries it
as the float cell does (:func:`spikeseq.functional.egru.egru_cell`), and the payload rounding passes gradients
straight through. Thresholds are constants (target mode trains weights and biases only).
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


def _exact_mm(x: torch.Tensor, w: torch.Tensor, exact32: bool | None = None) -> torch.Tensor:
    """``x @ w.T`` rounded once to float32 (``x`` float32 events, ``w`` float64 integer weights): in float32 when
    every partial sum is an integer below ``2**24`` (``exact32``; ``None``: checked here from ``x``), else in
    float64 (products of a float32 and an int8 value are exact there) and rounded."""
    if exact32 is None:
        xd = x.detach()
        exact32 = bool(torch.equal(xd, torch.round(xd))) and (
            float(xd.abs().max()) * float(w.detach().abs().sum(1).max()) < 2**24 if xd.numel() else True)
    if exact32:
        return x @ w.float().t()
    return (x.double() @ w.t()).float()


class _Cell:
    """One quantised EGRU population with its straight-through parameters."""

    def __init__(self, name: str, node: ir.EGRUCell, factors: QuantFactors, bound: dict,
                 surrogate: sg.Surrogate):
        if node.ih_scale is None or node.hh_scale is None:
            raise ExportError(f"target mode: cell {name!r} is not quantised (no per-gate scales)")
        h = node.hidden
        fac = factors.cell.get(name, {})
        self.name, self.h, self.frac = name, h, node.payload_frac_bits
        # int8 payloads times int8 weights: every partial sum an integer below 2**24, exact in float32
        self.int8_payloads = self.frac is not None and h * 127 * 127 < 2**24
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
        gi_all = _InputFn.apply(x.float(), self.w_ih, self.b_ih, self.ki)   # no state in it: all steps at once
        return _CellScanFn.apply(gi_all, self.w_hh, self.b_hh, self)

    def step(self, gi: torch.Tensor, y: torch.Tensor, c: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor):
        """One step on the input pre-activation ``gi [B, 3H]``, the previous payload ``y`` and state ``c`` (no
        autograd): ``(payload, c, (r, z, n, gh_n, c~, e))``, the interpreter's operations in its order."""
        h = self.h
        gh = _exact_mm(y, w_hh, self.int8_payloads) * self.kh + b_hh
        rz = _sigmoid(gi[:, :2 * h] + gh[:, :2 * h])    # r and z: elementwise, one call
        r, z = rz[:, :h], rz[:, h:]
        gh_n = gh[:, 2 * h:]
        n = _tanh(gi[:, 2 * h:] + r * gh_n)
        ct = z * c + (1 - z) * n
        e = ct > self.th
        y = torch.where(e, ct, torch.zeros((), dtype=ct.dtype))
        c_new = ct - e * self.th
        if self.frac is not None:
            y = torch.round(y * float(2.0**self.frac)).clamp_(-127, 127)
        return y, c_new, (r, z, n, gh_n, ct, e)

    def value(self, payload: torch.Tensor) -> torch.Tensor:
        """Payloads in float units (``y``)."""
        return payload if self.frac is None else payload / float(2.0**self.frac)


class _InputFn(torch.autograd.Function):
    """``gi = (x W^T) k_i + b_i`` over all steps: the product exact (:func:`_exact_mm`) forward, float32 backward."""

    @staticmethod
    def forward(ctx, x, w, b, k):  # type: ignore[override]
        ctx.save_for_backward(x, w, k)
        return _exact_mm(x, w.detach()) * k + b.detach()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w, k = ctx.saved_tensors
        gk = g * k
        n_out, n_in = w.shape
        g_x = gk @ w.float() if ctx.needs_input_grad[0] else None
        g_w = (x.reshape(-1, n_in).t() @ gk.reshape(-1, n_out)).t().double() if ctx.needs_input_grad[1] else None
        g_b = g.sum((0, 1)) if ctx.needs_input_grad[2] else None
        return g_x, g_w, g_b, None


class _ReadoutFn(torch.autograd.Function):
    """``y W^T + b`` of the payloads in float64 (as the interpreter sums them), float32 backward."""

    @staticmethod
    def forward(ctx, y, w, b):  # type: ignore[override]
        ctx.save_for_backward(y, w)
        return y.double() @ w.detach().t() + b.detach()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        y, w = ctx.saved_tensors
        g32 = g.float()
        n_out, n_in = w.shape
        g_y = (g32 @ w.float()).to(y.dtype) if ctx.needs_input_grad[0] else None
        g_w = (g32.reshape(-1, n_out).t() @ y.reshape(-1, n_in).float()).double() if ctx.needs_input_grad[1] else None
        g_b = g.sum(tuple(range(g.dim() - 1))) if ctx.needs_input_grad[2] else None
        return g_y, g_w, g_b


class _CellScanFn(torch.autograd.Function):
    """A cell over a whole sequence with its backward written out (module docstring): the forward is
    :meth:`_Cell.step` per step; the backward runs the adjoint recurrence of
    ``gh = W y[t-1] k_h + b_h``, ``r, z = sigmoid``, ``n = tanh(a_n + r gh_n)``, ``c~ = z c + (1 - z) n``,
    ``e = H(c~ - theta)`` (the cell's pseudo-derivative), ``y = e c~`` (payload rounding straight through, times
    ``2**f``), ``c = c~ - e theta``."""

    @staticmethod
    def forward(ctx, gi_all, w_hh, b_hh, cell: _Cell):  # type: ignore[override]
        steps, batch = gi_all.shape[0], gi_all.shape[1]
        h = cell.h
        wd, bd = w_hh.detach(), b_hh.detach()
        y = torch.zeros(batch, h, dtype=torch.float32)
        c = torch.zeros(batch, h, dtype=torch.float32)
        outs, saved = [], []
        for t in range(steps):
            c_prev = c
            y, c, (r, z, n, gh_n, ct, e) = cell.step(gi_all[t], y, c, wd, bd)
            outs.append(y)
            saved.append((r, z, n, gh_n, ct, e, c_prev))
        payloads = torch.stack(outs)
        ctx.cell = cell
        ctx.save_for_backward(wd, payloads, *(torch.stack(v) for v in zip(*saved)))
        return payloads

    @staticmethod
    def backward(ctx, g_out):  # type: ignore[override]
        wd, payloads, r, z, n, gh_n, ct, e, c_prev = ctx.saved_tensors
        cell = ctx.cell
        h = cell.h
        scale = 1.0 if cell.frac is None else float(2.0**cell.frac)
        w32 = wd.float()
        kh, th = cell.kh, cell.th
        ef = e.float()
        sgs = cell.surrogate.grad_((ct - th).double()).float()   # d e / d c~ (unit-free: the cell's own units)
        # the state-independent factors of the adjoint, over the whole sequence at once
        d_an = (1 - z) * (1 - n * n)                  # d c~ / d a_n
        d_az = (c_prev - n) * z * (1 - z)             # d c~ / d a_z
        d_ar = gh_n * r * (1 - r)                     # d a_n / d a_r
        k_gh = torch.cat([kh[:h].expand_as(r), kh[h:2 * h].expand_as(r), kh[2 * h:] * r], dim=2)  # d gh / d(W y)
        g_gi = torch.empty(ct.shape[0], ct.shape[1], 3 * h, dtype=torch.float32)
        g_rec = torch.zeros_like(ct[0])     # d loss / d payload[t] through step t + 1
        g_c = torch.zeros_like(ct[0])       # d loss / d c[t] through step t + 1
        for t in range(ct.shape[0] - 1, -1, -1):
            gy = (g_out[t] + g_rec).mul_(scale)
            de = (gy * ct[t]).sub_(g_c * th)
            gct = (gy * ef[t]).add_(g_c).add_(de.mul_(sgs[t]))
            gt = g_gi[t]
            torch.mul(gct, d_az[t], out=gt[:, h:2 * h])
            torch.mul(gct, d_an[t], out=gt[:, 2 * h:])
            torch.mul(gt[:, 2 * h:], d_ar[t], out=gt[:, :h])
            g_c = gct.mul_(z[t])
            g_rec = (gt * k_gh[t]) @ w32
        g_gh_all = g_gi.clone()              # d loss / d gh: the input pre-activations' with r on the n gate
        g_gh_all[:, :, 2 * h:] *= r
        g_b = g_gh_all.sum((0, 1))
        prev = torch.cat([torch.zeros_like(payloads[:1]), payloads[:-1]])   # what each step's W multiplied
        g_w = ((g_gh_all * kh).reshape(-1, 3 * h).t() @ prev.reshape(-1, h)).double()
        return g_gi, g_w, g_b, None


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
            bias = getattr(node, "bias", None)
            b = _bound(np.asarray(bias if bias is not None else np.zeros(w.shape[0]), np.float64), rec, "bias", 1.0,
                       torch.float64, k)
            sends[k] = _ReadoutFn.apply(sends[preds[0]], w, b)
        elif isinstance(node, ir.Output):
            outputs[k] = sends[preds[0]]
        else:
            raise ExportError(f"target mode: node {k!r} of kind {node.kind} next to EGRUCell populations")
    (out,) = outputs.values()
    traces = {k: c.value(sends[k]) for k, c in cells.items()} if record else {}
    return out.reshape(x.shape[0], x.shape[1], *q.nodes[q.outputs()[0]].out_shape), traces
