"""Op counters of the LMUFormer module types (registered through the family, see ``__init__.py``)."""

from __future__ import annotations

import torch

from spikeseq.models.lmuformer.modules import CausalConv1d, LMUFormer, LMUFormerReLU, LMUFormerResidual
from spikeseq.profile import CallContext, CounterSpec, add_counts, bias_counts, delayed_counts, full_steps, out_counts


def count_causal_conv(m: CausalConv1d, args, kwargs, out, ctx: CallContext) -> dict:
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
    return add_counts(res, bias_counts(m.conv.bias, x[0].numel() // w.shape[1], x.shape[0]))


def count_relu_module(m, args, kwargs, out, ctx: CallContext) -> dict:
    """An elementwise ReLU: one nonlinearity per output element."""
    res = out_counts(out, out.shape[0])
    res["nonlin_ops"] = res["out_elements"].clone()
    return res


def count_residual(m, args, kwargs, out, ctx: CallContext) -> dict:
    """``x + branch(x)``: one add per element (the branch is counted by its own hooks)."""
    y = out[0]
    return {"state_adds": full_steps(y.shape[0], y[0].numel())}


def count_lmuformer_head(m, args, kwargs, out, ctx: CallContext) -> dict:
    """The running mean of the logits: one add (cumulative sum) and one multiply (by 1/steps) per class."""
    y = out[0]
    n = y[0].numel()
    return {"state_adds": full_steps(y.shape[0], n), "state_mults": full_steps(y.shape[0], n)}


COUNTERS = {
    CausalConv1d: CounterSpec(count_causal_conv, "connection", time_first=True),
    LMUFormerReLU: CounterSpec(count_relu_module, "activation", time_first=True),
    LMUFormerResidual: CounterSpec(count_residual, "composite", descend=True, time_first=True),
    LMUFormer: CounterSpec(count_lmuformer_head, "composite", descend=True, time_first=True),
}
