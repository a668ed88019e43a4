"""Run ``egru_scan`` on two backends with identical inputs; compare outputs, final state and every gradient."""

from __future__ import annotations

import torch

from spikeseq import kernels as K
from spikeseq.functional.egru import EGRUState


def make(T=7, B=3, I=5, H=6, dtype=torch.float64, seed=0, weight_density=1.0, input_density=1.0, state=True,
         theta_scalar=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, I, dtype=dtype, generator=g)
    if input_density < 1:
        x = x * (torch.rand(T, B, I, generator=g, dtype=dtype) < input_density)
    w_hh = torch.randn(3 * H, H, dtype=dtype, generator=g)
    if weight_density < 1:
        w_hh = w_hh * (torch.rand(3 * H, H, generator=g, dtype=dtype) < weight_density)
    p = dict(weight_ih=0.7 * torch.randn(3 * H, I, dtype=dtype, generator=g), weight_hh=w_hh,
             bias_ih=0.1 * torch.randn(3 * H, dtype=dtype, generator=g),
             bias_hh=0.1 * torch.randn(3 * H, dtype=dtype, generator=g),
             threshold=(torch.tensor(0.2, dtype=dtype) if theta_scalar
                        else 0.4 * torch.rand(H, dtype=dtype, generator=g)))
    st = None
    if state:
        y0 = torch.randn(B, H, dtype=dtype, generator=g) * (torch.rand(B, H, generator=g, dtype=dtype) < 0.5)
        st = EGRUState(0.3 * torch.randn(B, H, dtype=dtype, generator=g), y0)
    return x, st, p


def run(backend, x, state, params, seed=1, uses=(0, 1, 2, 3), **opts):
    x = x.detach().clone().requires_grad_()
    st = None if state is None else EGRUState(*(s.detach().clone().requires_grad_() for s in state))
    ps = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    out, new = K.egru_scan(x, st, backend=backend, **ps, **opts)
    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in (*out, *new)]
    loss = sum((t * w).sum() for i, (t, w) in enumerate(zip((*out, *new), weights, strict=True)) if i in uses)
    leaves = [x, *([] if st is None else st), *ps.values()]
    return [*out, *new], list(torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True))


def assert_same(backend, x, state, params, atol, **opts):
    """Outputs and gradients of ``backend`` equal the reference's (``uses=(0, 2)``: the loss reads only those of
    ``y, e, c, y_last``; the others' gradients reach the backward as nothing)."""
    (o_r, g_r), (o_k, g_k) = run("torch", x, state, params, **opts), run(backend, x, state, params, **opts)
    for a, b in zip(o_r, o_k, strict=True):
        torch.testing.assert_close(b, a, atol=atol, rtol=0)
    for a, b in zip(g_r, g_k, strict=True):
        torch.testing.assert_close(b, a, atol=atol, rtol=0)
    return o_r
