"""Run a scan on two backends with identical inputs and compare outputs, final states and every gradient."""

from __future__ import annotations

import torch

from spikeseq import kernels as K
from spikeseq.functional import CubaLIFState, LIFState, LIState


def _leaf(t: torch.Tensor, grad: bool = True) -> torch.Tensor:
    return t.detach().clone().requires_grad_(grad)


def run(op: str, backend: str, x, state, params: dict, seed: int = 1):
    """Outputs, final state and gradients of a random linear loss w.r.t. x, the state fields and tensor params."""
    x = _leaf(x)
    st = None if state is None else type(state)(*(_leaf(s) for s in state))
    ps = {k: (_leaf(v, v.is_floating_point()) if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    y, new = getattr(K, op)(x, st, backend=backend, **ps)
    gen = torch.Generator().manual_seed(seed)
    loss = (y * torch.randn(y.shape, generator=gen, dtype=y.dtype)).sum()
    for s in new:
        loss = loss + (s * torch.randn(s.shape, generator=gen, dtype=s.dtype)).sum()
    leaves = [x] + ([] if st is None else list(st)) + [v for v in ps.values() if isinstance(v, torch.Tensor)]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return [y, *new], list(grads)


def assert_same(op: str, backend: str, x, state, params: dict, atol: float, rtol: float = 0.0) -> None:
    (out_r, g_r), (out_k, g_k) = run(op, "torch", x, state, params), run(op, backend, x, state, params)
    for a, b in zip(out_r, out_k, strict=True):
        torch.testing.assert_close(b, a, atol=atol, rtol=rtol)
    for a, b in zip(g_r, g_k, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(b, a, atol=atol, rtol=rtol)


STATES = {"lif_scan": LIFState, "cuba_lif_scan": CubaLIFState, "li_scan": LIState}
