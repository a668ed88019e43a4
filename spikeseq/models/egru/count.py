"""Op counters of the EGRU models (registered through the family, see ``__init__.py``).

Per EGRU layer and gate (r, z, n), the input product ``W_g x`` and the recurrent product ``R_g y[t-1]`` are counted
by :func:`spikeseq.profile.matmul_counts`: ``dense_macs`` (every weight, every step: what a GRU costs) and the
effective MACs, which skip zero inputs (silent units: activity sparsity) and zero weights (pruning), so that

    eff_macs(gate) = sum_t sum_b sum_j [y[t-1, b, j] != 0] * nonzero fan-out of unit j in R_g
                   ~ dense_macs(gate) * activity density * weight density.

Graded events are real values, so the products are MACs, not ACs (NeuroBench's rule for non-binary inputs;
specs/energy.md §1.3). The gate arithmetic (sigmoid, tanh, the state update, the threshold comparison and the
subtractive reset) is counted per unit and step; ``out_nonzero`` counts the events sent.
"""

from __future__ import annotations

import torch

from spikeseq.kernels import egru_scan
from spikeseq.models.egru.modules import EGRULM, EGRUClassifier
from spikeseq.nn import EGRU
from spikeseq.profile import CallContext, CounterSpec, add_counts, bias_counts, full_steps, matmul_counts, out_counts

GATES = ("r", "z", "n")


def egru_stack_counts(rnn: EGRU, x: torch.Tensor, ctx: CallContext, prefix: str = "rnn") -> list[tuple]:
    """Sub-layer counts ``(name, module, kind, counts)`` of an :class:`~spikeseq.nn.EGRU` run on ``x`` from rest
    (re-run here layer by layer, functionally, to see every layer's events). ``x`` is what the EGRU receives,
    ``[T, B, I]``, or ``[B, T, I]`` when it was built with ``batch_first``: its events and the recurrent input
    ``y[t-1]`` follow the EGRU's own time axis; the per-step series follow the first axis of ``x``, as the
    other counters of the model see it."""
    t_len, rows = x.shape[0], x.shape[1]
    h = rnn.hidden_size
    flip = bool(getattr(rnn, "batch_first", False))

    def layout(t: torch.Tensor) -> torch.Tensor:   # the EGRU's layout <-> time-first (its own inverse)
        return t.transpose(0, 1) if flip else t

    subs = []
    inp = x
    for k in range(rnn.num_layers):
        p = rnn.layer_params(k)
        out, _ = egru_scan(layout(inp), None, backend="torch", eps=rnn.eps, dampening=rnn.dampening,
                           zoneout=rnn.zoneout, **p)
        y_tf = out.y                                      # time-first
        y, y_prev = layout(y_tf), layout(torch.cat((torch.zeros_like(y_tf[:1]), y_tf[:-1]), 0))
        for g, name in enumerate(GATES):
            sl = slice(g * h, (g + 1) * h)
            c_in = matmul_counts(inp, p["weight_ih"][sl], ctx, nb=False)
            c_rec = matmul_counts(y_prev, p["weight_hh"][sl], ctx, nb=False)
            if p["bias_ih"] is not None:
                add_counts(c_in, bias_counts(p["bias_ih"][sl], rows, t_len))
                add_counts(c_rec, bias_counts(p["bias_hh"][sl], rows, t_len))
            subs.append((f"{prefix}.l{k}.{name}.input", "EGRUInputProduct", "connection", c_in))
            subs.append((f"{prefix}.l{k}.{name}.recurrent", "EGRURecurrentProduct", "connection", c_rec))
        n = rows * h
        # r, z: 2 adds (pre-activations) + sigmoid; n: r * h_n (1 mult), 2 adds, tanh; c~ = z c + (1 - z) n: 2 mults,
        # 2 adds; threshold comparison 1; reset c~ - e theta: 1 mult, 1 add; y = e c~: 1 mult
        cell = {"state_mults": full_steps(t_len, 5 * n), "state_adds": full_steps(t_len, 8 * n),
                "nonlin_ops": full_steps(t_len, 3 * n), "state_cmps": full_steps(t_len, n),
                "neuron_updates": full_steps(t_len, n), "mem_state_reads": full_steps(t_len, n),
                "mem_state_writes": full_steps(t_len, n)}
        add_counts(cell, out_counts(y, t_len))
        cell["spikes_out"] = cell["out_nonzero"].clone()
        subs.append((f"{prefix}.l{k}.cell", "EGRUCell", "neuron", cell))
        inp = y
    return subs


def _readout(linear: torch.nn.Linear, y: torch.Tensor, ctx: CallContext, name: str) -> tuple:
    c = matmul_counts(y, linear.weight, ctx, nb=False)
    add_counts(c, bias_counts(linear.bias, y.shape[1], y.shape[0]))
    return (name, linear, "connection", c)


def _last_events(model, x_rnn: torch.Tensor) -> torch.Tensor:
    out, _ = model.rnn.forward(x_rnn)
    return out.y


def count_egru_lm(model: EGRULM, args, kwargs, out, ctx: CallContext) -> dict:
    """Embedding lookup (no arithmetic), the EGRU stack per layer and gate, and the decoder on the last events."""
    ids = args[0]
    h = model.embed.forward(ids.long())
    subs = egru_stack_counts(model.rnn, h, ctx)
    subs.append(_readout(model.decoder, _last_events(model, h), ctx, "decoder"))
    return {"__sub__": subs}


def count_egru_classifier(model: EGRUClassifier, args, kwargs, out, ctx: CallContext) -> dict:
    """The EGRU stack per layer and gate and the per-step readout on the last layer's events."""
    x = args[0]
    x = x.reshape(x.shape[0], x.shape[1], -1)
    subs = egru_stack_counts(model.rnn, x, ctx)
    subs.append(_readout(model.out, _last_events(model, x), ctx, "out"))
    return {"__sub__": subs}


COUNTERS = {
    EGRULM: CounterSpec(count_egru_lm, "composite", time_first=True),
    EGRUClassifier: CounterSpec(count_egru_classifier, "composite", time_first=True),
}
