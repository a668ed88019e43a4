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

Speed: each step runs in C++ where the kernels build (:mod:`spikeseq.kernels.egru.fixed`: the gate arithmetic
above in one loop, the transcendentals as double vector polynomials rounded once, the recurrent products and their
weight gradient over the units that sent an event), else as the same torch operations (:meth:`_Cell.step`,
:func:`_adjoint_torch`); a test checks that both give the same payloads.

Gradients (written out, float32: :class:`_CellScanFn` for a cell, :class:`_ReadoutFn` for the readout; a test
compares them with autograd through the same step): the int8
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
from spikeseq.kernels.egru import fixed

__all__ = ["egru_graph_forward"]


def _sigmoid(a: torch.Tensor) -> torch.Tensor:
    """The logistic function in float64, rounded once to float32 (as the interpreter: float64 results that differ
    in their last bit round to the same float32 but for values within ``2**-29`` of a rounding boundary)."""
    return torch.sigmoid(a.double()).float()


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


def _mm32(x: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    """``x @ w_t`` rounded once to float32: float32 weights (every partial sum an exact integer, :func:`_exact32`)
    multiply directly, float64 ones in float64 (the products of float32 events and int8 weights are exact there),
    so the result does not depend on the summation order."""
    if w_t.dtype == torch.float32:
        return x @ w_t
    return (x.double() @ w_t).float()


def _exact32(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether every partial sum of ``x @ w.T`` is an integer below ``2**24`` (then float32 sums exactly)."""
    xd = x.detach()
    if not xd.numel():
        return True
    return bool(torch.equal(xd, torch.round(xd))) and (
        float(xd.abs().max()) * float(w.detach().abs().sum(1).max()) < 2**24)


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
        return _CellScanFn.apply(x.float(), self.w_ih, self.b_ih, self.w_hh, self.b_hh, self)

    def step(self, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, b_ih: torch.Tensor, w_hh_t: torch.Tensor,
             b_hh: torch.Tensor):
        """One step on the input product ``x = W_i x[t]`` ``[B, 3H]`` (rounded to float32), the previous payload
        ``y`` and state ``c`` (no autograd; the transposed recurrent weights in float32 where the sums are exact
        there, else float64, :func:`_mm32`): ``(payload, c, (r, z, n, gh_n, c~, e))``, the interpreter's operations
        in its order."""
        h = self.h
        gi = x * self.ki + b_ih
        gh = _mm32(y, w_hh_t) * self.kh + b_hh
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


def _native_steps() -> bool:
    """Whether the C++ step (:mod:`spikeseq.kernels.egru.fixed`) runs the cell (else the same operations in torch)."""
    return fixed.available()


def _adjoint_torch(g_out: torch.Tensor, scale: float, saved: tuple[torch.Tensor, ...], c_prev: torch.Tensor,
                   th: torch.Tensor, sgs: torch.Tensor, wk: torch.Tensor, g_gi: torch.Tensor, g_gh: torch.Tensor
                   ) -> None:
    """The adjoint recurrence of :class:`_CellScanFn` in torch ops (where the C++ step is not available): fills
    ``g_gi`` and ``g_gh`` ``[T, B, 3H]`` from ``g_out`` and ``saved = (r, z, n, gh_n, c~, e)`` ``[T, B, H]``."""
    r, z, n, gh_n, ct, e = saved
    h = r.shape[2]
    # the state-independent factors over the whole sequence, in place (few [T, B, H] buffers)
    omz = 1 - z
    d_an = n.square().neg_().add_(1).mul_(omz)    # d c~ / d a_n
    d_az = (c_prev - n).mul_(z).mul_(omz)         # d c~ / d a_z
    d_ar = (1 - r).mul_(r).mul_(gh_n)             # d a_n / d a_r
    g_rec = torch.zeros_like(r[0])                # d loss / d payload[t] through step t + 1
    g_c = torch.zeros_like(r[0])                  # d loss / d c[t] through step t + 1
    for t in range(r.shape[0] - 1, -1, -1):
        gy = (g_out[t] + g_rec).mul_(scale)
        de = (gy * ct[t]).sub_(g_c * th)
        gct = (gy * e[t]).add_(g_c).add_(de.mul_(sgs[t]))
        gi, gh = g_gi[t], g_gh[t]
        torch.mul(gct, d_az[t], out=gi[:, h:2 * h])
        torch.mul(gct, d_an[t], out=gi[:, 2 * h:])
        torch.mul(gi[:, 2 * h:], d_ar[t], out=gi[:, :h])
        gh[:, :2 * h] = gi[:, :2 * h]
        torch.mul(gi[:, 2 * h:], r[t], out=gh[:, 2 * h:])
        g_c = gct.mul_(z[t])
        g_rec = gh @ wk


class _CellScanFn(torch.autograd.Function):
    """A cell over a whole sequence with its backward written out (module docstring): the forward is
    :meth:`_Cell.step` per step; the backward runs the adjoint recurrence of ``gi = W_i x k_i + b_i``,
    ``gh = W_h y[t-1] k_h + b_h``, ``r, z = sigmoid``, ``n = tanh(a_n + r gh_n)``, ``c~ = z c + (1 - z) n``,
    ``e = H(c~ - theta)`` (the cell's pseudo-derivative), ``y = e c~`` (payload rounding straight through, times
    ``2**f``), ``c = c~ - e theta``, in float32."""

    @staticmethod
    def forward(ctx, x, w_ih, b_ih, w_hh, b_hh, cell: _Cell):  # type: ignore[override]
        steps, batch = x.shape[0], x.shape[1]
        h = cell.h
        wi, wh = w_ih.detach(), w_hh.detach()
        wi_t = (wi.float() if _exact32(x, wi) else wi).t()
        xw = _mm32(x.reshape(-1, x.shape[2]), wi_t).reshape(steps, batch, 3 * h)   # no state in it: all steps
        native = _native_steps()
        wh_t = (wh.float() if cell.int8_payloads else wh).t().contiguous()
        bi, bh = b_ih.detach(), b_hh.detach()
        seq = lambda dtype=torch.float32: torch.empty(steps, batch, h, dtype=dtype)  # noqa: E731
        payloads = seq()
        c_seq = torch.empty(steps + 1, batch, h, dtype=torch.float32)   # c_seq[t]: the state before step t
        c_seq[0] = 0.0
        keep = [seq(), seq(), seq(), seq(), seq(), seq(torch.bool)]   # r, z, n, gh_n, c~, e of every step
        y = torch.zeros(batch, h, dtype=torch.float32)
        if native:   # the same operations, one C++ loop over (B, H) per step
            xw = xw.contiguous()
            at = fixed.Steps(xw, c_seq, payloads, *keep).at
            consts = (cell.ki, bi.contiguous(), cell.kh, bh.contiguous(), cell.th)
            exact = wh_t.dtype == torch.float32     # int8 payloads: exact float32 sums, into one reused buffer
            ghm = torch.empty(batch, 3 * h, dtype=torch.float32)
            step_c = c_seq[0].numel() * c_seq.element_size()
            for t in range(steps):
                if exact:
                    fixed.event_products(y, wh_t, ghm)
                else:
                    ghm = _mm32(y, wh_t)
                p_xw, p_c, p_y, *p_keep = at(t)
                fixed.step_forward(batch, h, p_xw, ghm, consts, p_c, cell.frac, [p_y, p_c + step_c, *p_keep])
                y = payloads[t]
        else:
            for t in range(steps):
                y, c, vals = cell.step(xw[t], y, c_seq[t], bi, wh_t, bh)
                payloads[t] = y
                c_seq[t + 1] = c
                for dst, v in zip(keep, vals):
                    dst[t] = v
        ctx.cell, ctx.native = cell, native
        ctx.save_for_backward(x, wi, wh, payloads, *keep, c_seq)
        return payloads

    @staticmethod
    def backward(ctx, g_out):  # type: ignore[override]
        x, wi, wd, payloads, r, z, n, gh_n, ct, e, c_seq = ctx.saved_tensors
        cell = ctx.cell
        h = cell.h
        scale = 1.0 if cell.frac is None else float(2.0**cell.frac)
        wk = wd.float() * cell.kh[:, None]            # d gh / d y[t-1], the per-gate factors folded in
        th = cell.th
        sgs = cell.surrogate.grad_(ct - th)           # d e / d c~ (unit-free: the cell's own units)
        g_out = g_out.float().contiguous()
        steps, batch = ct.shape[0], ct.shape[1]
        g_gi = torch.empty(steps, batch, 3 * h, dtype=torch.float32)    # d loss / d gi
        g_gh = torch.empty(steps, batch, 3 * h, dtype=torch.float32)    # d loss / d gh (r on the n gate)
        g_rec = torch.zeros(batch, h, dtype=torch.float32)   # d loss / d payload[t] through step t + 1 (C++ path)
        g_c = torch.zeros(batch, h, dtype=torch.float32)     # d loss / d c[t] through step t + 1 (C++ path)
        if ctx.native:
            sgs = sgs.contiguous()
            at = fixed.Steps(g_out, r, z, n, gh_n, ct, e, c_seq, sgs, g_gi, g_gh).at
            for t in range(steps - 1, -1, -1):
                p_g, *p_saved, p_c, p_sg, p_gi, p_gh = at(t)
                fixed.step_backward(batch, h, p_g, g_rec, scale, p_saved, p_c, th, p_sg, g_c, p_gi, p_gh)
                torch.mm(g_gh[t], wk, out=g_rec)
            # the recurrent weights' gradient over the steps where a unit sent an event
            g_wh_t = fixed.event_outer(payloads[:-1].reshape(-1, h), g_gh[1:].reshape(-1, 3 * h))
        else:
            _adjoint_torch(g_out, scale, (r, z, n, gh_n, ct, e), c_seq[:-1], th, sgs, wk, g_gi, g_gh)
            g_wh_t = payloads[:-1].reshape(-1, h).t() @ g_gh[1:].reshape(-1, 3 * h)
        g_wh = g_wh_t.t() * cell.kh[:, None]
        g_gi2 = g_gi.reshape(-1, 3 * h)
        g_x = (g_gi2 @ (wi.float() * cell.ki[:, None])).reshape(x.shape) if ctx.needs_input_grad[0] else None
        g_wi = (x.reshape(-1, x.shape[2]).t() @ g_gi2).t() * cell.ki[:, None]   # [I, R] @ [R, 3H]: the fast shape
        return g_x, g_wi.double(), g_gi.sum((0, 1)), g_wh.double(), g_gh.sum((0, 1)), None


def egru_graph_forward(q: ir.Graph, factors: QuantFactors, bindings: dict, x: torch.Tensor, *,
                       surrogate: sg.Surrogate | None = None, record: bool = False
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run the quantised cell graph ``q`` on ``x [T, B, n_in]`` (module docstring): ``(output [T, B, n_out]`` in
    float64, aligned to the input steps as the interpreter aligns it, ``traces)`` (per cell its payloads in float
    units when ``record``). ``surrogate`` overrides every cell's own pseudo-derivative."""
    order, _ = q.schedule("nir")        # dependency order (latencies are the interpreter's alignment, not ours)
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
