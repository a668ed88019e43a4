"""Leftover of review session 13: the initial WKV state in half precision (the -1e38 sentinel overflowed float16)."""

from __future__ import annotations

import warnings

import pytest
import torch

from spikeseq.functional.wkv import P0, initial_p, initial_wkv_state, wkv_scan, wkv_step
from spikeseq.models.spikegpt.modules import SpikeGPT, SpikeGPTConfig


def _model(dtype: torch.dtype, spiking: bool) -> SpikeGPT:
    torch.manual_seed(0)
    m = SpikeGPT(SpikeGPTConfig(vocab=32, n_layer=2, n_embd=16, ctx_len=8, spiking=spiking))
    return m.eval().to(dtype)


def test_initial_p_per_dtype():
    assert initial_p(torch.float32) == P0 == -1e38 and initial_p(torch.float64) == P0
    assert initial_p(torch.bfloat16) == P0  # within bfloat16's range: unchanged
    assert initial_p(torch.float16) == -65504.0 == torch.finfo(torch.float16).min
    s = initial_wkv_state(2, 3, dtype=torch.float32)
    assert torch.equal(s.p, torch.full((2, 3), -1e38))  # float32: bit-identical to before
    assert s.p.dtype == torch.float32 and not s.a.any() and not s.b.any()


@pytest.mark.parametrize("spiking", [True, False])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_model_builds_its_initial_state_and_steps(dtype, spiking):
    m = _model(dtype, spiking)
    s = m.initial_state(2)  # float16 was "value cannot be converted to type c10::Half without overflow"
    assert all(t.dtype == dtype for blk in s.blocks for t in blk)
    assert all(bool(torch.isfinite(blk.wkv_p).all()) for blk in s.blocks)
    ids = torch.tensor([3, 5])
    y, s1 = m.step(ids, s)
    assert y.shape == (2, 32) and y.dtype == dtype and bool(torch.isfinite(y).all())
    y0, _ = m.step(ids)  # state=None builds the same initial state
    assert torch.equal(y, y0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the C++ LIF scan takes float32/64 only: the torch fallback is announced
        seq = torch.tensor([[3, 5], [1, 2], [7, 8]])
        a, _ = m(seq, m.initial_state(2))
        b, _ = m(seq)  # state=None: the WKV starts from -1e38 in float32, the explicit state from -65504
    assert bool(torch.isfinite(a).all()) and torch.equal(a, b)


def test_float16_sentinel_gives_the_same_wkv_as_minus_1e38():
    g = torch.Generator().manual_seed(0)
    k, v = torch.randn(6, 2, 4, generator=g) * 3, torch.randn(6, 2, 4, generator=g)
    w, u = torch.rand(4, generator=g) + 0.1, torch.randn(4, generator=g)
    ref, ref_s = wkv_scan(k, v, w=w, u=u)  # from p = -1e38
    s16 = initial_wkv_state(2, 4, dtype=torch.float16)
    got, got_s = wkv_scan(k, v, s16, w=w, u=u)  # from p = -65504
    assert torch.equal(got, ref) and all(torch.equal(x, y) for x, y in zip(got_s, ref_s, strict=True))
    y16, st16 = wkv_step(k[0].half(), v[0].half(), s16, w=w, u=u)
    assert bool(torch.isfinite(y16).all()) and torch.equal(st16.p, k[0].half().float())
