"""IR lowering of :class:`~spikeseq.models.l2mu.modules.L2MU`: the stepped cell's wiring (no building block has
it: the populations are stepped functionally inside ``L2MU.forward``)."""

from __future__ import annotations

import torch

from spikeseq.graph import GraphBuilder, affine_node, linear_node, neuron_node
from spikeseq.models.l2mu.modules import L2MU


def lower_l2mu(m: L2MU, b: GraphBuilder, prev: list[str], shape, prefix: str):
    """Populations x, u, m, h, out; the memory update ``I_m = A_bar s_m[t-1] + B_bar s_u`` becomes two Linear
    synapses (block-diagonal ``kron(I, A_bar)`` and ``kron(I, B_bar)``); the feedbacks h->u, m->u, h->h, m->m read
    the previous step (explicit recurrent edges); the model's cumulative readout is recorded as
    ``metadata["output_transform"]``."""
    p = prefix

    def pop(name, module, size, inputs, *, compare: bool = True):
        n = b.add(f"{p}{name}", neuron_node(module, (size,), b.dt, f"{p}{name}"), inputs)
        if compare:  # u, m, h are stepped functionally inside forward: no module output to compare with
            b.module_of[n] = b.child_path(name)
        return n

    if m.input_module == "lif":
        w_in = b.add(f"{p}w_in", affine_node(m.w_in), prev)
        src = [pop("pop_x", m.pop_x, m.w_in.out_features, [w_in])]
    else:
        src = prev
    md, d = m.memory_size, m.order
    eye = torch.eye(md, dtype=torch.float64)
    e_x = b.add(f"{p}e_x", affine_node(m.e_x), src)
    u = pop("pop_u", m.pop_u, md, [e_x], compare=False)
    bm = b.add(f"{p}b_mem", linear_node(torch.kron(eye, m.b_bar.double().reshape(d, 1))), [u])
    mm = pop("pop_m", m.pop_m, md * d, [bm], compare=False)
    am = b.add(f"{p}a_mem", linear_node(torch.kron(eye, m.a_bar.double())), [mm])
    e_m = b.add(f"{p}e_m", affine_node(m.e_m), [mm])
    w_x = b.add(f"{p}w_x", affine_node(m.w_x), src)
    w_m = b.add(f"{p}w_m", affine_node(m.w_m), [mm])
    h = pop("pop_h", m.pop_h, m.hidden_size, [w_x, w_m], compare=False)
    w_h = b.add(f"{p}w_h", affine_node(m.w_h), [h])
    e_h = b.add(f"{p}e_h", affine_node(m.e_h), [h])
    w_out = b.add(f"{p}w_out", affine_node(m.w_out), [h])
    out = pop("pop_out", m.pop_out, m.n_classes, [w_out])
    for src_, dst in ((am, mm), (e_m, u), (w_h, h), (e_h, u)):
        b.add_recurrent(src_, dst)
    b.metadata["output_transform"] = "cumsum" if m.readout == "spike_count" else "cummean"
    return [out], (m.n_classes,)


LOWERINGS = {L2MU: lower_l2mu}
