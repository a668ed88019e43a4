"""CPU backend ``"cpu"`` of ``egru_scan``: the activity-sparse fused C++ time loop (``egru.cpp``).

Forward: the input projection ``A = W x + b_i`` for all steps at once (event-driven when ``x`` is a sparse event
sequence, e.g. the previous layer's ``y``: :class:`EventLinear`), then one fused loop over time whose recurrent
product sums only the rows of ``R^T`` of units that sent an event (compressed rows when ``R`` is pruned below
:data:`CSR_DENSITY`). Backward: the hand-written sparse BPTT of ``egru.cpp`` (the gradient to ``y[t-1]`` only for
units that fired or lie inside the pseudo-derivative's support), then ``dW`` / ``dx`` from the gate gradients.
The same checks, zoneout and DropConnect as the reference (:func:`spikeseq.functional.egru.prepare_egru`).
The loop runs with subnormal floats flushed to zero (``kernels/parallel.h``): it differs from the reference only
where a value falls below 1.2e-38 (float32), e.g. a subnormal ``c~`` against a threshold of exactly 0 fires in the
reference and not here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from spikeseq.checks import check_floating
from spikeseq.errors import SpikeseqError
from spikeseq.functional.egru import (
    EGRUOutput,
    EGRUState,
    check_consistent,
    check_events_out,
    check_final_state,
    into_events_out,
    prepare_egru,
)
from spikeseq.kernels import _native, spmm
from spikeseq.kernels.egru._common import call_problem

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
#: Recurrent weights with fewer nonzeros than this fraction are held in compressed rows (CSR): below it, skipping
#: zero weights saves more than the indexed (unvectorised) scatter costs.
CSR_DENSITY = 0.35
#: Inputs with at most this fraction of nonzeros take the event-driven input projection (row gather over packed
#: column panels of ``W^T``) instead of a dense GEMM. Measured on the 2-core dev machine (AVX2, one thread; 512 ->
#: 1536 on 8192 rows): at 17% density the gather took 132 ms against MKL's 182 ms, i.e. MKL does about 4x more
#: useful work per second, so the gather pays below roughly 1/4 density.
INPUT_DENSITY_MAX = 0.25
#: The weight gradient of the event-driven projection (``dW^T[j] = sum_r x[r, j] dout[r]`` over the nonzero inputs,
#: ``egru_gather_outer``: per chunk of rows and column panel, each unit's events summed in registers) pays against
#: the dense ``dout^T x`` below this input density. Measured on a 2-core Sapphire Rapids (AVX-512, one thread;
#: [8192, 512] inputs, 1536 outputs; medians of 5 over two runs, a busy neighbour core): 13 / 18 / 24-26 / 36-41 /
#: 46-53 / 52-60 / 75 ms at density 0.02 / 0.05 / 0.10 / 0.17 / 0.25 / 0.30 / 0.40 against 59-73 ms for MKL's dense
#: product (the row-by-row axpy it replaced: 98.6 ms at 0.17 against 58.5 ms); they cross near 0.35.
OUTER_DENSITY_MAX = 0.3
#: With a pruned ``W`` (compressed rows), the per-input scatter of ``egru_gather_csr_mm`` (scalar, one add per
#: nonzero input and nonzero weight) pays against the blocked ``egru_csr_mm`` (one vector multiply-add per nonzero
#: weight and vector of rows, whatever the input) below about one nonzero input per vector lane: measured on a
#: 2-core Sapphire Rapids (AVX-512, 16 float lanes; [8192, 512] x [1536, 512] at 5 % weights) the two cross at
#: input density 0.065 (gather 6 / 15 / 26 / 36 ms at density 0.01 / 0.05 / 0.10 / 0.15, blocked 17.6 ms at all).
GATHER_NONZEROS_PER_LANE = 1.0
#: Inputs larger than this are not counted in full to choose a path: their density is estimated from this many
#: evenly spaced entries (counting all of a [8192, 512] input took 11 ms, a third of the product it chose).
DENSITY_SAMPLES = 1 << 16
#: The backward computes ``dL/dy[t-1] = gh R`` as one register-blocked dense product when more than this fraction of
#: (batch row, unit) pairs need it (fired, or inside the pseudo-derivative's support), else for the needed pairs
#: only (``pair_dots`` in ``egru.cpp``). Measured on a 2-core Sapphire Rapids (one thread, a busy neighbour core)
#: with layer 2 of the trained 2 x 512 language model (T 256, B 32), its pseudo-derivative widened to need more
#: pairs: the layer's backward took 98 / 116 / 141 / 141 / 158 / 195 ms by pairs against 142 / 141 / 144 / 144 /
#: 144 / 147 ms dense at 22 / 33 / 39 / 45 / 54 / 75 % of the pairs needed (they cross near 45 %; the per-unit dot
#: products that pair_dots replaced ran about 4x slower per multiply-add than the blocked product, hence 0.25).
BWD_DENSE_MIN = 0.4
#: Statistics of the last backward call on this thread (units whose recurrent gradient was skipped).
last_stats: dict[str, float] = {}


def available() -> tuple[bool, str]:
    """``(True, "")`` when the native library with the EGRU kernels is built, else ``(False, reason)``."""
    lib = _native.library()
    return (lib is not None), _native.unavailable_reason()


def _fn(name: str, dtype: torch.dtype):
    lib = _native.library()
    if lib is None:  # pragma: no cover - dispatch checks available() first
        raise RuntimeError(_native.unavailable_reason())
    return getattr(lib, f"{name}_{_SUFFIX[dtype]}")


def _p(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(batch: int) -> int:
    return max(1, min(torch.get_num_threads(), batch))


def density(x: torch.Tensor) -> float:
    """Fraction of nonzero entries (a weight matrix with contiguous rows is counted by the native library, ten
    times faster than ``torch.count_nonzero``)."""
    if x.dim() == 2 and x.dtype in _SUFFIX and x.device.type == "cpu" and x.stride(1) == 1 and x.numel() > 0:
        rowptr = torch.empty(x.shape[0] + 1, dtype=torch.int64)
        nnz = _fn("egru_csr_count", x.dtype)(x.shape[0], x.shape[1], _p(x.detach()), x.stride(0), _p(rowptr))
        return nnz / x.numel()
    return int(torch.count_nonzero(x)) / max(1, x.numel())


def input_density(x: torch.Tensor) -> float:
    """Fraction of nonzero entries of an input, from :data:`DENSITY_SAMPLES` evenly spaced entries when larger (it
    only chooses between two paths that compute the same product)."""
    n = x.numel()
    if n <= DENSITY_SAMPLES:
        return density(x)
    flat = x.reshape(-1)
    return density(flat[:: n // DENSITY_SAMPLES])


def gather_pays(x_density: float, dtype: torch.dtype) -> bool:
    """Whether the scattered gather beats the blocked product of a pruned ``W`` at this input density
    (:data:`GATHER_NONZEROS_PER_LANE`)."""
    lanes = 8 * spmm.vector_bytes() // torch.finfo(dtype).bits
    return x_density * lanes < GATHER_NONZEROS_PER_LANE


#: Entries left free after the last compressed row: ``egru_csr_fill_rows`` stores whole vectors of up to 16 entries.
_FILL_SLACK = 16


def _csr(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compressed rows ``(rowptr, col, val)`` of the nonzeros of ``w`` (int64 offsets, int32 columns); ``w`` may
    be a strided view (e.g. a transpose): it is read in place."""
    w = w.detach()
    if w.stride(1) == 1 and w.numel() > 0 and w.dtype in _SUFFIX:  # contiguous rows: count, then compress each row
        rowptr = torch.empty(w.shape[0] + 1, dtype=torch.int64)
        nnz = _fn("egru_csr_count", w.dtype)(w.shape[0], w.shape[1], _p(w), w.stride(0), _p(rowptr))
        col = torch.empty(nnz + _FILL_SLACK, dtype=torch.int32)
        val = w.new_empty(nnz + _FILL_SLACK)
        _fn("egru_csr_fill_rows", w.dtype)(w.shape[0], w.shape[1], _p(w), w.stride(0), _p(rowptr), _p(col), _p(val))
        return rowptr, col[:nnz], val[:nnz]
    rowptr = torch.zeros(w.shape[0] + 1, dtype=torch.int64)
    torch.cumsum(torch.count_nonzero(w, dim=1), 0, out=rowptr[1:])
    nnz = int(rowptr[-1])
    col = torch.empty(max(nnz, 1), dtype=torch.int32)
    val = w.new_empty(max(nnz, 1))
    _fn("egru_csr_fill", w.dtype)(w.shape[0], w.shape[1], _p(w), w.stride(0), w.stride(1), _p(rowptr), _p(col),
                                  _p(val))
    return rowptr, col[:nnz], val[:nnz]


