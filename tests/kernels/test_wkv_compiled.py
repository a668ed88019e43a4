"""The ``"chunked_compiled"`` WKV backend (the phases of ``kernels.wkv.phases`` through ``torch.compile``) against
the reference.

Every test asserts the results whatever happened to the compile (where it fails, the same phases run eagerly);
where ``torch.compile`` works here, the tests also assert that the compiled phases ran. Small sizes and, in float64,
three whole chunks of [8, 2, 3] throughout, so that each phase compiles once per dtype (the scans once more per
block shape). Tolerances as for the eager chunked form (tests/functional/test_wkv.py): float64 1e-12 absolute,
float32 within 1e-5 of the float64 reference.
"""

from __future__ import annotations

import pytest
import torch

from spikeseq import kernels as K
from spikeseq.functional import WKVState
from spikeseq.kernels.wkv import compiled, phases
from tests.kernels._wkv_compare import assert_float32_within_1e5, assert_matches_reference, inputs

D = torch.float64


def _form(*a, **kw):
    return compiled.wkv(*a, **kw, chunk=8)


def _assert_compiled_ran() -> None:
    status = compiled.status()
    if status.startswith("eager fallback"):
        pytest.skip(f"torch.compile does not work here ({status}); the eager phases gave the results above")
    assert status == "compiled"


def test_matches_reference_float64_with_a_short_last_chunk():
    # T 28: three whole chunks (compiled phases) and a last chunk of 4 (the eager chunked form, from their final
    # state); random state, every gradient
    assert_matches_reference(_form, *inputs(T=28, B=2, C=3), atol=1e-12)
    _assert_compiled_ran()


def test_scans_in_blocks_and_no_incoming_state(monkeypatch):
    # blocks of 2 chunks: the scans over the chunks run as two calls (2 + 1 chunks), their results joined
    monkeypatch.setattr(phases, "CARRY_BLOCK", 2)
    assert_matches_reference(_form, *inputs(T=24, B=2, C=3), atol=1e-12)
    assert_matches_reference(_form, *inputs(T=24, B=2, C=3, state=False), atol=1e-12)
    _assert_compiled_ran()


def test_capped_state_weight_and_wide_keys_float64():
    # as tests/functional/test_wkv.py: the state outweighs a chunk by more than e^30 (capped weights), and
    # spreads of k far above SPREAD inside chunks (those series through the reference loop)
    k, v, w, u, st = inputs(T=24, B=2, C=3)
    k = k * 0.5 - 45.0 * (torch.arange(24, dtype=D) // 8)[:, None, None]
    assert_matches_reference(_form, k, v, w * 0.01, u, st, atol=1e-12)
    assert_matches_reference(_form, *inputs(T=24, B=2, C=3, k_scale=80.0), atol=1e-10, rtol=1e-10)
    _assert_compiled_ran()


def test_float32_within_1e5_and_through_dispatch():
    k, v, w, u, st = inputs(T=16, B=2, C=3, dtype=torch.float32)
    assert_float32_within_1e5(_form, k, v, w, u, st)
    _assert_compiled_ran()
    # through the dispatcher: this backend at its default chunk (8: two whole chunks here), bit for bit
    y, s = K.wkv(k, v, st, w=w, u=u, backend="chunked_compiled")
    y_ref, s_ref = compiled.wkv(k, v, st, w=w, u=u, chunk=compiled.DEFAULT_CHUNK)
    for a, b in zip((y, *s), (y_ref, *s_ref), strict=True):
        assert torch.equal(a, b)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken(fn):
        def call(*args):
            raise RuntimeError("no C++ compiler (simulated)")
        return call

    monkeypatch.setattr(compiled, "_compile", broken)
    monkeypatch.setattr(compiled, "_state", {"phases": None, "failed": None, "ran": False})
    with pytest.warns(RuntimeWarning, match="simulated"):
        assert_matches_reference(_form, *inputs(T=28, B=2, C=3), atol=1e-12)
    assert compiled.status() == "eager fallback: RuntimeError: no C++ compiler (simulated)"


def test_not_compiled_until_a_full_chunk_runs(monkeypatch):
    monkeypatch.setattr(compiled, "_state", {"phases": None, "failed": None, "ran": False})
    k, v, w, u, _ = inputs(T=5, B=2, C=3)  # one chunk of 5 < 8: the eager chunked form only
    y, _ = compiled.wkv(k, v, WKVState(*inputs(T=1, B=2, C=3)[4]), w=w, u=u, chunk=8)
    assert y.shape == (5, 2, 3)
    assert compiled.status() == "not compiled yet"
