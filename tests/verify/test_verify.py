"""export_and_verify: artifacts for every target, agreement numbers, JSON-able results, atomic failure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import ExportError, ParameterError
from spikeseq.graph import ir, simulate
from spikeseq.nn.recurrent import RLIF
from spikeseq.verify import export_and_verify

DT = 1e-3


def _model(reset="zero"):
    torch.manual_seed(0)
    m = snn.Sequential(RLIF(10, 16, dt=DT, tau_mem=5e-3, reset=reset), torch.nn.Linear(16, 4),
                       snn.LIF(tau_mem=5e-3, dt=DT, reset=reset))
    with torch.no_grad():
        m[0].fc.weight.mul_(3)
        m[0].rec.weight.mul_(2)
        m[1].weight.mul_(3)
    return m


def _x():
    return (torch.rand(40, 6, 10, generator=torch.Generator().manual_seed(1)) < 0.3).float()


@pytest.mark.parametrize("target,name", [("nir", "m.nir"), ("loihi", "m.net"), ("spinnaker2", "m.json")])
def test_every_target(tmp_path, target, name):
    m = _model()
    labels = torch.arange(6) % 4
    r = export_and_verify(m, target, tmp_path / name, _x(), labels, dt=DT)
    assert (tmp_path / name).exists()
    assert set(r.layer_agreement) == {"0_lif", "2_lif"}
    if target == "nir":
        assert r.output_agreement == 1.0 and all(v == 1.0 for v in r.layer_agreement.values())
        assert r.mapping is None
    else:
        assert r.layer_agreement["0_lif"] > 0.95 and r.mapping["fits"]
    with torch.no_grad():
        pred = m(_x())[0].sum(0).argmax(-1).numpy()
    assert r.model_accuracy == pytest.approx(float(np.mean(pred == labels.numpy())))
    d = json.loads(json.dumps(r.to_dict()))
    assert d["target"] == target and d["artifact"].endswith(name)
    assert "| 0_lif |" in r.to_markdown()


def test_failures_leave_nothing(tmp_path):
    with pytest.raises(ExportError, match="subtract"):
        export_and_verify(_model(reset="subtract"), "loihi", tmp_path / "m.net", _x(), dt=DT)
    with pytest.raises(ParameterError, match="target"):
        export_and_verify(_model(), "truenorth", tmp_path / "m.x", _x(), dt=DT)
    with pytest.raises(ParameterError, match="dt"):
        export_and_verify(_model(), "nir", tmp_path / "m.nir", _x(), dt=None)
    assert list(tmp_path.iterdir()) == []


def test_graded_spikes_carry_the_membrane():
    lif = ir.LIF(tau=np.full(1, 1e-2), r=np.full(1, 1.0 / (1 - np.exp(-0.1))), v_threshold=np.ones(1), graded=True)
    g = ir.Graph({"input": ir.Input((1,)), "lin": ir.Linear(np.full((1, 1), 0.7)), "lif": lif,
                  "lin2": ir.Linear(np.full((1, 1), 2.0)), "li": ir.LI(tau=np.full(1, 1e-2), r=np.full(1, 1.0)),
                  "output": ir.Output((1,))},
                 [("input", "lin"), ("lin", "lif"), ("lif", "lin2"), ("lin2", "li"), ("li", "output")], dt=1e-3)
    assert g.payloads()["lif"] == "graded"
    r = simulate(g, np.ones((3, 1, 1)))
    beta = np.exp(-0.1)
    v2 = beta * 0.7 + 0.7  # 1.333 > 1: the spike carries the membrane value
    np.testing.assert_allclose(r.traces["lif"][:, 0, 0], [0.0, v2, 0.0])
    assert r.synops["lin2"] == 1


def test_spike_event_metrics_known_answer():
    """Hand-counted: model spikes (t, n) = (2, 0), (7, 0); graph spikes (3, 0), (7, 0), (5, 1).
    Matched: (7, 0). Offsets of graph spikes to the nearest model spike: (3, 0) -> +1 (after t = 2), (7, 0) -> 0,
    (5, 1) -> none (neuron 1 never fires in the model)."""
    from spikeseq.verify import spike_event_metrics

    m = np.zeros((10, 1, 2))
    g = np.zeros((10, 1, 2))
    m[2, 0, 0] = m[7, 0, 0] = 1
    g[3, 0, 0] = g[7, 0, 0] = g[5, 0, 1] = 1
    r = spike_event_metrics(m, g)
    assert (r["model_spikes"], r["graph_spikes"], r["matched"]) == (2, 3, 1)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == pytest.approx(1 / 2)
    assert r["rate_model"] == pytest.approx(2 / 20) and r["rate_graph"] == pytest.approx(3 / 20)
    assert r["offsets"] == {"-3": 0, "-2": 0, "-1": 0, "0": 1, "1": 1, "2": 0, "3": 0} and r["offsets_beyond"] == 1
    # a tie goes to the earlier model spike (positive offset); beyond max_offset is counted apart
    m2, g2 = np.zeros((12, 1, 1)), np.zeros((12, 1, 1))
    m2[[2, 6], 0, 0] = 1
    g2[[4, 11], 0, 0] = 1
    r2 = spike_event_metrics(m2, g2)
    assert r2["offsets"]["2"] == 1 and r2["offsets_beyond"] == 1 and r2["matched"] == 0


def test_a_silent_graph_cannot_pass_as_agreeing():
    """Against a sparse model a silent graph has ~97% "spike agreement" (matching zeros) but recall 0, no precision
    and firing rate 0; the metrics tell the two apart."""
    from spikeseq.verify import spike_event_metrics

    model = (np.random.default_rng(0).random((50, 4, 30)) < 0.03).astype(float)
    silent = np.zeros_like(model)
    assert np.mean(model == silent) > 0.95
    r = spike_event_metrics(model, silent)
    assert r["recall"] == 0.0 and r["precision"] is None and r["rate_graph"] == 0.0 and r["rate_model"] > 0.02
    assert spike_event_metrics(model, model)["precision"] == spike_event_metrics(model, model)["recall"] == 1.0


def test_verify_result_reports_event_metrics(tmp_path):
    m = _model()
    r = export_and_verify(m, "loihi", tmp_path / "m.net", _x(), dt=DT)
    assert set(r.spike_metrics) == set(r.layer_agreement) == {"0_lif", "2_lif"}
    hidden = r.spike_metrics["0_lif"]
    assert hidden["rate_model"] > 0.05 and hidden["rate_graph"] > 0.05      # the comparison is not of silence
    # measured: 97.7% "spike agreement" but precision 0.88 / recall 0.88 (hidden), 0.74 / 0.75 (output): the
    # agreement counts matching silence, the event metrics do not
    assert r.layer_agreement["0_lif"] > 0.95
    assert hidden["precision"] > 0.85 and hidden["recall"] > 0.85
    out = r.spike_metrics["2_lif"]
    assert out["precision"] > 0.7 and out["recall"] > 0.7 and out["rate_graph"] > 0.05
    assert sum(hidden["offsets"].values()) + hidden["offsets_beyond"] == hidden["graph_spikes"]
    md = r.to_markdown()
    assert "| layer | spike agreement | precision | recall |" in md and "| 0_lif |" in md
    d = json.loads(json.dumps(r.to_dict()))
    assert d["spike_metrics"]["0_lif"]["matched"] == hidden["matched"]


def test_predictions_softmax_sum_differs_from_sum_where_it_should():
    """``softmax_sum`` (the delay recipes' training readout): argmax of sum_t softmax(out[t]). One large step for
    class 0 wins the plain sum; three steps that favour class 1 win the summed probabilities."""
    from spikeseq.verify.core import predictions

    out = np.array([[[10.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]]])  # [T=4, B=1, C=2]
    assert predictions(out, "sum").tolist() == [0]
    # probabilities: class 1 gets 4.5e-5 + 3 * 0.731 = 2.19 of 4
    assert predictions(out, "softmax_sum").tolist() == [1]
    with pytest.raises(ParameterError, match="softmax_sum"):
        predictions(out, "max")


@pytest.mark.parametrize("target", ["loihi", "spinnaker2"])
def test_weights_lost_to_fixed_point_are_stated(tmp_path, target):
    # a tiny weight beside large ones in the readout synapse shares their scale and rounds to 0 on the target: the
    # note counts it for that synapse (small trained weights elsewhere may round to 0 too, and are counted there)
    def lost(result):
        note = next((n for n in result.notes if "round to 0" in n), "")
        return note, "1_affine: " in note

    _, before = lost(export_and_verify(_model(), target, tmp_path / "c.x", _x(), dt=DT))
    m = _model()
    with torch.no_grad():
        m[1].weight[0, 0] = 1e-7
    note, after = lost(export_and_verify(m, target, tmp_path / "m.x", _x(), dt=DT))
    assert not before and after
    assert f"1_affine: 1 of {int((m[1].weight != 0).sum())}" in note
