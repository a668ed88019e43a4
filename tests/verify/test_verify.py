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
