"""EGRU bad input found by probing: mismatched dtypes and devices, non-finite inputs, half-precision stacks,
constructor arguments, zoneout masks, token ids and pruning arguments get specific errors (or work)."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import BackendUnavailableError, DTypeError, NonFiniteError, ParameterError, ShapeError
from spikeseq.functional.egru import EGRUState, egru_scan, egru_step
from spikeseq.kernels.egru import cpu
from spikeseq.models.egru import EGRULM, Pruner, PruneSchedule, magnitude_mask, to_csr
from spikeseq.nn.egru import EGRU, threshold_ceiling

needs_cpu_kernel = pytest.mark.skipif(not cpu.available()[0], reason="native library not built")


def _x(t: int = 5, b: int = 3, i: int = 6) -> torch.Tensor:
    return torch.randn(t, b, i, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("backend", ["torch", "auto", pytest.param("cpu", marks=needs_cpu_kernel)])
@pytest.mark.parametrize("which", ["bias_ih_l0", "bias_hh_l0"])
def test_a_bias_of_another_dtype_is_refused_not_read_as_raw_memory(backend, which):
    m = EGRU(6, 19, backend=backend, seed=0)
    getattr(m, which).data = getattr(m, which).data.double()
    with pytest.raises((DTypeError, BackendUnavailableError), match="float64"):
        m(_x())


def test_input_and_state_dtypes_must_match_the_module():
    m = EGRU(6, 19, num_layers=2, seed=0, backend="torch")
    with pytest.raises(DTypeError, match=r"x is torch.float64 but the weights are torch.float32"):
        m(_x().double())
    st = EGRUState(torch.zeros(2, 3, 19, dtype=torch.float64), torch.zeros(2, 3, 19, dtype=torch.float64))
    with pytest.raises(DTypeError, match=r"state.c is torch.float64, expected torch.float32"):
        m(_x(), st)
    with pytest.raises(DTypeError, match="bias_hh must be a floating tensor"):
        p = dict(weight_ih=m.weight_ih_l0, weight_hh=m.weight_hh_l0, bias_ih=m.bias_ih_l0,
                 bias_hh=torch.zeros(57, dtype=torch.int64), threshold=m.threshold_l0)
        egru_scan(_x(), **p)


@pytest.mark.parametrize("backend", ["torch", pytest.param("cpu", marks=needs_cpu_kernel)])
def test_non_finite_input_is_refused_even_where_the_output_would_hide_it(backend):
    m = EGRU(6, 19, seed=0, backend=backend)
    x = _x()
    x[0, 0, 0] = float("inf")          # tanh saturates: the output alone would stay finite
    with pytest.raises(NonFiniteError, match="x contains NaN or Inf"):
        m(x)
    with torch.no_grad():               # a NaN in an input column whose weights are all pruned
        m.weight_ih_l0[:, 0] = 0.0
    x = _x()
    x[1, 2, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="x contains NaN or Inf"):
        m(x)


def test_egru_step_checks_finiteness_and_takes_a_step_mask():
    m = EGRU(6, 19, seed=0, backend="torch")
    p = m.layer_params(0)
    x = _x()[0]
    with pytest.raises(NonFiniteError):
        egru_step(torch.full_like(x, float("nan")), **p)
    mask = torch.full((3, 19), 0.5)
    (y2, _), _ = egru_step(x, zoneout=mask, **p)
    (y3, _), _ = egru_step(x, zoneout=mask.unsqueeze(0), **p)
    assert torch.equal(y2, y3)
    with pytest.raises(ParameterError, match=r"values must lie in \[0, 1\]"):
        egru_step(x, zoneout=torch.full((3, 19), 2.0), **p)


def test_half_precision_stack_runs_and_keeps_high_thresholds_below_one():
    assert threshold_ceiling(torch.float32) == pytest.approx(0.999)
    assert threshold_ceiling(torch.bfloat16) == 0.99609375          # 0.999 rounds to 1.0 in bfloat16
    m = EGRU(6, 19, num_layers=3, seed=0, backend="torch").to(torch.bfloat16)
    with torch.no_grad():
        m.threshold_l1.fill_(0.9985)
    out, st = m(_x().bfloat16())
    assert out.y.shape == (5, 3, 19) and out.y.dtype == torch.float32 and st.c.dtype == torch.float32
    ref = EGRU(6, 19, num_layers=3, seed=0, backend="torch")
    with torch.no_grad():
        ref.threshold_l1.fill_(0.9985)
    # the same cell as in float32 up to bfloat16 rounding of the products: most events agree
    agree = float((out.events == ref(_x())[0].events).float().mean())
    assert out.events.shape == (3, 5, 3, 19) and agree > 0.9


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden_size=2.5), "hidden_size must be an integer"),
    (dict(hidden_size=True), "hidden_size must be an integer"),
    (dict(num_layers=1.5), "num_layers must be an integer"),
    (dict(zoneout="0.1"), "zoneout must be a probability"),
    (dict(dropconnect=float("nan")), "dropconnect must be a probability"),
    (dict(backend="nope"), "unknown EGRU backend 'nope'"),
])
def test_constructor_arguments_are_checked_at_construction(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        EGRU(**{"input_size": 6, "hidden_size": 19, **kwargs})


def test_language_model_refuses_fractional_and_non_finite_token_ids():
    m = EGRULM(9, embed=4, hidden=8, seed=0)
    logits, _ = m(torch.full((5, 2), 2.0))             # integral floats are ids
    assert logits.shape == (5, 2, 9)
    with pytest.raises(ShapeError, match="whole numbers"):
        m(torch.full((5, 2), 2.7))
    with pytest.raises(ShapeError, match="NaN or Inf"):
        m(torch.full((5, 2), float("nan")))
    with pytest.raises(ParameterError, match="finite number >= 0"):
        EGRULM(9, embed=4, hidden=8, activity=float("inf"))


def test_pruning_arguments_get_specific_errors():
    with pytest.raises(ParameterError, match="prune must be a table"):
        EGRULM(9, embed=4, hidden=8, prune=0.5)
    with pytest.raises(ParameterError, match=r"unknown prune key\(s\) \['level'\]"):
        EGRULM(9, embed=4, hidden=8, prune=dict(level=0.5))
    with pytest.raises(ParameterError, match="whole number of optimizer steps"):
        PruneSchedule(0.5, every=2.5)
    with pytest.raises(ParameterError, match="whole number of optimizer steps"):
        PruneSchedule(0.5, end=float("inf"))
    m = EGRULM(9, embed=4, hidden=8, seed=0)
    with pytest.raises(ParameterError, match=r"no parameter named \['rnn.weight_ih_l9'\]"):
        Pruner(m, ["rnn.weight_ih_l9"], PruneSchedule(0.5))
    with pytest.raises(ParameterError, match="at least one weight"):
        Pruner(m, [], PruneSchedule(0.5, scope="global"))
    with pytest.raises(ShapeError, match="2-D weight matrix"):
        to_csr(torch.ones(4))
    with pytest.raises(ParameterError, match=r"sparsity must lie in \[0, 1\]"):
        magnitude_mask(torch.ones(4), float("nan"))


@pytest.mark.parametrize("backend", ["torch", pytest.param("cpu", marks=needs_cpu_kernel)])
@pytest.mark.parametrize("pruned", [False, True])
def test_inference_writes_the_stacked_events_in_place_with_the_same_values(backend, pruned):
    m = EGRU(6, 19, num_layers=3, seed=0, backend=backend)
    if pruned:                                       # the fused inference path of the C++ loop
        with torch.no_grad():
            for name, w in m.named_parameters():
                if name.startswith("weight"):
                    w.mul_((torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) > 0.9).float())
    x = _x(7, 4)
    out, st = m(x)                                   # gradient mode: the layers' events are stacked
    with torch.no_grad():
        out2, st2 = m(x)
    assert torch.equal(out.y.detach(), out2.y) and torch.equal(out.events.detach(), out2.events)
    assert torch.equal(st.c.detach(), st2.c) and out2.events.shape == (3, 7, 4, 19)


def test_events_out_is_checked():
    m = EGRU(6, 19, seed=0, backend="torch")
    p = m.layer_params(0)
    with pytest.raises(ParameterError, match="events_out is for inference"):
        egru_scan(_x(), events_out=torch.empty(5, 3, 19), **p)
    with torch.no_grad(), pytest.raises(ShapeError, match=r"events_out must be a contiguous \(5, 3, 19\)"):
        egru_scan(_x(), events_out=torch.empty(5, 3, 18), **p)
