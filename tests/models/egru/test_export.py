"""EGRU models lowered to EGRUCell populations: float interpreter == torch model, SpiNNaker2 fixed point, Loihi
refusal naming the gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq.errors import ExportError
from spikeseq.functional.egru import egru_step
from spikeseq.graph import ir, trace
from spikeseq.graph.quantize import quantize
from spikeseq.graph.simulate import simulate
from spikeseq.models import registry
from spikeseq.models.egru.lower import one_hot


def _lm(layers=2, dtype=torch.float64, **kw):
    torch.manual_seed(0)
    m = registry.build("egru_lm", vocab=11, embed=6, hidden=8, layers=layers, thr_mean=0.3, **kw).to(dtype).eval()
    return m, trace(m, dt=1e-3, input_shape=(11,)), torch.randint(0, 11, (9, 3))


def test_lm_float_interpreter_equals_model_float64():
    m, g, tok = _lm()
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "EGRUCell", "EGRUCell", "Affine", "Output"]
    with torch.no_grad():
        logits, _ = m(tok)
        _, _, events = m.forward_events(tok)
    r = simulate(g, one_hot(tok.numpy(), 11))
    np.testing.assert_allclose(r.output, logits.numpy(), rtol=0, atol=1e-12)
    # graded events: the cell sends y = e * c~ exactly where the model's events fire
    assert np.array_equal(r.traces["rnn_l1"] != 0, events[1].numpy() > 0)


def test_cell_equals_functional_step():
    torch.manual_seed(1)
    h, i = 5, 4
    w = dict(weight_ih=torch.randn(3 * h, i, dtype=torch.float64), weight_hh=torch.randn(3 * h, h, dtype=torch.float64),
             bias_ih=torch.randn(3 * h, dtype=torch.float64), bias_hh=torch.randn(3 * h, dtype=torch.float64),
             threshold=torch.rand(h, dtype=torch.float64) * 0.5)
    cell = ir.EGRUCell(**{k: v.numpy() for k, v in w.items()})
    g = ir.Graph({"input": ir.Input((i,), "dense"), "cell": cell, "output": ir.Output((h,))},
                 [("input", "cell"), ("cell", "output")], dt=1e-3)
    x = torch.randn(6, 2, i, dtype=torch.float64)
    st, ys = None, []
    for t in range(6):
        out, st = egru_step(x[t], st, **w)
        ys.append(out.y)
    np.testing.assert_allclose(simulate(g, x.numpy()).output, torch.stack(ys).numpy(), rtol=0, atol=1e-13)


def test_lm_float32_model_within_float32_rounding():
    m, g, tok = _lm(dtype=torch.float32)
    with torch.no_grad():
        logits, _ = m(tok)
    # float64 interpreter vs float32 torch: rounding of ~10 float32 ops per value
    np.testing.assert_allclose(simulate(g, one_hot(tok.numpy(), 11)).output, logits.numpy(), rtol=0, atol=1e-5)


def test_classifier_float_interpreter_equals_model():
    torch.manual_seed(0)
    m = registry.build("egru_classifier", input_size=6, n_classes=3, hidden=7).double().eval()
    g = trace(m, dt=1e-3, input_shape=(2, 3), input_payload="dense")
    x = torch.randn(5, 2, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        y, _ = m(x)
    np.testing.assert_allclose(simulate(g, x.numpy()).output, y.numpy(), rtol=0, atol=1e-12)


def test_spinnaker2_quantisation_per_gate_int8():
    m, g, tok = _lm()
    q = quantize(g, "spinnaker2", payload_frac_bits=7)
    cell, w = q.nodes["rnn_l0"], g.nodes["rnn_l0"].weight_ih
    h = 8
    for k in range(3):   # per gate: the largest |weight| maps to 127
        wq = cell.weight_ih[k * h:(k + 1) * h]
        assert np.array_equal(wq, np.round(wq)) and np.abs(wq).max() == 127
        assert cell.ih_scale[k] == pytest.approx(127 / np.abs(w[k * h:(k + 1) * h]).max())
    # layer 1 reads layer 0's int8 payload: its input divisor carries the 2**7 of that payload
    s1 = 127 / np.abs(g.nodes["rnn_l1"].weight_ih[:h]).max()
    assert q.nodes["rnn_l1"].ih_scale[0] == pytest.approx(s1 * 128)
    assert q.nodes["rnn_l0"].hh_scale[0] == pytest.approx(128 * 127 / np.abs(g.nodes["rnn_l0"].weight_hh[:h]).max())
    r = simulate(g, one_hot(tok.numpy(), 11), numerics="spinnaker2", quantize_kwargs={"payload_frac_bits": 7},
                 record=["rnn_l0", "rnn_l1", "output"])
    from spikeseq.models.egru.energy import token_counts

    rf = simulate(g, one_hot(tok.numpy(), 11))   # float timing: no extra hop steps, so counts cover T steps
    c = token_counts(g, one_hot(tok.numpy(), 11), rf.traces)
    assert rf.synops["rnn_l0"] + rf.synops["rnn_l1"] == round((c["input_synops"] + c["recurrent_synops"]) * tok.numel())
    raw = r.traces["rnn_l0"] * 128   # recorded in float units: payload / 2**7
    assert np.allclose(raw, np.round(raw)) and np.abs(raw).max() <= 127
    with torch.no_grad():
        logits, _ = m(tok)
    err = np.abs(r.output - logits.numpy()).max()
    assert 0 < err < 0.02


def test_loihi_refusal_names_the_gates():
    _, g, tok = _lm(layers=1)
    with pytest.raises(ExportError, match=r"'rnn_l0' \(EGRUCell\).*r \* \(R_n y\[t-1\] \+ b_hn\).*update gate z"):
        quantize(g, "loihi")


def test_zoneout_refused_by_name():
    torch.manual_seed(0)
    m = registry.build("egru_lm", vocab=5, embed=3, hidden=4, zoneout=0.1).eval()
    with pytest.raises(ExportError, match=r"zoneout=0\.1"):
        trace(m, dt=1e-3, input_shape=(5,))


def test_export_and_verify_language_model_on_token_ids(tmp_path):
    from spikeseq.verify import export_and_verify

    m, _, tok = _lm(layers=1, dtype=torch.float32)
    labels = torch.randint(0, 11, (3, 9))                 # [B, T] next tokens
    res = export_and_verify(m, "spinnaker2", tmp_path / "net.json", tok.float(), labels, dt=1e-3,
                            readout="per_step", payload_frac_bits=7)
    with torch.no_grad():
        pred = m(tok)[0].argmax(-1).T.numpy()
    assert res.model_accuracy == pytest.approx(float((pred == labels.numpy()).mean()))
    assert 0 < res.output_max_abs_diff < 0.05 and res.prediction_agreement >= 0.9
    assert res.mapping["units_used"] == 3                 # one-hot source, the cell, the readout


def test_recipe_exports_spinnaker2_with_int8_payloads():
    from pathlib import Path

    from spikeseq.train.config import load_config

    cfg = load_config(Path(__file__).parents[3] / "examples/egru/lm_tinyshakespeare_pruned.toml")
    assert cfg.export.dt == 1e-3 and cfg.export.spinnaker2 == {"payload_frac_bits": 7}


def test_target_mode_runs_the_cell_on_spinnaker2_and_refuses_it_on_loihi_by_name():
    from spikeseq.errors import ConfigError
    from spikeseq.graph.target_mode import TargetSettings, check_target

    m, _, _ = _lm(layers=1, dtype=torch.float32)
    check_target(m, TargetSettings(target="spinnaker2", payload_frac_bits=7), dt=1e-3, input_shape=())   # token ids
    with pytest.raises(ConfigError, match=r"'rnn_l0' \(EGRUCell\) does not map to Loihi-style cores.*update gate"):
        check_target(m, TargetSettings(target="loihi"), dt=1e-3, input_shape=())
