"""Counters for plain ``torch.nn`` modules: Linear, Conv, RNN cells and layers, activations, norms, free modules.

Accounting (Lemaire et al., ICONIP 2022, arXiv 2210.13107, as implemented in LEAT-EDGE/qualia-plugin-snn; see
specs/energy.md section 3.3), for a weight matrix ``W [out, in]`` and an input step ``x [rows, in]``:

* ``dense_macs = rows * in * out`` (NeuroBench "Dense": every input and weight, zero or not);
* effective ops ``= sum_rows sum_in [x != 0] * fan_out_nonzero(in)`` (zero inputs and pruned weights skipped);
  an op is an AC when its input element is +-1 (a spike) and a MAC otherwise (``ac_rule="element"``), or, with
  ``ac_rule="call"`` (NeuroBench), all ops of a layer-step are ACs iff every input element is in {-1, 0, 1};
* event-driven memory: one weight read, one accumulator (state) read and one write and one address add per
  effective op, one input read per non-zero input; ``bias_adds`` = one per output element per step for every
  non-zero bias entry, each with a bias (weight) read.
"""

from __future__ import annotations

import torch
from torch import nn

from spikeseq.profile.context import CallContext
from spikeseq.profile.registry import register_counter
from spikeseq.profile.steps import F64, full_steps


def _zeros(t: int) -> torch.Tensor:
    return torch.zeros(t, dtype=F64)


def add_counts(acc: dict, other: dict) -> dict:
    """Add the per-step counts of ``other`` into ``acc`` (key by key); returns ``acc``."""
    for k, v in other.items():
        acc[k] = acc[k] + v if k in acc else v
    return acc


def spike_flags(xs: torch.Tensor) -> torch.Tensor:
    """Per step: 1.0 iff every element is in {-1, 0, 1} (NeuroBench's spiking test), ``[T]``."""
    t = xs.shape[0]
    bad = ((xs != 0) & (xs != 1) & (xs != -1)).reshape(t, -1).any(1)
    return (~bad).to(F64).cpu()


def rowsum_steps(x2: torch.Tensor, t: int, vec: torch.Tensor | None = None) -> torch.Tensor:
    """Per step sums of ``x2 [rows_total, n] @ vec`` (``vec`` = ones when omitted), as float64 ``[t]``.

    A matrix-vector product (one BLAS pass) is much cheaper than an elementwise reduction here.
    """
    if vec is None:
        vec = torch.ones(x2.shape[-1], dtype=x2.dtype, device=x2.device)
    return (x2 @ vec).reshape(t, -1).sum(1, dtype=F64).cpu()


_CHUNK = 1 << 18


def is_binary(x2: torch.Tensor) -> bool:
    """True iff every element is exactly 0 or 1. Per cache-sized chunk: the range is within [0, 1] and
    ``ceil(x) - x`` (non-negative there) sums to exactly 0 (a sum of non-negative terms is 0 iff all are)."""
    flat = x2.reshape(-1)
    n = flat.numel()
    buf = scratch(flat[: min(n, _CHUNK)], "ceil")
    for i in range(0, n, _CHUNK):
        xc = flat[i:i + _CHUNK]
        lo, hi = torch.aminmax(xc)
        if not (bool(lo >= 0) and bool(hi <= 1)):
            return False
        d = buf[: xc.numel()]
        torch.ceil(xc, out=d)
        if bool(d.sub_(xc).sum() > 0):
            return False
    return True


def nonzero_mask(x2: torch.Tensor, dt: torch.dtype) -> tuple[torch.Tensor, bool]:
    """``([x != 0] as dt, x is binary)``; a binary ``x`` is its own mask (no copy)."""
    if x2.numel() == 0 or is_binary(x2):
        return x2.to(dt), True
    return mask_float(x2, dt), False


_SCRATCH: dict[str, torch.Tensor] = {}


