"""EGRU op counters: dense and effective MACs per gate on a hand-countable net (events counted independently)."""

from __future__ import annotations

import pytest
import torch

from spikeseq import profile
from spikeseq.functional.egru import egru_scan
from spikeseq.models.egru import EGRULM, EGRUClassifier


def test_lm_counts_per_gate_are_activity_times_weight_density():
    torch.manual_seed(0)
    m = EGRULM(7, embed=3, hidden=4, layers=1, seed=0)
    with torch.no_grad():
        m.rnn.weight_hh_l0[:, 1] = 0.0            # unit 1 sends nothing: its fan-out is pruned
        m.rnn.weight_hh_l0[4:8, 2] = 0.0          # unit 2 reaches no z gate
    x = torch.randint(0, 7, (6, 2)).float()
    rep = profile.count(m, x, strict=True)
    rows = {layer.name.split("EGRULM.")[1]: layer for layer in rep.layers}
    # the events, independently: the functional cell on the embedded input
    with torch.no_grad():
        out, _ = egru_scan(m.embed(x.long()), **m.rnn.layer_params(0))
    y_prev = torch.cat([torch.zeros_like(out.y[:1]), out.y[:-1]])
    active = (y_prev != 0).double()                               # [T, B, H]
    assert 0 < float(active.mean()) < 1
    for g, gate in enumerate("rzn"):
        w = m.rnn.weight_hh_l0[4 * g:4 * (g + 1)]
        fan = (w != 0).sum(0).double()                            # nonzero fan-out of each presynaptic unit
        rec = rows[f"rnn.l0.{gate}.recurrent"]
        assert rec.total("dense_macs") == 6 * 2 * 4 * 4
        assert rec.total("eff_macs") == float((active * fan).sum())
        assert rec.total("eff_acs") == 0.0                        # graded events are MACs
        inp = rows[f"rnn.l0.{gate}.input"]
        assert inp.total("dense_macs") == 6 * 2 * 3 * 4 == inp.total("eff_macs")   # dense embeddings
    cell = rows["rnn.l0.cell"]
    assert cell.total("out_nonzero") == float((out.y != 0).sum()) and cell.total("out_elements") == 6 * 2 * 4
    assert rows["decoder"].total("dense_macs") == 6 * 2 * 4 * 7
    assert rows["decoder"].total("eff_macs") == float((out.y != 0).sum()) * 7


def test_classifier_counts_stacked_layers():
    m = EGRUClassifier(6, 3, hidden=5, layers=2, seed=1)
    rep = profile.count(m, torch.rand(4, 2, 2, 3), strict=True)
    names = [layer.name for layer in rep.layers]
    assert sum(".recurrent" in n for n in names) == 6 and sum(".input" in n for n in names) == 6
    l1 = next(layer for layer in rep.layers if layer.name.endswith("rnn.l1.r.input"))
    assert l1.total("dense_macs") == pytest.approx(4 * 2 * 5 * 5)


def test_export_refuses_naming_the_gate():
    from spikeseq.errors import ExportError
    from spikeseq.graph import quantize, trace

    m = EGRULM(7, embed=3, hidden=4, seed=0)
    with pytest.raises(ExportError, match=r"one-hot tokens"):
        trace(m, dt=1e-3, input_shape=())
    with pytest.raises(ExportError, match=r"gate n = tanh\(W_n x \+ b_in \+ r \* \(R_n y"):
        quantize(trace(m, dt=1e-3, input_shape=(7,)), "loihi")
