"""SpiNNaker2-style export of EGRUCell populations: exact CSR round trip, payload format, hand-counted PE mapping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikeseq.errors import ExportError
from spikeseq.export.spinnaker2 import map_pes, write_spinnaker2
from spikeseq.export.spinnaker2_cells import CELL_STATE_BYTES, matrix_of
from spikeseq.graph import ir
from spikeseq.graph.quantize import quantize


def _graph(h: int, i: int, w_ih: float, w_hh: np.ndarray | float, vocab_out: int = 3) -> ir.Graph:
    cell = ir.EGRUCell(weight_ih=np.full((3 * h, i), w_ih), weight_hh=np.broadcast_to(w_hh, (3 * h, h)),
                       bias_ih=np.zeros(3 * h), bias_hh=np.zeros(3 * h), threshold=np.full(h, 0.2))
    dec = ir.Affine(np.full((vocab_out, h), 0.5), np.zeros(vocab_out))
    return ir.Graph({"input": ir.Input((i,)), "cell": cell, "dec": dec, "output": ir.Output((vocab_out,))},
                    [("input", "cell"), ("cell", "dec"), ("dec", "output")], dt=1e-3)


def test_csr_round_trip_and_payload_format(tmp_path):
    h, i = 4, 5
    w_hh = np.zeros((3 * h, h))
    w_hh[:, 1] = 0.3          # pruned: only unit 1's row of the recurrent CSR has synapses
    w_hh[2, 3] = -0.6
    g = _graph(h, i, 0.1, w_hh)
    ex = write_spinnaker2(g, tmp_path / "net.json", payload_frac_bits=7)
    d = json.loads((tmp_path / "net.json").read_text())
    projs = {q["name"]: q for q in d["projections"]}
    pops = {p["name"]: p for p in d["populations"]}
    assert pops["cell"]["neuron_model"] == "custom_egru"
    assert pops["cell"]["params"]["payload"] == "int8 round(y * 2**7)"
    hh = projs["cell.hh"]
    # rows = presynaptic units: unit 1 feeds all 12 gate columns, unit 3 only column 2 (gate r, unit 2); gate r is
    # scaled by 127/0.6 (0.3 -> 63.5 -> 64), gates z and n by 127/0.3
    assert hh["indptr"] == [0, 0, 12, 12, 13] and hh["pre"] == "cell" and hh["post"] == "cell"
    assert hh["indices"][-1] == 2 and hh["weights"][-1] == -127 and hh["weights"][:12] == [64] * 4 + [127] * 8
    q = ex.graph.nodes["cell"]
    assert np.array_equal(matrix_of(hh), q.weight_hh.T) and np.array_equal(matrix_of(projs["cell.ih"]), q.weight_ih.T)
    assert len(projs["cell.ih"]["weights"]) == 3 * h * i and set(projs["cell.ih"]["weights"]) == {127}
    assert projs["dec"]["weights"] == [127] * 12 and pops["dec"]["neuron_model"] == "custom_readout"
    # the r-gate scale of the recurrent matrix: 127 / 0.6; its divisor includes the payload's 2**7
    assert pops["cell"]["params"]["hh_scale"][0] == pytest.approx(127 / 0.6 * 128)


def test_pe_mapping_hand_counted():
    h, i = 300, 11
    g = quantize(_graph(h, i, 0.5, 0.25), "spinnaker2", payload_frac_bits=7)
    rep = map_pes(g)
    cell = next(p for p in rep.populations if p.node == "cell")
    # per PE 131072 - 32768 = 98304 bytes; k units: k*60 + (11 + 300 rows)*12 + k*3*311 synapses*4 bytes
    k = (98304 - 311 * 12) // (CELL_STATE_BYTES + 3 * 311 * 4)
    assert k == 24 and cell.per_unit == 24 and cell.units == 13 and cell.synapses == 3 * h * (h + i)
    assert cell.usage["sram_bytes"][0] == 32768 + 24 * 60 + 311 * 12 + 24 * 3 * 311 * 4
    dec = next(p for p in rep.populations if p.node == "dec")
    assert dec.units == 1 and rep.units_used == 1 + 13 + 1


def test_cell_fed_by_a_synapse_is_refused():
    g = _graph(2, 3, 0.1, 0.1)
    g2 = ir.Graph({"input": ir.Input((3,)), "lin": ir.Linear(np.eye(3)), "cell": g.nodes["cell"],
                   "output": ir.Output((2,))}, [("input", "lin"), ("lin", "cell"), ("cell", "output")], dt=1e-3)
    with pytest.raises(ExportError, match="only an Affine/Linear readout from cells"):
        quantize(g2, "spinnaker2")
