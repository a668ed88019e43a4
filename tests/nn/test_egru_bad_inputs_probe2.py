"""EGRU bad input found by a second probe (issue 16): ``EGRU.step`` (it returned a ``[1, B, H]`` tensor and, with
``batch_first``, ran the batch as a sequence of batch 1), a bare tensor as the state of the C++ backend (a raw
RuntimeError where the reference raises a ShapeError), constructor types (seed, thr_mean, flags) and Pruner names;
plus the edge sizes and layouts the C++ backend must compute exactly as the reference."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from spikeseq import kernels
from spikeseq.errors import DTypeError, ParameterError, ShapeError
from spikeseq.functional.egru import EGRUState, beta_threshold_init
from spikeseq.kernels.egru import cpu
from spikeseq.models.egru import EGRULM, Pruner, PruneSchedule
from spikeseq.nn.egru import EGRU, EGRUStackOutput

needs_cpu_kernel = pytest.mark.skipif(not cpu.available()[0], reason="native library not built")


def _x(t: int = 5, b: int = 3, i: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(t, b, i, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------- EGRU.step
@pytest.mark.parametrize("batch_first", [False, True])
def test_step_returns_one_step_of_the_sequence_with_its_events(batch_first):
    m = EGRU(6, 19, num_layers=2, batch_first=batch_first, seed=0)
    x = _x()                                            # [T, B, I]
    full, final = m(x.transpose(0, 1) if batch_first else x)
    y_seq = full.y.transpose(0, 1) if batch_first else full.y                      # [T, B, H]
    e_seq = full.events.transpose(1, 2) if batch_first else full.events            # [L, T, B, H]
    state = None
    for t in range(x.shape[0]):
        out, state = m.step(x[t], state)
        assert isinstance(out, EGRUStackOutput)
        assert out.y.shape == (3, 19) and out.events.shape == (2, 3, 19)
        torch.testing.assert_close(out.y, y_seq[t], rtol=0, atol=1e-6)
        assert torch.equal(out.events, e_seq[:, t])
    torch.testing.assert_close(state.c, final.c, rtol=0, atol=1e-6)


def test_step_refuses_a_sequence():
    with pytest.raises(ShapeError, match=r"EGRU.step takes one step \[B, 6\], got \(5, 3, 6\)"):
        EGRU(6, 4).step(_x())


# ------------------------------------------------------------------------------------ malformed state
@pytest.mark.parametrize("backend", ["torch", "auto", pytest.param("cpu", marks=needs_cpu_kernel)])
def test_a_bare_tensor_as_state_gets_the_same_shape_error_on_every_backend(backend):
    m = EGRU(6, 4, seed=0)
    with pytest.raises(ShapeError, match=r"EGRU state must be an EGRUState\(c, y\) of \[B, H\] tensors"):
        kernels.egru_scan(_x(), torch.zeros(3, 4), backend=backend, **m.layer_params(0))


@pytest.mark.parametrize("bad", ["float64", "meta", "int"])
@pytest.mark.parametrize("backend", ["torch", "auto", pytest.param("cpu", marks=needs_cpu_kernel)])
def test_a_state_of_another_dtype_or_device_gets_the_references_error_on_every_backend(backend, bad):
    """The C++ backend refused these as BackendUnavailableError ("cpu") or with a fallback warning ("auto") before
    the reference's DTypeError; now every backend raises the reference's error, without a warning."""
    m = EGRU(6, 4, num_layers=2, seed=0, backend=backend)
    kw = {"float64": dict(dtype=torch.float64), "meta": dict(device="meta"), "int": dict(dtype=torch.int32)}[bad]
    state = EGRUState(torch.zeros(2, 3, 4, **kw), torch.zeros(2, 3, 4, **kw))
    match = {"float64": r"EGRU state.c is torch.float64, expected torch.float32 for torch.float32 input",
             "meta": r"EGRU state.c is on meta but x is on cpu", "int": r"state.c must be a floating-point tensor"}[bad]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DTypeError, match=match):
            m(_x(), state)


# ----------------------------------------------------------------------------------- constructor types
@pytest.mark.parametrize("kwargs, match", [
    (dict(seed=1.5), "seed must be a whole number or None, got 1.5"),
    (dict(seed="a"), "seed must be a whole number or None, got 'a'"),
    (dict(thr_mean="0.3"), r"thr_mean must be a number in \(0, 1\).*got '0.3'"),
    (dict(batch_first="no"), "batch_first must be True or False, got 'no'"),
    (dict(bias=None), "bias must be True or False, got None"),
])
def test_constructor_types_are_refused_with_the_argument_named(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        EGRU(6, 4, **kwargs)


# --------------------------------------------------------------------------------------------- Pruner
def test_pruner_names_must_be_distinct_weight_matrices():
    lm = EGRULM(10, embed=4, hidden=8)
    sched = PruneSchedule(0.5, 0, 2, 1)
    with pytest.raises(ParameterError, match=r"Pruner takes a list of parameter names, got 'rnn.weight_ih_l0'"):
        Pruner(lm, "rnn.weight_ih_l0", sched)  # was read character by character
    with pytest.raises(ParameterError, match=r"lists \['rnn.weight_ih_l0'\] more than once"):
        Pruner(lm, ["rnn.weight_ih_l0", "rnn.weight_ih_l0"], sched)
    with pytest.raises(ParameterError, match=r"prunes weight matrices, not \['rnn.threshold_l0 \(8,\)'\]"):
        Pruner(lm, ["rnn.threshold_l0"], sched)  # zeroed thresholds fired on any positive state
    thr = lm.rnn.threshold_l0.detach().clone()
    p = Pruner(lm, ["rnn.weight_ih_l0", "rnn.weight_hh_l0"], sched)
    for _ in range(3):
        p.step(lm)
    assert torch.equal(lm.rnn.threshold_l0, thr)
    assert lm.weight_sparsity() == {"weight_ih_l0": 0.5, "weight_hh_l0": 0.5}


def test_pruning_an_already_pruned_model_keeps_the_pruned_entries_and_reaches_the_new_level():
    lm = EGRULM(10, embed=4, hidden=8, prune=dict(sparsity=0.5, start=0, end=2, every=1))
    for _ in range(3):
        lm.train_step_end()
    names = ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    zero_before = {n: dict(lm.named_parameters())[n] == 0 for n in names}
    lm.pruner = Pruner(lm, names, PruneSchedule(0.75, 0, 2, 1))
    for _ in range(3):
        lm.train_step_end()
    assert lm.weight_sparsity() == {"weight_ih_l0": 0.75, "weight_hh_l0": 0.75}
    for n in names:  # magnitude pruning of the pruned matrix drops the zeros first
        assert bool((dict(lm.named_parameters())[n][zero_before[n]] == 0).all())


# ------------------------------------------------------------------ the C++ backend on the probed edge cases
def _params(i: int, h: int, dtype=torch.float64, bias: bool = True, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    k = 3 / math.sqrt(h)
    u = lambda *s: ((torch.rand(*s, generator=g, dtype=torch.float64) * 2 - 1) * k).to(dtype)  # noqa: E731
    return dict(weight_ih=u(3 * h, i), weight_hh=u(3 * h, h), bias_ih=u(3 * h) / 3 if bias else None,
                bias_hh=u(3 * h) / 3 if bias else None,
                threshold=beta_threshold_init(h, 0.3, generator=g).to(dtype))


def _case(name: str):
    """``(x, state, params)`` of one probed case (float64 unless the case is about float32)."""
    p, state = _params(5, 4), None
    x = _x(6, 3, 5).double()
    if name == "hidden 1":
        p = _params(5, 1)
    elif name == "batch 1":
        x = x[:, :1]
    elif name == "T 1":
        x = x[:1]
    elif name == "hidden 1 batch 1 T 1":
        p, x = _params(5, 1), x[:1, :1]
    elif name == "x transposed view":
        x = _x(3, 6, 5).double().transpose(0, 1)
    elif name == "x strided":
        x = _x(12, 3, 10).double()[::2, :, ::2]
    elif name == "x constant over time (stride 0)":
        x = _x(1, 3, 5).double().expand(6, 3, 5)
    elif name == "weights transposed views":
        p["weight_ih"] = p["weight_ih"].t().contiguous().t()
        p["weight_hh"] = p["weight_hh"].t().contiguous().t()
    elif name == "strided threshold and state":
        p["threshold"] = torch.stack([p["threshold"], p["threshold"]], 1)[:, 0]
        state = EGRUState(torch.rand(3, 8, dtype=torch.float64)[:, ::2] * 0.5,
                          torch.rand(4, 3, dtype=torch.float64).t() * 0.5)
    elif name == "all weights pruned":
        p["weight_ih"], p["weight_hh"] = torch.zeros_like(p["weight_ih"]), torch.zeros_like(p["weight_hh"])
    elif name == "float32":
        p = {k: v.float() for k, v in p.items()}
        x = x.float()
    return x, state, p


CASES = ["hidden 1", "batch 1", "T 1", "hidden 1 batch 1 T 1", "x transposed view", "x strided",
         "x constant over time (stride 0)", "weights transposed views", "strided threshold and state",
         "all weights pruned", "float32"]


@needs_cpu_kernel
@pytest.mark.parametrize("name", CASES)
def test_cpu_backend_matches_the_reference_on_edge_sizes_and_layouts(name):
    x0, s0, p0 = _case(name)
    tol = 1e-5 if x0.dtype == torch.float32 else 1e-12
    res = {}
    for backend in ("torch", "cpu"):
        x = x0.detach().requires_grad_()
        p = {k: None if v is None else v.detach().requires_grad_() for k, v in p0.items()}
        s = None if s0 is None else EGRUState(*(t.detach().requires_grad_() for t in s0))
        out, st = kernels.egru_scan(x, s, backend=backend, **p)
        w = torch.linspace(0.1, 1.0, out.y.shape[-1], dtype=out.y.dtype)
        ((out.y * w).sum() + 0.3 * st.c.sum() + 0.2 * (out.e * w).sum()).backward()
        grads = [x.grad, *(v.grad for v in p.values() if v is not None), *(() if s is None else (s.c.grad, s.y.grad))]
        res[backend] = (out.y, out.e, st.c, st.y, grads)
    ref, got = res["torch"], res["cpu"]
    assert torch.equal(ref[1], got[1])  # the same events
    for a, b in zip(ref[:4], got[:4], strict=True):
        torch.testing.assert_close(b.detach(), a.detach(), rtol=0, atol=tol)
    for a, b in zip(ref[4], got[4], strict=True):
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)


@needs_cpu_kernel
def test_float64_module_gives_the_float32_modules_events():
    m = EGRU(16, 32, num_layers=2, seed=0)
    x = _x(20, 8, 16)
    with torch.no_grad():
        e32 = m(x)[0].events
        e64 = m.double()(x.double())[0].events
    assert torch.equal(e32, e64.float())


def test_autocast_changes_only_events_at_the_threshold():
    """Under bfloat16 autocast only the matrix products round; the state and the comparison ``c~ > theta`` stay
    float32 (module docstring), so an event can flip only where ``c~`` lies within the products' rounding of the
    threshold: never far from it."""
    m = EGRU(16, 32, seed=0, backend="torch")
    x = _x(20, 8, 16)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = m(x)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(x)[0]
    flipped = low.events != ref.events
    assert low.y.dtype == torch.float32
    assert float(flipped.float().mean()) < 0.01
    # a flipped event's float32 output is its c~: within bfloat16 rounding (2^-8 relative, a few products) of theta
    theta = m.layer_params(0)["threshold"].detach().expand_as(ref.y)
    c_tilde = torch.where(ref.events.bool()[0], ref.y, low.y)
    assert bool(((c_tilde - theta).abs()[flipped[0]] < 0.05).all())