def scratch(like: torch.Tensor, slot: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A reused work buffer shaped like ``like`` (large fresh allocations cost page faults on every call).

    The buffer of a ``slot`` is overwritten by the next request for that slot: use the result at once.
    """
    n, dt = like.numel(), dtype or like.dtype
    buf = _SCRATCH.get(slot)
    if buf is None or buf.numel() < n or buf.dtype != dt or buf.device != like.device:
        buf = _SCRATCH[slot] = torch.empty(max(n, 1), dtype=dt, device=like.device)
    return buf[:n].view(like.shape)


def mask_float(x2: torch.Tensor, dt: torch.dtype, slot: str = "mask") -> torch.Tensor:
    """``[x != 0]`` as ``dt`` in a scratch buffer (see :func:`scratch`)."""
    f = scratch(x2, slot, dt)
    torch.ne(x2, 0, out=f)
    return f


def exact_dtype(x2: torch.Tensor, n_in: int, n_out: int) -> torch.dtype:
    """float32 sums of integers are exact below 2**24; use float64 for larger rows."""
    return x2.dtype if (x2.dtype == torch.float64 or n_in * max(n_out, 1) < 2**24) else torch.float64


def matmul_counts(xs: torch.Tensor, weight: torch.Tensor, ctx: CallContext, *, nb: bool | None = None) -> dict:
    """Counts of ``y = W x`` for ``xs [T, ..., in]`` and ``weight [out, in]`` (no bias; see module docstring)."""
    t, n_in, n_out = xs.shape[0], weight.shape[1], weight.shape[0]
    x2 = xs.reshape(-1, n_in)
    if not x2.is_floating_point():
        x2 = x2.float()
    dt = exact_dtype(x2, n_in, n_out)
    rows = x2.shape[0] // t
    fan = (weight != 0).sum(0).to(dt)                          # non-zero fan-out of each input
    ones = torch.ones(n_in, dtype=dt, device=x2.device)
    if ctx.is_binary(xs):                                      # spikes of a spiking neuron: x == [x != 0]
        nzf, binary = x2.to(dt), True
    else:
        nzf, binary = nonzero_mask(x2, dt)
    both = (nzf @ torch.stack((fan, ones), 1)).reshape(t, -1, 2).sum(1, dtype=F64).cpu()   # one pass over x
    eff, nz_count = both[:, 0].contiguous(), both[:, 1].contiguous()
    flags = None
    if ctx.ac_rule == "call":
        flags = full_steps(t, 1.0) if binary else spike_flags(x2.reshape(t, -1))
        acs = eff * flags
    elif binary:
        acs = eff
    else:
        unit = scratch(x2, "unit", dt)
        torch.eq(x2.abs(), 1, out=unit)
        acs = rowsum_steps(unit, t, fan)
    dense = full_steps(t, rows * n_in * n_out)
    out = {
        "dense_macs": dense, "eff_macs": eff - acs, "eff_acs": acs, "addr_adds": eff, "mem_weight_reads": eff,
        "mem_state_reads": eff, "mem_state_writes": eff, "mem_input_reads": nz_count,
    }
    if ctx.neurobench if nb is None else nb:
        if flags is None:
            flags = full_steps(t, 1.0) if binary else spike_flags(x2.reshape(t, -1))
        out.update(nb_eff_acs=eff * flags, nb_eff_macs=eff * (1 - flags), nb_dense=dense)
    return out


def bias_counts(bias: torch.Tensor | None, positions: torch.Tensor | float, t: int) -> dict:
    """``positions``: output positions per step (rows for Linear, rows * spatial for Conv), per bias entry."""
    if bias is None:
        return {}
    nb = float((bias != 0).sum())
    adds = (positions if isinstance(positions, torch.Tensor) else full_steps(t, positions)) * nb
    return {"bias_adds": adds, "mem_weight_reads": adds}


@register_counter(nn.Linear, kind="connection", nb_connection=True)
def count_linear(m: nn.Linear, args, kwargs, out, ctx: CallContext) -> dict:
    """Counts of one ``nn.Linear`` call per time step: dense and effective MACs/ACs, bias adds, memory accesses."""
    xs = ctx.steps(args[0], features=1)
    c = matmul_counts(xs, m.weight, ctx)
    rows = xs[0].numel() // m.in_features
    return add_counts(c, bias_counts(m.bias, rows, xs.shape[0]))


def _conv_counts(m: nn.modules.conv._ConvNd, args, kwargs, out, ctx: CallContext) -> dict:
    x = args[0]
    spatial = len(m.kernel_size)
    if x.dim() == spatial + 1:                                 # unbatched input
        x = x.unsqueeze(0)
    xs = ctx.steps(x, features=spatial + 1)
    t = xs.shape[0]
    flat = xs.reshape(-1, *xs.shape[-(spatial + 1):])
    wb = (m.weight != 0).to(flat.dtype)
    nz = (flat != 0).to(flat.dtype)
    with torch.no_grad():
        eff = m._conv_forward(nz, wb, None).reshape(t, -1).sum(1, dtype=F64).cpu()
        nonunit = ((flat != 0) & (flat != 1) & (flat != -1))
        if ctx.ac_rule == "call":
            acs = eff * spike_flags(xs)
        elif bool(nonunit.any()):
            macs = m._conv_forward(nonunit.to(flat.dtype), wb, None).reshape(t, -1).sum(1, dtype=F64).cpu()
            acs = eff - macs
        else:
            acs = eff
        ones = torch.ones_like(flat[:1])
        dense_one = float(m._conv_forward(ones, torch.ones_like(m.weight), None).sum())
        positions = m._conv_forward(ones, m.weight[:1], None).numel()       # output positions per sample
    rows = flat.shape[0] // t
    dense = full_steps(t, dense_one * rows)
    res = {
        "dense_macs": dense, "eff_macs": eff - acs, "eff_acs": acs, "addr_adds": eff, "mem_weight_reads": eff,
        "mem_state_reads": eff, "mem_state_writes": eff,
        "mem_input_reads": (flat != 0).reshape(t, -1).sum(1, dtype=F64).cpu(),
    }
    if ctx.neurobench:
        flags = spike_flags(xs)
        res.update(nb_eff_acs=eff * flags, nb_eff_macs=eff * (1 - flags), nb_dense=dense)
    return add_counts(res, bias_counts(m.bias, rows * positions, t))


for _cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
    register_counter(_cls, _conv_counts, kind="connection", nb_connection=True)


# ---------------------------------------------------------------------------------------------- recurrent cells
def _cell_gates(m: nn.RNNCellBase) -> int:
    return m.weight_ih.shape[0] // m.hidden_size


def _cell_elementwise(m, rows: int, t: int) -> dict:
    """Gate arithmetic of one step of an RNN/LSTM/GRU cell, ``rows`` samples (PyTorch equations)."""
    h = m.hidden_size * rows
    if isinstance(m, (nn.LSTMCell, nn.LSTM)):
        # c = f*c + i*g ; h = o*tanh(c): 3 mults, 1 add; sigmoid x3 + tanh x2; ih + hh sums: 4 adds
        mults, adds, nonlin, state = 3 * h, h + 4 * h, 5 * h, 2 * h
    elif isinstance(m, (nn.GRUCell, nn.GRU)):
        # n = tanh(W_in x + r*(W_hn h + b_hn)); h = (1-z)*n + z*h: 3 mults; r,z sums 2, n sum 1, 1-z, final add
        mults, adds, nonlin, state = 3 * h, 5 * h, 3 * h, h
    else:
        mults, adds, nonlin, state = 0, h, h, h
    return {"state_mults": full_steps(t, mults), "state_adds": full_steps(t, adds),
            "nonlin_ops": full_steps(t, nonlin), "neuron_updates": full_steps(t, h),
            "mem_state_reads": full_steps(t, state), "mem_state_writes": full_steps(t, state)}


def out_counts(y: torch.Tensor, t: int) -> dict:
    """Non-zero and total output elements per step of ``y`` (``t`` steps first)."""
    y = y.reshape(t, -1)
    return {"out_nonzero": (y != 0).sum(1, dtype=F64).cpu(), "out_elements": full_steps(t, y.shape[1])}


@register_counter(nn.RNNCellBase, kind="connection", nb_connection=True)
def count_rnn_cell(m: nn.RNNCellBase, args, kwargs, out, ctx: CallContext) -> dict:
    """Counts of one ``nn.RNNCell``/``LSTMCell``/``GRUCell`` step: both products, gate element-wise ops, outputs."""
    x = args[0]
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    if x.dim() == 1:
        x = x.unsqueeze(0)
    rows = x.shape[0]
    h = hx[0] if isinstance(hx, tuple) else hx
    res = matmul_counts(x.unsqueeze(0), m.weight_ih, ctx, nb=False)
    gates_h = m.weight_hh.shape[0]
    if h is not None:
        add_counts(res, matmul_counts(h.reshape(1, rows, -1), m.weight_hh, ctx, nb=False))
    else:  # zero initial state: computed densely, nothing effective
        res["dense_macs"] = res["dense_macs"] + rows * gates_h * m.hidden_size
    if m.bias:
        add_counts(res, bias_counts(m.bias_ih, rows, 1))
        add_counts(res, bias_counts(m.bias_hh, rows, 1))
    add_counts(res, _cell_elementwise(m, rows, 1))
    y = out[0] if isinstance(out, tuple) else out
    add_counts(res, out_counts(y, 1))
    res["mem_output_writes"] = full_steps(1, y.numel())
    if ctx.neurobench:
        from spikeseq.profile.neurobench import nb_cell_counts

        res.update(nb_cell_counts(m, x, hx, ctx.notes))
    return res


@register_counter(nn.RNNBase, kind="connection")
def count_rnn_layer(m: nn.RNNBase, args, kwargs, out, ctx: CallContext) -> dict:
    """``nn.RNN/GRU/LSTM``: the first layer, forward direction, is counted from the input and output sequences.

    Deeper layers, the reverse direction and LSTM projections need hidden sequences the hook cannot see: such a
    module raises :class:`~spikeseq.errors.ProfileError` (NeuroBench 2.3 drops the whole layer silently).
    """
    x = args[0]
    if m.num_layers > 1 or m.bidirectional or getattr(m, "proj_size", 0) > 0:
        raise NotImplementedError(
            f"num_layers={m.num_layers}, bidirectional={m.bidirectional}, proj_size={getattr(m, 'proj_size', 0)} "
            "is not counted (the hook cannot see the inner hidden sequences); build it from single-layer, "
            "unidirectional modules without projection")
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise TypeError("packed sequences are not counted; pad the batch")
    y = out[0]
    if x.dim() == 2:
        x, y = x.unsqueeze(1), y.unsqueeze(1)
    elif m.batch_first:
        x, y = x.transpose(0, 1), y.transpose(0, 1)
    t, rows = x.shape[0], x.shape[1]
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    h0 = hx[0] if isinstance(hx, tuple) else hx
    h0 = torch.zeros_like(y[0]) if h0 is None else h0.reshape(rows, -1)
    h_prev = torch.cat((h0.unsqueeze(0), y[:-1]), 0)
    res = matmul_counts(x, m.weight_ih_l0, ctx, nb=False)
    add_counts(res, matmul_counts(h_prev, m.weight_hh_l0, ctx, nb=False))
    if m.bias:
        add_counts(res, bias_counts(m.bias_ih_l0, rows, t))
        add_counts(res, bias_counts(m.bias_hh_l0, rows, t))
    ew = _cell_elementwise(m, rows, 1)
    add_counts(res, {k: v.expand(t).clone() for k, v in ew.items()})
    add_counts(res, out_counts(y, t))
    res["mem_output_writes"] = full_steps(t, y[0].numel())
    return res


# ------------------------------------------------------------------------------------------ activations / norms
_NB_ACTIVATIONS = (nn.ReLU, nn.Sigmoid)


def count_activation(m: nn.Module, args, kwargs, out, ctx: CallContext) -> dict:
    """Counts of an element-wise activation: outputs, non-zero outputs and one ``nonlin_ops`` per element."""
    ys = ctx.steps(out)
    t = ys.shape[0]
    res = out_counts(ys, t)
    res["nonlin_ops"] = res["out_elements"].clone()
    if ctx.neurobench and isinstance(m, _NB_ACTIVATIONS):
        res.update(nb_act_nonzero=res["out_nonzero"], nb_act_elements=res["out_elements"])
    return res


for _cls in (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
             nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softplus, nn.Softsign):
    register_counter(_cls, count_activation, kind="activation", nb_activation=_cls in _NB_ACTIVATIONS)


def _elementwise(ys: torch.Tensor, mults: float, adds: float) -> dict:
    t = ys.shape[0]
    n = ys[0].numel()
    return {"state_mults": full_steps(t, mults * n), "state_adds": full_steps(t, adds * n)}


@register_counter(nn.modules.batchnorm._BatchNorm, kind="composite")
def count_batchnorm(m, args, kwargs, out, ctx: CallContext) -> dict:
    """Inference form: a per-channel affine map, 1 mult + 1 add per element (folded scale and shift)."""
    return _elementwise(ctx.steps(out), 1, 1)


@register_counter(nn.LayerNorm, kind="composite")
def count_layernorm(m, args, kwargs, out, ctx: CallContext) -> dict:
    """Per element: mean (1 add), centre (1 add), square (1 mult), variance (1 add), normalise (1 mult),
    affine (1 mult + 1 add when elementwise_affine): 3 + 1 adds and 2 + 1 mults."""
    aff = 1 if m.elementwise_affine else 0
    return _elementwise(ctx.steps(out), 2 + aff, 3 + aff)


def count_free(m, args, kwargs, out, ctx: CallContext) -> dict:
    """Modules that do no arithmetic at inference (reshapes, dropout in eval, identity)."""
    return {}


for _cls in (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
             nn.AlphaDropout):
    register_counter(_cls, count_free, kind="free")
