"""Op counters of :class:`~spikeseq.models.l2mu.modules.L2MU` (registered through the family, see
``__init__.py``)."""

from __future__ import annotations

import torch

from spikeseq.errors import ProfileError
from spikeseq.functional import cuba_lif_step, lif_step
from spikeseq.models.l2mu.modules import L2MU
from spikeseq.profile import CallContext, CounterSpec, add_counts, full_steps, matmul_counts, neuron_counts


def count_l2mu(model: L2MU, args, kwargs, out, ctx: CallContext) -> dict:
    """The stepped cell (recurrent ``e_h``, ``e_m``, ``w_h``, ``w_m`` products, the LMU update
    ``A_bar s_m + B_bar s_u`` and the ``u``/``m``/``h`` populations) runs functionally, so this counter re-runs
    the cell equations on the same inputs to get the per-step spikes (checked against the model's final state)
    and reports each part as a sub-layer."""
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
                           "count_l2mu (models/l2mu/count.py) is out of date with models/l2mu/modules.py")
    lmu = matmul_counts(seq["sm_prev"].reshape(t_len, -1, d), a_bar, ctx, nb=False)
    add_counts(lmu, matmul_counts(seq["su"].reshape(t_len, -1, 1), b_bar.reshape(d, 1), ctx, nb=False))
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
    return {"__sub__": subs, "state_adds": full_steps(t_len, bsz * n_cls)}


COUNTERS = {L2MU: CounterSpec(count_l2mu, "composite", descend=True, time_first=True)}