def _csr_transpose(rowptr: torch.Tensor, col: torch.Tensor, val: torch.Tensor,
                   cols: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compressed rows of the transpose ``[cols, rows]`` of a compressed ``[rows, cols]`` matrix (the same arrays as
    :func:`_csr` of the dense transpose), by a counting sort of its nonzeros: no pass over the dense matrix."""
    t_rowptr = torch.empty(cols + 1, dtype=torch.int64)
    t_col = torch.empty(max(col.numel(), 1), dtype=torch.int32)
    t_val = val.new_empty(max(val.numel(), 1))
    _fn("egru_csr_transpose", val.dtype)(rowptr.numel() - 1, cols, _p(rowptr), _p(col), _p(val), _p(t_rowptr),
                                         _p(t_col), _p(t_val))
    return t_rowptr, t_col[:col.numel()], t_val[:val.numel()]


def _saved(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """Save what the backward of a linear autograd function needs; returns ``out``."""
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None
    return out


class _Recurrent:
    """``R^T`` as the C ABI takes it: dense ``[H, 3H]`` (plus ``R`` itself ``[3H, H]`` for the backward's dense
    product) or CSR ``(rowptr, col, val)``; when pruned, also ``R`` in compressed rows (one row per gate output) for
    the forward's batched product, which pays over the scatter of the active units' rows of ``R^T`` above a few
    percent activity (``egru.cpp``, ``scattered_pays``)."""

    def __init__(self, weight_hh: torch.Tensor, csr: bool) -> None:
        w = weight_hh.detach()
        self.rt: torch.Tensor | None = None if csr else w.t().contiguous()
        self.r: torch.Tensor | None = None if csr else w.contiguous()
        self.rowptr = self.col = self.val = None
        self.by_output: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        if csr:
            self.by_output = _csr(w)
            self.rowptr, self.col, self.val = _csr_transpose(*self.by_output, w.shape[1])

    def ptrs(self) -> list[int | None]:
        """``R^T`` (dense or compressed rows): the backward's arguments."""
        return [_p(self.rt), _p(self.rowptr), _p(self.col), _p(self.val)]

    def forward_ptrs(self) -> list[int | None]:
        """:meth:`ptrs` plus the compressed rows of ``R`` (null pointers when dense): the forward's arguments."""
        by_output = [None] * 3 if self.by_output is None else [_p(t) for t in self.by_output]
        return self.ptrs() + by_output


class EventLinear(torch.autograd.Function):
    """``x @ W^T + b`` for ``x [R, K]``: sums only the rows of ``W^T`` of nonzero inputs (``egru_gather_mm``);
    backward ``dW^T[j] = sum_r x[r, j] dout[r]`` over the nonzeros only, ``dx = dout W`` (dense GEMM)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):  # type: ignore[override]
        """Event-driven forward: bias plus the weight columns of the nonzero inputs."""
        x = x.contiguous()
        wt = weight.detach().t().contiguous()
        out = x.new_empty(x.shape[0], weight.shape[0])
        b = None if bias is None else bias.detach().contiguous()
        _fn("egru_gather_mm", x.dtype)(x.shape[0], x.shape[1], out.shape[1], _p(x), _p(wt), _p(b), _p(out), 1)
        return _saved(ctx, x, weight, bias, out)

    @staticmethod
    def backward(ctx, gout: torch.Tensor):  # type: ignore[override]
        """Gradients of input (dense), weight (nonzero inputs only, or dense above :data:`OUTER_DENSITY_MAX`) and
        bias."""
        x, weight = ctx.saved_tensors
        gout = gout.contiguous()
        gx = gout @ weight if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1] and input_density(x) > OUTER_DENSITY_MAX:
            gw = gout.t() @ x
        elif ctx.needs_input_grad[1]:
            gwt = x.new_empty(x.shape[1], gout.shape[1])
            _fn("egru_gather_outer", x.dtype)(x.shape[0], x.shape[1], gout.shape[1], _p(x), _p(gout), _p(gwt),
                                              _threads(x.shape[1]))
            gw = gwt.t()
        gb = gout.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


class CSRLinear(torch.autograd.Function):
    """``x @ W^T + b`` for a pruned ``W`` held in compressed rows: ``out[:, o] = sum_q W[o, col_q] x[:, col_q]``,
    vectorised over blocks of rows of ``x`` (``egru_csr_mm``); the backward is dense (``dx = dout W``,
    ``dW = dout^T x``: the gradient of every entry, pruned or not, as the reference gives it)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):  # type: ignore[override]
        """Compressed rows of ``W``, then ``egru_csr_mm`` (blocks of rows of ``x`` transposed in cache); for very
        sparse ``x`` (:func:`gather_pays`) compressed rows of ``W^T`` and ``egru_gather_csr_mm`` (only the nonzero
        weights of the nonzero inputs)."""
        w = weight.detach()
        xc = x.detach().contiguous()
        out = x.new_empty(x.shape[0], w.shape[0])
        b = None if bias is None else bias.detach().contiguous()
        if gather_pays(input_density(xc), xc.dtype):
            rowptr, col, val = _csr_transpose(*_csr(w), w.shape[1])
            _fn("egru_gather_csr_mm", x.dtype)(x.shape[0], x.shape[1], w.shape[0], _p(xc), _p(rowptr), _p(col),
                                               _p(val), _p(b), _p(out), _threads(x.shape[0] // 64))
        else:
            rowptr, col, val = _csr(w)
            _fn("egru_csr_mm", x.dtype)(x.shape[0], x.shape[1], w.shape[0], _p(xc), _p(rowptr), _p(col), _p(val),
                                        _p(b), _p(out), _threads(x.shape[0] // 64))
        return _saved(ctx, x, weight, bias, out)

    @staticmethod
    def backward(ctx, gout: torch.Tensor):  # type: ignore[override]
        """Dense gradients of input, weight and bias."""
        x, weight = ctx.saved_tensors
        gx = gout @ weight if ctx.needs_input_grad[0] else None
        gw = gout.t() @ x if ctx.needs_input_grad[1] else None
        gb = gout.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def input_projection(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     weight_density: float | None = None) -> torch.Tensor:
    """``W x + b`` over ``[T, B, I]``: compressed rows for a pruned ``W`` (density < :data:`CSR_DENSITY`),
    event-driven for sparse inputs (density <= :data:`INPUT_DENSITY_MAX`), else a dense GEMM. ``weight_density``:
    ``density(weight)`` when the caller has it."""
    t, b, i = x.shape
    if (density(weight) if weight_density is None else weight_density) < CSR_DENSITY:
        return CSRLinear.apply(x.reshape(t * b, i), weight, bias).reshape(t, b, weight.shape[0])
    if input_density(x) <= INPUT_DENSITY_MAX:
        return EventLinear.apply(x.reshape(t * b, i), weight, bias).reshape(t, b, weight.shape[0])
    return F.linear(x, weight, bias)


class _StepArgs(NamedTuple):
    """The recurrent side of a C call, as the C ABI takes it (detached, contiguous)."""

    rec: _Recurrent
    bh: torch.Tensor            #: b_hh [3H] (zeros without a bias)
    th: torch.Tensor            #: per-unit threshold [H]
    c0: torch.Tensor
    y0: torch.Tensor
    mask: torch.Tensor | None   #: zoneout mask [T, B, H]


def _step_args(weight_hh, bias_hh, theta, c0, y0, mask, dtype: torch.dtype) -> _StepArgs:
    """Recurrent weights (compressed rows below :data:`CSR_DENSITY`), biases, thresholds, initial state and mask."""
    h = weight_hh.shape[1]
    return _StepArgs(_Recurrent(weight_hh, density(weight_hh) < CSR_DENSITY),
                     (torch.zeros(3 * h, dtype=dtype) if bias_hh is None else bias_hh.detach()).contiguous(),
                     theta.detach().expand(h).contiguous(), c0.detach().contiguous(), y0.detach().contiguous(),
                     None if mask is None else mask.contiguous())


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, c0, y0, weight_hh, bias_hh, theta, mask, width, damp, keep):  # type: ignore[override]
        t, b, g = a.shape
        h = g // 3
        a = a.contiguous()
        rec, bh, th, c0, y0, m = _step_args(weight_hh, bias_hh, theta, c0, y0, mask, a.dtype)
        # outputs no loss reads (usually the events, the final state) reach the backward as None, not as zero
        # tensors that the kernel would read: [T, B, H] zeros cost a fill and a pass of memory per layer
        ctx.set_materialize_grads(False)
        y, e, cs = (a.new_empty(t, b, h) for _ in range(3))
        # gate values are kept only when a gradient will be asked for (inference writes them to scratch)
        r, z, n, hn, ct = (a.new_empty(t, b, h) if keep else None for _ in range(5))
        _fn("egru_fwd", a.dtype)(t, b, h, _p(a), *rec.forward_ptrs(), _p(bh), _p(th), _p(m), _p(c0), _p(y0), _p(y),
                                 _p(e), _p(r), _p(z), _p(n), _p(hn), _p(ct), _p(cs), _threads(b))
        ctx.save_for_backward(th, m, c0, y0, y, r, z, n, hn, ct, cs)
        ctx.rec, ctx.width, ctx.damp = rec, width, damp
        ctx.theta_shape, ctx.has_bias = theta.shape, bias_hh is not None
        return y, e, cs[-1].clone(), y[-1].clone()

    @staticmethod
    def backward(ctx, gy, ge, gcT, gyT):  # type: ignore[override]
        th, m, c0, y0, y, r, z, n, hn, ct, cs = ctx.saved_tensors
        t, b, h = y.shape
        nth = _threads(b)
        ga = y.new_empty(t, b, 3 * h)
        gc0, gy0 = torch.empty_like(c0), torch.empty_like(y0)
        grt = y.new_zeros(nth, h, 3 * h)
        gbh = y.new_zeros(nth, 3 * h)
        gth = y.new_zeros(nth, h)
        counts = torch.zeros(nth, dtype=torch.int64)

        # contiguous copies held in locals: a temporary's pointer would dangle during the C call
        gy, ge, gcT, gyT = (None if g is None else g.contiguous() for g in (gy, ge, gcT, gyT))
        _fn("egru_bwd", y.dtype)(t, b, h, _p(ctx.rec.r), *ctx.rec.ptrs(), _p(th), _p(m), _p(c0), _p(y0), _p(y),
                                 _p(r), _p(z), _p(n), _p(hn), _p(ct), _p(cs), _p(gy), _p(ge), _p(gcT), _p(gyT),
                                 float(ctx.width), float(ctx.damp), float(BWD_DENSE_MIN), _p(ga), _p(gc0), _p(gy0),
                                 _p(grt), _p(gbh), _p(gth), _p(counts), nth)
        last_stats["backward_skipped_fraction"] = float(counts.sum()) / max(1, (t - 1) * b * h)
        # one thread: its accumulators are the sums (summing over one slab would only copy dR, 12 H^2 bytes)
        gw, gb, g_theta = (grt[0], gbh[0], gth[0]) if nth == 1 else (grt.sum(0), gbh.sum(0), gth.sum(0))
        gw, gb = gw.t(), gb if ctx.has_bias else None
        g_theta = g_theta.sum() if len(ctx.theta_shape) == 0 else g_theta
        return ga, gc0, gy0, gw, gb, g_theta, None, None, None, None


def fused_input(x: torch.Tensor, weight_ih: torch.Tensor, weight_density: float | None = None) -> bool:
    """Whether an inference call computes each step's input projection inside the time loop: a pruned ``W_ih``
    (compressed rows) whose input is not sparse enough for the scattered gather (:func:`gather_pays`), in x's own
    dtype (not under autocast, whose projection runs in low precision). ``weight_density``: ``density(weight_ih)``
    when the caller has it."""
    wd = density(weight_ih) if weight_density is None else weight_density
    return (wd < CSR_DENSITY and not gather_pays(input_density(x), x.dtype)
            and not torch.is_autocast_enabled("cpu") and weight_ih.dtype == x.dtype)


def _inference(x: torch.Tensor, p, events_out: torch.Tensor | None = None) -> tuple[EGRUOutput, EGRUState]:
    """The fused inference forward (``egru_fwd_infer``): per step, the pruned input projection of x[t] for the
    thread's rows, then the recurrent product and the gates; only y and e are kept over time (the state in two
    alternating slots), so no [T, B, 3H] projection and no [T, B, H] state sequence is allocated."""
    t, b, i = x.shape
    h = p.weight_hh.shape[1]
    xc = x.detach().contiguous()
    in_rowptr, in_col, in_val = _csr(p.weight_ih)
    b_ih = None if p.bias_ih is None else p.bias_ih.detach().contiguous()
    rec, bh, th, c0, y0, m = _step_args(p.weight_hh, p.bias_hh, p.threshold, p.state.c, p.state.y, p.mask, x.dtype)
    y = x.new_empty(t, b, h)
    if events_out is not None:
        check_events_out(events_out, (t, b, h), x.dtype, x.device)
    e = x.new_empty(t, b, h) if events_out is None else events_out   # the kernel writes the events in place
    cs = x.new_empty(2, b, h)
    _fn("egru_fwd_infer", x.dtype)(t, b, h, i, _p(xc), _p(in_rowptr), _p(in_col), _p(in_val), _p(b_ih),
                                   *rec.forward_ptrs(), _p(bh), _p(th), _p(m), _p(c0), _p(y0), _p(y), _p(e), _p(cs),
                                   _threads(b))
    c = cs[(t - 1) % 2].clone()
    check_final_state(c)
    return EGRUOutput(y, e), EGRUState(c, y[-1].clone())


def egru_scan(x: torch.Tensor, state: EGRUState | None = None, **params) -> tuple[EGRUOutput, EGRUState]:
    """:func:`spikeseq.functional.egru_scan` on the fused C++ loop (same arguments, same results)."""
    events_out = params.pop("events_out", None)
    p = prepare_egru(x, state, **params)
    # a gradient will be asked for: the gate values are kept for the backward (else the fused inference path)
    keep = torch.is_grad_enabled() and any(
        isinstance(v, torch.Tensor) and v.requires_grad
        for v in (x, p.weight_ih, p.bias_ih, p.state.c, p.state.y, p.weight_hh, p.bias_hh, p.threshold))
    wd = density(p.weight_ih)
    if not keep and fused_input(x, p.weight_ih, wd):
        return _inference(x, p, events_out)
    # under torch.autocast the projection is a low-precision matmul; the fused recurrence runs in x's dtype
    a = input_projection(x, p.weight_ih, p.bias_ih, wd).to(x.dtype)
    st = p.state
    y, e, c, y_last = _Scan.apply(a, st.c, st.y, p.weight_hh, p.bias_hh, p.threshold, p.mask, p.surrogate.width,
                                  p.surrogate.dampening, keep)
    check_final_state(c)
    return EGRUOutput(y, into_events_out(e, events_out)), EGRUState(c, y_last)


def _refused_by_reference(x, state, weight_ih, weight_hh, bias_ih, bias_hh, threshold) -> bool:
    """Whether the reference refuses the dtypes or devices of this call (a state of another dtype or device, a bias
    of another dtype, ...): this backend then takes the call, and :func:`prepare_egru` raises the reference's own
    error, instead of a BackendUnavailableError (``backend="cpu"``) or a fallback warning (``"auto"``) first."""
    if not isinstance(x, torch.Tensor) or not isinstance(weight_ih, torch.Tensor):
        return False
    try:
        for s, name in zip(state or (), ("state.c", "state.y"), strict=False):
            check_floating(s, name)
        check_consistent(x, weight_ih, weight_hh, bias_ih, bias_hh, threshold, state)
    except SpikeseqError:
        return True
    return False


def supports(x, state=None, *, weight_ih=None, weight_hh=None, bias_ih=None, bias_hh=None, threshold=None,
             **_: object) -> str | None:
    """Why this backend cannot run a valid call (device, dtype), or ``None``. A malformed ``state`` (not a
    ``(c, y)`` pair, e.g. a bare tensor) is left to :func:`~spikeseq.functional.egru.prepare_egru`, which refuses it
    with the reference's :class:`~spikeseq.errors.ShapeError` (unpacking a tensor here raised a raw RuntimeError)."""
    if state is not None and not (isinstance(state, tuple) and len(state) == 2):
        return None
    if _refused_by_reference(x, state, weight_ih, weight_hh, bias_ih, bias_hh, threshold):
        return None
    return call_problem(x, state, (weight_ih, weight_hh, bias_ih, bias_hh, threshold), ("cpu",), "the C++ loop")
