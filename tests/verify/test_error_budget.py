"""The Loihi error budget: its first step reproduces the model, its last is what export_and_verify measures."""

from __future__ import annotations

import torch
from torch import nn

from spikeseq.graph import trace
from spikeseq.models.lifnet import SNNMLP
from spikeseq.nn import LI, LIF, Sequential
from spikeseq.verify import export_and_verify
from spikeseq.verify.error_budget import loihi_error_budget, to_markdown, zero_reset


def _model_and_data():
    torch.manual_seed(3)
    model = Sequential(nn.Linear(6, 24), LIF(tau_mem=0.02, dt=1e-3, reset="subtract"), nn.Linear(24, 3),
                       LI(tau_mem=0.02, dt=1e-3))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(3.0)  # enough drive for the hidden layer to spike often
    x = torch.randn(30, 40, 6) * 0.8  # real-valued sensor-like input
    labels = torch.randint(0, 3, (40,))
    return model, x, labels


def test_budget_steps_start_at_the_model_and_end_at_the_export(tmp_path):
    model, x, labels = _model_and_data()
    steps = loihi_error_budget(model, x, labels, dt=1e-3)
    names = [s.step for s in steps]
    assert names == ["trained model", "float graph", "+ one step per synapse hop", "+ reset to zero",
                     "+ fixed-point input (8 bits)", "+ Loihi fixed point (the export)", "reset to zero alone",
                     "fixed-point input alone (8 bits)"]
    assert steps[1].prediction_agreement == 1.0 and steps[1].accuracy == steps[0].accuracy
    assert steps[3].prediction_agreement < 1.0  # the reset change is applied (this model relies on subtraction)
    res = export_and_verify(model, "loihi", tmp_path / "m.net", x, labels, dt=1e-3, reset_policy="zero")
    last = steps[5]
    assert last.accuracy == res.graph_accuracy and last.prediction_agreement == res.prediction_agreement
    assert steps[0].accuracy == res.model_accuracy
    assert [s.cumulative for s in steps] == [True] * 6 + [False] * 2
    md = to_markdown(steps)
    assert md.count("\n") == len(steps) + 1 and "| float graph | " in md


def test_zero_reset_changes_only_subtractive_neurons():
    model, _, _ = _model_and_data()
    g = trace(model, dt=1e-3, input_shape=(6,))
    before = {k: getattr(n, "reset", None) for k, n in g.flat().nodes.items()}
    after = {k: getattr(n, "reset", None) for k, n in zero_reset(g).nodes.items()}
    assert "subtract" in before.values() and "subtract" not in after.values()
    assert {k for k in before if before[k] != after[k]} == {k for k in before if before[k] == "subtract"}


def test_integer_inputs_and_zero_reset_skip_their_steps():
    torch.manual_seed(0)
    model = SNNMLP(6, 3, hidden=[16], reset="zero")
    x = (torch.rand(20, 16, 6) < 0.3).float()
    steps = loihi_error_budget(model, x, None, dt=1e-3)
    assert [s.step for s in steps] == ["trained model", "float graph", "+ one step per synapse hop",
                                       "+ Loihi fixed point (the export)"]
    assert all(s.accuracy is None for s in steps)
