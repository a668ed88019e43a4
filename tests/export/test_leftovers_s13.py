"""Leftovers of review session 13 in export and verify: negative thresholds in NIR files of other tools, and
integer-valued inputs beyond Loihi's graded-spike payload."""

from __future__ import annotations

import re
import warnings

import nir
import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import ExportError
from spikeseq.export.nir import from_nir, read_nir, to_nir
from spikeseq.graph import ir, simulate
from spikeseq.graph.quantize import quantize
from spikeseq.graph.targets import graded_payload_bits
from spikeseq.verify import export_and_verify

DT = 1e-3


# ------------------------------------------------------------------------ 4. negative thresholds in NIR files
def _mv_lif_graph() -> nir.NIRGraph:
    """What a tool working in millivolts writes: rest and reset at -65 mV, threshold at -50 mV (NIR has no sign
    constraint on thresholds: targets.md §1.2, ``z = [v > v_thr]``)."""
    n = 3
    w = np.array([[30.0, 0.0], [0.0, 30.0], [15.0, 15.0]], np.float32)
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "fc": nir.Linear(weight=w),
               "lif": nir.LIF(tau=np.full(n, 10e-3, np.float32), r=np.ones(n, np.float32),
                              v_leak=np.full(n, -65.0, np.float32), v_threshold=np.full(n, -50.0, np.float32),
                              v_reset=np.full(n, -65.0, np.float32)),
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


def _reference(x: np.ndarray) -> np.ndarray:
    """Forward Euler at DT of the graph above, v starting at 0 (the interpreter's initial state)."""
    w = np.array([[30.0, 0.0], [0.0, 30.0], [15.0, 15.0]])
    beta = 1 - DT / 10e-3
    v = np.zeros((x.shape[1], 3))
    out = np.zeros((x.shape[0], x.shape[1], 3))
    for t in range(x.shape[0]):
        v = beta * v + (1 - beta) * (-65.0 + x[t] @ w.T)
        z = v > -50.0
        v = np.where(z, -65.0, v)
        out[t] = z
    return out


def test_negative_thresholds_from_other_tools_are_read_and_run_as_nir_defines_them(tmp_path):
    path = tmp_path / "mv.nir"
    nir.write(path, _mv_lif_graph())
    g = from_nir(read_nir(path), dt=DT)
    np.testing.assert_array_equal(g.nodes["lif"].v_threshold, [-50.0] * 3)
    x = (np.random.default_rng(0).random((60, 4, 2)) < 0.4).astype(np.float64)
    out = simulate(g, x).output
    ref = _reference(x)
    np.testing.assert_array_equal(out, ref)
    assert 0 < out[1:].mean() < 0.5  # v starts at 0 > -50: every neuron fires at t = 0, then only on input
    assert out[0].all()


