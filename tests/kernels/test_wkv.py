"""The fused WKV backends (C++ "cpu", Triton under TRITON_INTERPRET=1) and the dispatch, against the reference.

Tolerances: float64 1e-12 absolute (summation order only); float32 within 1e-5 of the float64 reference relative to
each tensor's largest magnitude (see ``_wkv_compare``; the C++ loops use a Cephes exp of about 1 ulp); bfloat16
inputs are computed in float32 and the outputs rounded to bfloat16, so they agree with the float32 reference on the
same (rounded) inputs to bfloat16's resolution: 2^-8 relative (rtol 8e-3, atol 1e-2).
"""

from __future__ import annotations

import pytest
import torch

from spikeseq import kernels as K
from spikeseq.errors import BackendUnavailableError
from spikeseq.functional import WKVState, wkv_scan
from spikeseq.kernels import dispatch
from spikeseq.kernels.wkv import cpu
from tests.kernels._wkv_compare import assert_float32_within_1e5, assert_matches_reference, inputs

needs_cpp = pytest.mark.native


@needs_cpp
@pytest.mark.parametrize("T,state", [(23, True), (1, True), (17, False)])
def test_cpu_matches_reference_float64(T, state):
    assert_matches_reference(cpu.wkv, *inputs(T=T, state=state), atol=1e-12)


@needs_cpp
def test_cpu_float32_within_1e5():
    assert_float32_within_1e5(cpu.wkv, *inputs(T=200, B=2, C=33, dtype=torch.float32, k_scale=4.0))


@needs_cpp
def test_cpu_gradcheck():
    k, v, w, u, st = inputs(T=5, B=2, C=3)
    leaves = [t.clone().requires_grad_() for t in (k, v, w, u, *st)]

    def f(k, v, w, u, a, b, p):
        y, s = cpu.wkv(k, v, WKVState(a, b, p), w=w, u=u)
        return y, s.a, s.b, s.p

    assert torch.autograd.gradcheck(f, leaves)


@needs_cpp
def test_cpu_bfloat16_stated_tolerance():
    k, v, w, u, _ = inputs(T=50, B=2, C=8, dtype=torch.bfloat16, state=False)
    y, _ = cpu.wkv(k, v, w=w, u=u)
    y_ref, _ = wkv_scan(k.float(), v.float(), w=w.float(), u=u.float())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y_ref, atol=1e-2, rtol=8e-3)


def test_dispatch_defaults():
    k, v, w, u, _ = inputs(T=4, dtype=torch.float32, state=False)
    chosen = dispatch.resolve("wkv", "auto", k, v, None, w=w, u=u).name
    assert chosen == ("cpu" if cpu.available()[0] else "chunked")
    assert set(dispatch.backends("wkv")) == {"torch", "chunked", "chunked_compiled", "cpu", "triton"}
    assert dispatch.backends("wkv")["triton"].priority < dispatch.backends("wkv")["chunked"].priority
    y, _ = K.wkv(k, v, w=w, u=u, backend="chunked")
    torch.testing.assert_close(y, wkv_scan(k, v, w=w, u=u)[0], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("state", [True, False])
def test_triton_matches_reference_float64(wkv_triton_interpreter, state):
    assert_matches_reference(wkv_triton_interpreter.wkv, *inputs(T=9, B=2, C=5, state=state), atol=1e-12)


def test_triton_float32(wkv_triton_interpreter):
    assert_float32_within_1e5(wkv_triton_interpreter.wkv, *inputs(T=12, B=2, C=7, dtype=torch.float32, k_scale=3.0))


def test_triton_named_only(wkv_triton_interpreter):
    k, v, w, u, _ = inputs(T=3, dtype=torch.float32, state=False)
    assert dispatch.resolve("wkv", "auto", k, v, None, w=w, u=u).name != "triton"
    y, _ = K.wkv(k, v, w=w, u=u, backend="triton")
    torch.testing.assert_close(y, wkv_scan(k, v, w=w, u=u)[0], atol=1e-5, rtol=1e-5)


def test_triton_unavailable_without_gpu_or_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    k, v, w, u, _ = inputs(T=3, dtype=torch.float32, state=False)
    with pytest.raises(BackendUnavailableError):
        K.wkv(k, v, w=w, u=u, backend="triton")
