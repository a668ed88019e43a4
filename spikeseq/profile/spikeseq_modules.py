"""Counters for spikeseq ``nn`` building blocks that compute more than their children show to hooks.

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

* RWKV blocks (:mod:`spikeseq.nn.rwkv`): the projections are ``nn.Linear`` children (MACs, or ACs on spikes), the
  LayerNorms and LIFs are hooked; counted here is what happens between them, per element of a ``[T, B, C]`` step:
  token-shift mixes (2 mults + 1 add each: 3 in the time mix, 2 in the channel mix), the sigmoid receptances, the
  gating products, the squared ReLU, the residual adds, the (1 - beta) LIF input scaling, and the stabilised WKV
  step of :mod:`spikeseq.functional.wkv`: 4 exponentials, 1 division, 6 mults, 9 adds, 2 comparisons; memory: the
  WKV state (a, b, p) read and written and the token-shift input read and written every step. The binary
  embedding: one table row read per token and one comparison per element.

Model families count their own module types (``spikeseq.models.registry.Family.counters``).
"""

from __future__ import annotations

import torch

from spikeseq.functional.lmu import LMUState, lmu_memory_scan
from spikeseq.nn import DelayLinear
from spikeseq.nn.lmu import LMU, LMUMemory
from spikeseq.nn.recurrent import RLIF
from spikeseq.nn.rwkv import RWKVBlock, RWKVChannelMix, RWKVTimeMix, SpikingEmbedding
from spikeseq.profile.context import CallContext
from spikeseq.profile.counters import (
    F64,
    add_counts,
    bias_counts,
    exact_dtype,
    full_steps,
    matmul_counts,
    nonzero_mask,
    out_counts,
    scratch,
)
from spikeseq.profile.neurons import neuron_counts
from spikeseq.profile.registry import register_counter


# ------------------------------------------------------------------------------------ delayed synaptic products
def delayed_counts(x: torch.Tensor, hist: int, fans: dict[int, torch.Tensor], n_out_dense: int) -> dict:
    """Counts of ``y[t] = sum_d W_d x[t - d]`` for ``x [hist + T, B, in]`` (the first ``hist`` steps are history
    from a state) and ``fans[d]`` = non-zero synapses with delay ``d`` per input ``[in]``. Ops are counted at
    their arrival step; ``n_out_dense`` = synapses per input in the dense count (``out``: one delay per synapse,
    every synapse counted every step, as the module docstring says)."""
    t = x.shape[0] - hist
    n_in = x.shape[-1]
    x2 = x.reshape(-1, n_in)
    dt = exact_dtype(x2, n_in, n_out_dense)
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
    dense = full_steps(t, rows * n_in * n_out_dense)
    return {"dense_macs": dense, "eff_macs": eff - acs, "eff_acs": acs, "addr_adds": eff,
            "mem_weight_reads": eff, "mem_state_reads": eff, "mem_state_writes": eff,
            "mem_input_reads": n_nz[hist:].sum(1).cpu()}