@pytest.mark.parametrize("kind", ["IF", "LIF", "CubaLIF", "Threshold"])
def test_import_and_export_agree_on_negative_thresholds(kind):
    th = np.full(3, -0.5)
    n = {"IF": lambda: ir.IF(np.ones(3), th), "LIF": lambda: ir.LIF(np.full(3, 0.01), np.ones(3), th),
         "CubaLIF": lambda: ir.CubaLIF(np.full(3, 0.01), np.full(3, 0.01), np.ones(3), th),
         "Threshold": lambda: ir.Threshold(th)}[kind]()
    g = ir.Graph({"in": ir.Input((2,)), "fc": ir.Linear(np.ones((3, 2))), "n": n, "out": ir.Output((3,))},
                 [("in", "fc"), ("fc", "n"), ("n", "out")], dt=DT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ng = to_nir(g)  # spikeseq's NIR writer accepts them, as its reader does
    written = ng.nodes["n"].threshold if kind == "Threshold" else ng.nodes["n"].v_threshold
    np.testing.assert_array_equal(written, th)
    back = from_nir(ng, dt=DT).nodes["n"]
    np.testing.assert_array_equal(back.threshold if kind == "Threshold" else back.v_threshold, th)


def test_loihi_refuses_an_imported_negative_threshold_naming_the_node():
    ng = _mv_lif_graph()
    lif = ng.nodes["lif"]
    ng.nodes["lif"] = nir.LIF(tau=lif.tau, r=lif.r, v_leak=np.zeros(3, np.float32), v_reset=np.zeros(3, np.float32),
                              v_threshold=np.full(3, -0.5, np.float32))
    g = from_nir(ng, dt=DT)
    with pytest.raises(ExportError, match=r"node 'lif': negative threshold is not representable on Loihi"):
        quantize(g, "loihi")
    with pytest.raises(ExportError, match=r"node 'lif': Loihi resets v to 0, but v_reset is not zero"):
        quantize(from_nir(_mv_lif_graph(), dt=DT), "loihi")  # the millivolt model fails earlier, naming it too


def test_spikeseq_neurons_still_refuse_a_non_positive_threshold():
    from spikeseq.errors import ParameterError

    with pytest.raises(ParameterError, match=r"v_th must be a finite number > 0"):
        snn.LIF(tau_mem=5e-3, dt=DT, v_th=-0.5)


# ----------------------------------------------- 5. integer-valued inputs beyond the Loihi graded-spike payload
def _model() -> snn.Sequential:
    torch.manual_seed(0)
    m = snn.Sequential(torch.nn.Linear(4, 3), snn.LIF(tau_mem=5e-3, dt=DT, reset="zero"))
    with torch.no_grad():
        m[0].weight.mul_(3.0)
    return m


def _counts() -> torch.Tensor:
    """Count frames like N-MNIST's (small whole numbers)."""
    return torch.randint(0, 40, (20, 4, 4), generator=torch.Generator().manual_seed(0)).float()


def _payload_notes(r) -> list[str]:
    return [n for n in r.notes if "graded-spike payload" in n or "saturate" in n]


def test_integer_inputs_beyond_the_graded_payload_are_stated(tmp_path):
    assert graded_payload_bits() == 24
    x = _counts()
    x[0, 0, 0], x[3, 1, 2], x[5, 2, 1] = 1e12, -2e9, 2.0 ** 23  # whole numbers in float32; 2**23 - 1 is the limit
    r = export_and_verify(_model(), "loihi", tmp_path / "big.net", x, dt=DT)
    notes = _payload_notes(r)
    assert len(notes) == 1  # was none: the values went to the interpreter as integer payloads unremarked
    assert notes[0].startswith(f"3 of {x.numel()} integer input values are beyond the 24-bit graded-spike payload "
                               "(+-8388607; max |x| = 1e+12)")
    assert "scale the inputs (and the input weights) down" in notes[0]


def test_count_frames_that_fit_get_no_payload_note(tmp_path):
    x = _counts()
    x[0, 0, 0] = 2.0 ** 23 - 1  # the largest payload
    r = export_and_verify(_model(), "loihi", tmp_path / "fit.net", x, dt=DT)
    assert _payload_notes(r) == []
    spikes = (x > 20).float()
    assert _payload_notes(export_and_verify(_model(), "loihi", tmp_path / "s.net", spikes, dt=DT)) == []


def test_the_payload_note_is_for_loihi_only(tmp_path):
    x = _counts()
    x[0, 0, 0] = 1e12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = export_and_verify(_model(), "nir", tmp_path / "big.nir", x, dt=DT)
    assert _payload_notes(r) == []


# ------------------------------------------------------------------ 7. non-finite DelayLinear weights and delays
def _delay_layer(what: str, value: float, mode: str):
    from spikeseq.nn.delay import DelayLinear

    layer = DelayLinear(4, 3, 3, bias=True, generator=torch.Generator().manual_seed(0))
    layer.train(mode == "train")
    with torch.no_grad():
        getattr(layer, what)[(1, 2) if what != "bias" else 1] = value
    return layer


@pytest.mark.parametrize("mode", ["train", "eval", "eval_grad"])
@pytest.mark.parametrize("what,value,error,where", [
    ("weight", float("nan"), "NonFiniteError", "weight[1, 2]"),
    ("weight", float("inf"), "NonFiniteError", "weight[1, 2]"),
    ("bias", float("-inf"), "NonFiniteError", "bias[1]"),
    ("delay", float("inf"), "ParameterError", "delay[1, 2]"),   # eval clamped it to max_delay and used it
    ("delay", float("-inf"), "ParameterError", "delay[1, 2]"),  # eval clamped it to 0
    ("delay", float("nan"), "ParameterError", "delay[1, 2]"),
])
def test_delay_linear_refuses_non_finite_parameters_by_name(mode, what, value, error, where):
    from spikeseq import errors

    layer = _delay_layer(what, value, mode)
    x = torch.rand(6, 2, 4)
    pattern = (rf"the delay layer's parameter {what}" + (": the delays" if what == "delay" else "")
               + rf" contains? NaN or Inf \(first at {re.escape(where)}")
    with torch.set_grad_enabled(mode != "eval"), pytest.raises(getattr(errors, error), match=pattern):
        layer(x)  # weight / bias: was accepted, NaN or Inf outputs


def test_delay_linear_export_refuses_an_infinite_delay():
    from spikeseq.errors import ParameterError
    from spikeseq.graph import trace

    layer = _delay_layer("delay", float("inf"), "eval")
    m = snn.Sequential(layer, snn.LIF(tau_mem=5e-3, dt=DT, reset="zero")).eval()
    with pytest.raises(ParameterError, match=r"parameter delay: the delays contain NaN or Inf \(first at delay\[1, "
                                             r"2\]"):
        trace(m, dt=DT, input_shape=(4,))  # was traced with the delay clamped to max_delay


def test_functional_delay_paths_name_the_parameter():
    from spikeseq.errors import NonFiniteError
    from spikeseq.functional.delay import delay_conv, delay_gaussian, delay_integer, delay_shift_reference

    w, d, x = torch.ones(3, 4), torch.tensor([[0.0, 1.0, 2.0, 3.0]] * 3), torch.rand(5, 2, 4)
    bad_w = w.clone()
    bad_w[2, 3] = float("nan")
    bad_b = torch.zeros(3)
    bad_b[0] = float("inf")
    for call in (lambda **k: delay_gaussian(x, delay=d, sigma=1.0, max_delay=3, **k),
                 lambda **k: delay_integer(x, delay=d, max_delay=3, **k),
                 lambda **k: delay_shift_reference(x, delay=d, max_delay=3, **k)):
        with pytest.raises(NonFiniteError, match=r"parameter weight contains NaN or Inf \(first at weight\[2, 3\]\)"):
            call(weight=bad_w)
        with pytest.raises(NonFiniteError, match=r"parameter bias contains NaN or Inf \(first at bias\[0\]\)"):
            call(weight=w, bias=bad_b)
    kernel = torch.ones(3, 4, 4)
    kernel[1, 0, 2] = float("inf")
    with pytest.raises(NonFiniteError, match=r"parameter kernel contains NaN or Inf \(first at kernel\[1, 0, 2\]\)"):
        delay_conv(x, kernel)
    y, _ = delay_integer(x, weight=w, delay=d, max_delay=3)  # finite parameters still run
    assert bool(torch.isfinite(y).all())
