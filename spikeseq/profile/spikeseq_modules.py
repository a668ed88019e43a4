"""Counters for spikeseq modules that compute more than their children show to hooks.

* :class:`spikeseq.nn.DelayLinear` ``y[t, j] = b_j + sum_i W_ji x[t - D_ji, i]``: an input event at step ``s``
  reaches output ``j`` at step ``s + D_ji``; the effective op is counted at its arrival step (the step whose
  output it changes), so events that would arrive after the window are not counted. Dense: every synapse
  every step.
* :class:`spikeseq.nn.lmu.LMUMemory` ``m[t] = A_bar m[t-1] + B_bar u[t]`` per channel: ``A_bar m`` is a real
  ``d x d`` product (MACs on the non-zero memory entries), ``B_bar u`` one op per coefficient per non-zero input
  (an AC when ``u`` is a spike). Counted as the recurrent form, whatever the implementation (FFT) computes.
* :class:`spikeseq.nn.lmu.LMU`: its children are hooked; the functional ReLUs of the non-spiking cell are added.
* :class:`spikeseq.nn.RLIF`: ``fc`` and ``rec`` are hooked; the neuron update (functional ``lif_step`` /
  ``cuba_lif_step``) is counted here from the output spikes (every neuron counted active).
* ``spikeseq.models.l2mu.L2MU``: the stepped cell (recurrent ``e_h``, ``e_m``, ``w_h``, ``w_m`` products, the LMU
  update ``A_bar s_m + B_bar s_u`` and the ``u``/``m``/``h`` populations) runs functionally, so its counter
  re-runs the cell equations on the same inputs to get the per-step spikes (checked against the model's final
  state) and reports each part as a sub-layer.
* ``spikeseq.models.delay_snn._Dense``: a time-first ``F.linear``.
"""

from __future__ import annotations

import torch

from spikeseq.errors import ProfileError
from spikeseq.functional import cuba_lif_step, lif_step
from spikeseq.nn import DelayLinear
from spikeseq.nn.lmu import LMU, LMUMemory
from spikeseq.nn.recurrent import RLIF
from spikeseq.profile.context import CallContext
from spikeseq.profile.counters import (
    F64,
    _add,
    _exact_dtype,
    _full,
    _out_counts,
    bias_counts,
    matmul_counts,
    nonzero_mask,
    scratch,
)
from spikeseq.profile.neurons import neuron_counts
from spikeseq.profile.registry import register_counter


# ------------------------------------------------------------------------------------ delayed synaptic products
def delayed_counts(x: torch.Tensor, hist: int, fans: dict[int, torch.Tensor], n_out_dense: int) -> dict:
    """Counts of ``y[t] = sum_d W_d x[t - d]`` for ``x [hist + T, B, in]`` (the first ``hist`` steps are history
    from a state) and ``fans[d]`` = non-zero synapses with delay ``d`` per input ``[in]``. Ops are counted at
    their arrival step; ``n_out_dense`` = synapses per input in the dense count (``out * taps``)."""
    t = x.shape[0] - hist
    n_in = x.shape[-1]
    x2 = x.reshape(-1, n_in)
    dt = _exact_dtype(x2, n_in, n_out_dense)
    nzf, binary = nonzero_mask(x2, dt)
    rows = x2.shape[0] // x.shape[0]
    n_nz = nzf.reshape(x.shape[0], rows, n_in).sum(1, dtype=F64)        # [hist + T, in]
    n_unit = n_nz
    if not binary:
        unit = scratch(x2, "unit", dt)
        torch.eq(x2.abs(), 1, out=unit)
        n_unit = unit.reshape(x.shape[0], rows, n_in).sum(1, dtype=F64)
    eff = torch.zeros(t, dtype=F64)
    acs = torch.zeros(t, dtype=F64)
    for k, fan in fans.items():
        fan = fan.to(F64)
        if not bool(fan.any()):
            continue
        lo = max(0, k - hist)                                       # output steps reached by recorded inputs
        if lo >= t:
            continue
        src = slice(hist + lo - k, hist + t - k)
        eff[lo:] += (n_nz[src] @ fan).cpu()
        acs[lo:] += (n_unit[src] @ fan).cpu()
    dense = _full(t, rows * n_in * n_out_dense)
    return {"dense_macs": dense, "eff_macs": eff - acs, "eff_acs": acs, "addr_adds": eff,
            "mem_weight_reads": eff, "mem_state_reads": eff, "mem_state_writes": eff,
            "mem_input_reads": n_nz[hist:].sum(1).cpu()}