@register_counter(DelayLinear, kind="connection", time_first=True)
def count_delay_linear(m: DelayLinear, args, kwargs, out, ctx: CallContext) -> dict:
    """Counts of one :class:`~spikeseq.nn.DelayLinear` call, ops at their arrival step (module docstring)."""
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
    return add_counts(res, bias_counts(m.bias, x[0].numel() // m.in_features, x.shape[0] - hist))


# ----------------------------------------------------------------------------------------------- LMU memory
@register_counter(LMUMemory, kind="connection", time_first=True)
def count_lmu_memory(m: LMUMemory, args, kwargs, out, ctx: CallContext) -> dict:
    """Counts of one :class:`~spikeseq.nn.lmu.LMUMemory` call in its recurrent form (module docstring)."""
    u = args[0]
    state = args[1] if len(args) > 1 else kwargs.get("state")
    mem = out[0]                                                  # [T, B, N, d]
    t, order = u.shape[0], m.order
    m0 = torch.zeros_like(mem[0]) if state is None else state.m.to(mem)
    a_bar, b_bar = (x.to(mem) for x in m.matrices())
    if t > 1 and m.mode != "recurrent":
        # the FFT form leaves round-off (~1e-9) where the recurrence is exactly 0 (before the first input
        # event): count the recurrent form's memory, as documented, not the implementation's noise
        mem, _ = lmu_memory_scan(u.to(mem), None if state is None else LMUState(m0), a_bar=a_bar, b_bar=b_bar)
    m_prev = torch.cat((m0.unsqueeze(0), mem[:-1]), 0).reshape(t, -1, order)
    res = matmul_counts(m_prev, a_bar, ctx, nb=False)
    add_counts(res, matmul_counts(u.reshape(t, -1, 1), b_bar.reshape(order, 1), ctx, nb=False))
    cells = mem[0].numel()
    res.update(neuron_updates=full_steps(t, cells), mem_output_writes=full_steps(t, cells))
    return res


@register_counter(LMU, kind="composite", descend=True, time_first=True)
def count_lmu_cell(m: LMU, args, kwargs, out, ctx: CallContext) -> dict:
    """The non-spiking cell applies ``torch.relu`` to ``u`` and ``h`` functionally; children count the rest."""
    if m.spiking:
        return {}
    h = out[0]
    t, rows = h.shape[0], h[0].numel() // m.hidden_size
    res = out_counts(h, t)
    res["nonlin_ops"] = full_steps(t, rows * (m.n_u + m.hidden_size))
    return res


# --------------------------------------------------------------------------------------------------- RLIF
@register_counter(RLIF, kind="neuron", descend=True, time_first=True)
def count_rlif(m: RLIF, args, kwargs, out, ctx: CallContext) -> dict:
    """Neuron-update counts of one :class:`~spikeseq.nn.RLIF` call, from its output spikes (``fc``, ``rec`` hooked)."""
    zs = out[0]
    model = "LIF" if m.kind == "lif" else "CubaLIF"
    res = neuron_counts(torch.ones_like(zs), zs, model, m.neuron.reset, binary_out=True)
    ctx.mark_binary(zs)
    if ctx.neurobench:
        res["nb_act_nonzero"], res["nb_act_elements"] = res["out_nonzero"], res["out_elements"]
    return res


# ------------------------------------------------------------------------------------------------- RWKV blocks
def _per_step(t: int, n: int, **per_element: float) -> dict:
    return {k: full_steps(t, v * n) for k, v in per_element.items()}


@register_counter(RWKVTimeMix, kind="composite", descend=True, time_first=True)
def count_rwkv_time_mix(m: RWKVTimeMix, args, kwargs, out, ctx: CallContext) -> dict:
    """Mixes, sigmoid, ``r * wkv`` and the WKV step (module docstring); the four projections are children."""
    x = args[0]
    n = x[0].numel()
    return _per_step(x.shape[0], n, state_mults=3 * 2 + 1 + 6, state_adds=3 + 9, state_cmps=2, nonlin_ops=1,
                     exp_ops=4, div_ops=1, mem_state_reads=3 + 1, mem_state_writes=3 + 1)


@register_counter(RWKVChannelMix, kind="composite", descend=True, time_first=True)
def count_rwkv_channel_mix(m: RWKVChannelMix, args, kwargs, out, ctx: CallContext) -> dict:
    """Mixes, squared ReLU (hidden width), sigmoid and the gating product; the projections are children."""
    x = args[0]
    t, n = x.shape[0], x[0].numel()
    nh = n // m.channels * m.hidden
    res = _per_step(t, n, state_mults=2 * 2 + 1, state_adds=2, nonlin_ops=1, mem_state_reads=1, mem_state_writes=1)
    return add_counts(res, {"state_mults": full_steps(t, nh), "nonlin_ops": full_steps(t, nh)})


@register_counter(RWKVBlock, kind="composite", descend=True, time_first=True)
def count_rwkv_block(m: RWKVBlock, args, kwargs, out, ctx: CallContext) -> dict:
    """Two residual adds per element, and the (1 - beta) input scaling of each LIF when spiking."""
    x = args[0]
    return _per_step(x.shape[0], x[0].numel(), state_adds=2, state_mults=2 if m.spiking else 0)


@register_counter(SpikingEmbedding, kind="activation", time_first=True)
def count_spiking_embedding(m: SpikingEmbedding, args, kwargs, out, ctx: CallContext) -> dict:
    """A table lookup: one weight read per output element; spiking: one comparison per element, spikes out."""
    t = out.shape[0]
    res = out_counts(out, t)
    res["mem_weight_reads"] = full_steps(t, out[0].numel())
    if m.spiking:
        res["state_cmps"] = full_steps(t, out[0].numel())
        res["spikes_out"] = res["out_nonzero"].clone()
    return res
