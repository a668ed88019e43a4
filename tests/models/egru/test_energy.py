"""Energy per token of an EGRU graph: hand-counted synaptic events, updates and dense MACs."""

from __future__ import annotations

import numpy as np
import pytest

from spikeseq.graph import ir
from spikeseq.models.egru.energy import energy_per_token, token_counts


def test_token_counts_hand_counted():
    h, v = 2, 3
    w_ih = np.zeros((3 * h, v))
    w_ih[:, 0] = 1.0            # token 0 reaches all 6 gate inputs, token 1 reaches 2, token 2 none
    w_ih[:2, 1] = 1.0
    w_hh = np.zeros((3 * h, h))
    w_hh[:3, 1] = 1.0           # unit 1's event reaches 3 gate inputs, unit 0's none
    dec = np.zeros((v, h))
    dec[:, 0] = 1.0             # the readout reads unit 0 only (3 synapses)
    g = ir.Graph({"input": ir.Input((v,)),
                  "cell": ir.EGRUCell(w_ih, w_hh, np.zeros(3 * h), np.zeros(3 * h), np.full(h, 0.1)),
                  "dec": ir.Affine(dec, np.zeros(v)), "output": ir.Output((v,))},
                 [("input", "cell"), ("cell", "dec"), ("dec", "output")], dt=1e-3)
    tokens = np.array([0, 1, 2, 0])
    x = np.eye(v)[tokens][:, None, :]                     # [T=4, B=1, V]
    y = np.zeros((4, 1, h))
    y[0, 0, 1] = 0.5                                      # unit 1 fires at t=0 and t=3, unit 0 at t=1
    y[1, 0, 0] = 0.4
    y[3, 0, 1] = 0.7
    c = token_counts(g, x, {"cell": y})
    assert c["input_synops"] == (6 + 2 + 0 + 6) / 4
    assert c["recurrent_synops"] == (3 + 0 + 0) / 4      # events of t=0..2 act at t+1; t=3's leaves the window
    assert c["readout_synops"] == 3 / 4
    assert c["events"] == 3 / 4 and c["unit_updates"] == h and c["readout_updates"] == v
    assert c["dense_macs"] == 3 * h * v + 3 * h * h + v * h
    e = energy_per_token(c)
    syn = (14 + 3 + 3) / 4
    assert e["spinnaker2_pj"] == pytest.approx(syn * 450 + (h + v) * 2190)
    assert e["gpu_pj"] == pytest.approx((3 * h * v + 3 * h * h + v * h) * 300 + (h + v) * 300)
    assert e["paper_gpu_over_spinnaker2"] == [5.0, 18.0]