@register_counter(DelayLinear, kind="connection", time_first=True)
def count_delay_linear(m: DelayLinear, args, kwargs, out, ctx: CallContext) -> dict:
    x = args[0]
    state = args[1] if len(args) > 1 else kwargs.get("state")
    hist = 0
    if state is not None and getattr(state, "x", None) is not None:
        hist = state.x.shape[0]
        x = torch.cat((state.x.to(x), x), 0)
    nzw = m.weight.detach() != 0
    d = m.delay.detach().clamp(0, m.max_delay).round().long()
    fans = {k: (nzw & (d == k)).sum(0) for k in range(m.max_delay + 1)}
    res = delayed_counts(x, hist, fans, m.out_features)
    return _add(res, bias_counts(m.bias, x[0].numel() // m.in_features, x.shape[0] - hist))


@register_counter("spikeseq.models.lmuformer.CausalConv1d", kind="connection", time_first=True)
def count_causal_conv(m, args, kwargs, out, ctx: CallContext) -> dict:
    """``y[t] = sum_j W[:, :, j] x[t - (k-1-j)]``: a delayed product with one delay per tap."""
    x = args[0]
    state = args[1] if len(args) > 1 else kwargs.get("state")
    k = m.k
    hist = k - 1
    ctx_x = x.new_zeros(hist, *x.shape[1:]) if state is None else state.ctx.to(x)
    xx = torch.cat((ctx_x, x), 0) if hist else x
    w = m.conv.weight.detach()
    fans = {k - 1 - j: (w[:, :, j] != 0).sum(0) for j in range(k)}
    res = delayed_counts(xx, hist, fans, w.shape[0] * k)
    return _add(res, bias_counts(m.conv.bias, x[0].numel() // w.shape[1], x.shape[0]))


# ----------------------------------------------------------------------------------------------- LMU memory
@register_counter(LMUMemory, kind="connection", time_first=True)
def count_lmu_memory(m: LMUMemory, args, kwargs, out, ctx: CallContext) -> dict:
    u = args[0]
    state = args[1] if len(args) > 1 else kwargs.get("state")
    mem = out[0]                                                  # [T, B, N, d]
    t, order = u.shape[0], m.order
    m0 = torch.zeros_like(mem[0]) if state is None else state.m.to(mem)
    m_prev = torch.cat((m0.unsqueeze(0), mem[:-1]), 0).reshape(t, -1, order)
    res = matmul_counts(m_prev, m._a64.to(mem), ctx, nb=False)
    _add(res, matmul_counts(u.reshape(t, -1, 1), m._b64.to(mem).reshape(order, 1), ctx, nb=False))
    cells = mem[0].numel()
    res.update(neuron_updates=_full(t, cells), mem_output_writes=_full(t, cells))
    return res


@register_counter(LMU, kind="composite", descend=True, time_first=True)
def count_lmu_cell(m: LMU, args, kwargs, out, ctx: CallContext) -> dict:
    """The non-spiking cell applies ``torch.relu`` to ``u`` and ``h`` functionally; children count the rest."""
    if m.spiking:
        return {}
    h = out[0]
    t, rows = h.shape[0], h[0].numel() // m.hidden_size
    res = _out_counts(h, t)
    res["nonlin_ops"] = _full(t, rows * (m.n_u + m.hidden_size))
    return res


# --------------------------------------------------------------------------------------------------- RLIF
@register_counter(RLIF, kind="neuron", descend=True, time_first=True)
def count_rlif(m: RLIF, args, kwargs, out, ctx: CallContext) -> dict:
    zs = out[0]
    model = "LIF" if m.kind == "lif" else "CubaLIF"
    res = neuron_counts(torch.ones_like(zs), zs, model, m.neuron.reset, binary_out=True)
    ctx.mark_binary(zs)
    if ctx.neurobench:
        res["nb_act_nonzero"], res["nb_act_elements"] = res["out_nonzero"], res["out_elements"]
    return res


# ------------------------------------------------------------------------------------ models (by name only)
@register_counter("spikeseq.models.lmuformer._ReLU", kind="activation", time_first=True)
def count_relu_module(m, args, kwargs, out, ctx: CallContext) -> dict:
    res = _out_counts(out, out.shape[0])
    res["nonlin_ops"] = res["out_elements"].clone()
    return res


@register_counter("spikeseq.models.lmuformer._Residual", kind="composite", descend=True, time_first=True)
def count_residual(m, args, kwargs, out, ctx: CallContext) -> dict:
    """``x + branch(x)``: one add per element (the branch is counted by its own hooks)."""
    y = out[0]
    return {"state_adds": _full(y.shape[0], y[0].numel())}


@register_counter("spikeseq.models.lmuformer.LMUFormer", kind="composite", descend=True, time_first=True)
def count_lmuformer_head(m, args, kwargs, out, ctx: CallContext) -> dict:
    """The running mean of the logits: one add (cumulative sum) and one multiply (by 1/steps) per class."""
    y = out[0]
    n = y[0].numel()
    return {"state_adds": _full(y.shape[0], n), "state_mults": _full(y.shape[0], n)}



@register_counter("spikeseq.models.delay_snn._Dense", kind="connection", time_first=True)
def count_dense_time_first(m, args, kwargs, out, ctx: CallContext) -> dict:
    xs = args[0]
    res = matmul_counts(xs, m.weight, ctx, nb=False)
    return _add(res, bias_counts(m.bias, xs[0].numel() // m.weight.shape[1], xs.shape[0]))


@register_counter("spikeseq.models.l2mu.L2MU", kind="composite", descend=True, time_first=True)
def count_l2mu(model, args, kwargs, out, ctx: CallContext) -> dict:
    x = args[0]
    state = args[1] if len(args) > 1 else kwargs.get("state")
    if state is not None:
        raise NotImplementedError("L2MU is counted from a fresh state only (state=None)")
    t_len, bsz = x.shape[:2]
    msize, d = model.memory_size, model.order
    # .forward, not __call__: the children's own hooks must not fire (and count) a second time
    if model.input_module == "lif":
        s_x, _ = model.pop_x.forward(model.w_in.forward(x))
    else:
        s_x = x
    xu, xh = model.e_x.forward(s_x), model.w_x.forward(s_x)
    a_bar, b_bar = model.a_bar.to(x), model.b_bar.to(x)

    def pop_kw(pop):
        kw = dict(beta=pop.beta, v_th=pop.v_th, reset=pop.reset, detach_reset=pop.detach_reset,
                  surrogate=pop.surrogate)
        if model.neuron == "cuba":
            kw["alpha"] = pop.alpha
        return kw

    step = cuba_lif_step if model.neuron == "cuba" else lif_step
    ku, km, kh = pop_kw(model.pop_u), pop_kw(model.pop_m), pop_kw(model.pop_h)
    s_h = x.new_zeros(bsz, model.hidden_size)
    s_m = x.new_zeros(bsz, msize * d)
    su = sm = sh = None
    rec = {k: [] for k in ("sh_prev", "sm_prev", "su", "sm", "sh", "iu", "im", "ih")}
    for t in range(t_len):
        rec["sh_prev"].append(s_h)
        rec["sm_prev"].append(s_m)
        i_u = xu[t] + s_h @ model.e_h.weight.t() + s_m @ model.e_m.weight.t()
        s_u, su = step(i_u, su, **ku)
        i_m = (s_m.view(bsz, msize, d) @ a_bar.t() + s_u.unsqueeze(-1) * b_bar).reshape(bsz, msize * d)
        s_m, sm = step(i_m, sm, **km)
        i_h = xh[t] + s_h @ model.w_h.weight.t() + s_m @ model.w_m.weight.t()
        s_h, sh = step(i_h, sh, **kh)
        for k, v in (("su", s_u), ("sm", s_m), ("sh", s_h), ("iu", i_u), ("im", i_m), ("ih", i_h)):
            rec[k].append(v)
    seq = {k: torch.stack(v) for k, v in rec.items()}
    final = out[1]
    if not (torch.equal(final.s_h, s_h) and torch.equal(final.s_m, s_m)):
        raise ProfileError("the L2MU counter's re-run of the cell disagrees with the model's final state: "
                           "spikeseq/profile/spikeseq_modules.py:count_l2mu is out of date with models/l2mu.py")
    lmu = matmul_counts(seq["sm_prev"].reshape(t_len, -1, d), a_bar, ctx, nb=False)
    _add(lmu, matmul_counts(seq["su"].reshape(t_len, -1, 1), b_bar.reshape(d, 1), ctx, nb=False))
    reset = model.pop_u.reset
    kind = "CubaLIF" if model.neuron == "cuba" else "LIF"
    subs = [
        ("e_h", model.e_h, "connection", matmul_counts(seq["sh_prev"], model.e_h.weight, ctx)),
        ("e_m", model.e_m, "connection", matmul_counts(seq["sm_prev"], model.e_m.weight, ctx)),
        ("pop_u", model.pop_u, "neuron", neuron_counts(seq["iu"], seq["su"], kind, reset, binary_out=True)),
        ("lmu", "LMUUpdate", "connection", lmu),
        ("pop_m", model.pop_m, "neuron", neuron_counts(seq["im"], seq["sm"], kind, reset, binary_out=True)),
        ("w_h", model.w_h, "connection", matmul_counts(seq["sh_prev"], model.w_h.weight, ctx)),
        ("w_m", model.w_m, "connection", matmul_counts(seq["sm"], model.w_m.weight, ctx)),
        ("pop_h", model.pop_h, "neuron", neuron_counts(seq["ih"], seq["sh"], kind, reset, binary_out=True)),
    ]
    n_cls = model.n_classes
    # the readout accumulation (cumulative sum of the output) is one add per class per step
    return {"__sub__": subs, "state_adds": _full(t_len, bsz * n_cls)}
