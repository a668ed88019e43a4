"""A malformed EGRU ``state`` (a bare tensor instead of ``EGRUState(c, y)``) gets the reference's ShapeError on every
backend: the shared per-call check (``kernels/egru/_common.call_problem``) takes the call instead of unpacking the
tensor, which raised a raw RuntimeError in the Triton backend's ``supports``. Runs on the CPU; the Triton backend
under ``TRITON_INTERPRET=1`` (the error comes from the argument check, before any kernel runs)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from spikeseq import kernels as K
from spikeseq.errors import ShapeError
from spikeseq.functional.egru import EGRUState
from spikeseq.kernels import dispatch
from spikeseq.kernels.egru import _common, cpu, gpu
from tests.kernels._egru_compare import make

MESSAGE = r"^EGRU state must be an EGRUState\(c, y\) of \[B, H\] tensors; pass state=None to start at rest$"


def _bad_states(state: EGRUState) -> list:
    c, y = state
    return [c, torch.stack([c, y]), [c, y], (c,), (c, y, c)]


@pytest.mark.parametrize("which", range(5))
def test_call_problem_takes_a_malformed_state_instead_of_unpacking_it(which):
    x, st, p = make(T=3, B=2, I=3, H=4)
    bad = _bad_states(st)[which]
    tensors = (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], p["threshold"])
    # before: a [2, H] (or [2, B, H]) tensor raised "Boolean value of Tensor with more than one value is ambiguous"
    assert _common.call_problem(x, bad, tensors, ("cpu",), "the test engine") is None
    # a well-formed state is still checked: another dtype is this backend's problem, not the reference's
    assert _common.call_problem(x, EGRUState(st.c.float(), st.y), tensors, ("cpu",), "the test engine") == (
        "a weight/state is cpu/torch.float32, x is cpu/torch.float64")
    assert _common.call_problem(x, st, tensors, ("cpu",), "the test engine") is None


def test_triton_supports_takes_a_bare_tensor_state(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # CPU tensors are then the Triton backend's; nothing compiles here
    x, st, p = make(T=3, B=2, I=3, H=4)
    assert gpu.supports(x, st.c, **p) is None
    assert gpu.supports(x, st, **p) is None
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert gpu.supports(x, st, **p) == "x is on cpu, this backend runs on cuda"  # a valid call: the device counts
    assert gpu.supports(x, st.c, **p) is None  # a malformed one is left to the reference's check, on every backend


def _available(name: str) -> bool:
    if name == "triton":
        return importlib.util.find_spec("triton") is not None
    if name == "cpu":
        return cpu.available()[0]
    return True


@pytest.mark.parametrize("backend", ["torch", "cpu", "triton", "auto"])
def test_every_backend_refuses_a_bare_tensor_state_with_the_reference_shape_error(monkeypatch, backend):
    if not _available(backend):
        pytest.skip(f"backend {backend!r} not available here")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert dispatch.triton_devices() == ("cuda", "cpu")
    x, st, p = make(T=3, B=2, I=3, H=4)
    if backend != "auto":
        chosen = dispatch.resolve("egru_scan", backend, x, st.c, **p)
        assert chosen.name == backend  # taken, not refused with a BackendUnavailableError
    with pytest.raises(ShapeError, match=MESSAGE):
        K.egru_scan(x, st.c, backend=backend, **p)
    with pytest.raises(ShapeError, match=MESSAGE):
        K.egru_scan(x, [st.c, st.y], backend=backend, **p)
