"""Run a WKV form with identical inputs and compare outputs, final states and every gradient with the reference."""

from __future__ import annotations

import torch

from spikeseq.functional import WKVState, wkv_scan


def inputs(T=23, B=3, C=5, dtype=torch.float64, seed=0, k_scale=1.0, state=True):
    """Random k, v, w, u and (optionally) a random non-initial state."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(T, B, C, generator=g, dtype=dtype) * k_scale
    v = torch.randn(T, B, C, generator=g, dtype=dtype)
    w = torch.exp(torch.randn(C, generator=g, dtype=dtype))
    u = torch.randn(C, generator=g, dtype=dtype)
    st = None
    if state:
        st = WKVState(torch.randn(B, C, generator=g, dtype=dtype), torch.rand(B, C, generator=g, dtype=dtype) + 0.5,
                      torch.randn(B, C, generator=g, dtype=dtype))
    return k, v, w, u, st


def run(fn, k, v, w, u, st, seed=1):
    """Outputs and the gradients of a random linear loss of ``y`` and the final state w.r.t. every input."""
    leaves = [t.detach().clone().requires_grad_() for t in (k, v, w, u)]
    sl = None if st is None else WKVState(*(s.detach().clone().requires_grad_() for s in st))
    y, new = fn(*leaves[:2], sl, w=leaves[2], u=leaves[3])
    g = torch.Generator().manual_seed(seed)
    loss = (y.double() * torch.randn(y.shape, generator=g, dtype=torch.float64)).sum()
    for s in new:
        loss = loss + (s.double() * torch.randn(s.shape, generator=g, dtype=torch.float64)).sum()
    wrt = leaves + ([] if sl is None else list(sl))
    return [y, *new], list(torch.autograd.grad(loss, wrt))


def assert_matches_reference(fn, *args, atol, rtol=0.0, ref=wkv_scan):
    (o_r, g_r), (o_k, g_k) = run(ref, *args), run(fn, *args)
    for a, b in zip(o_r + g_r, o_k + g_k, strict=True):
        torch.testing.assert_close(b, a, atol=atol, rtol=rtol)


def assert_float32_within_1e5(fn, k, v, w, u, st):
    """float32 ``fn`` vs the float64 reference on the same inputs: every output and gradient within 1e-5 of each
    tensor's largest magnitude (at least 1). The float32 reference loop itself is off by up to 2e-6 of it (measured:
    T 200, the w gradient sums 400 terms), so comparing two float32 forms at 1e-5 absolute would test rounding."""
    up = [t.double() for t in (k, v, w, u)] + [None if st is None else WKVState(*(s.double() for s in st))]
    (o_r, g_r), (o_k, g_k) = run(wkv_scan, *up), run(fn, k, v, w, u, st)
    for a, b in zip(o_r + g_r, o_k + g_k, strict=True):
        assert b.dtype == torch.float32
        scale = max(1.0, float(a.detach().abs().max()))
        torch.testing.assert_close(b.double(), a, atol=1e-5 * scale, rtol=0)
