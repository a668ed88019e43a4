"""Differential probe of the EGRU export (SpiNNaker2 description, float and fixed-point interpreter, C++ target-mode
step) and of its op counter on networks the other EGRU tests do not build: three layers, a pruned and an all-zero
gate, an EGRU built with ``batch_first``, payload_frac_bits at and beyond the int8 limit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikeseq import profile
from spikeseq.errors import ExportError, ParameterError
from spikeseq.export.spinnaker2 import write_spinnaker2
from spikeseq.export.spinnaker2_cells import matrix_of
from spikeseq.graph import ir, trace
from spikeseq.graph.quantize import quantize
from spikeseq.graph.simulate import simulate
from spikeseq.models import registry
from spikeseq.models.egru.lower import one_hot
from spikeseq.nn import EGRU


def _lm3():
    """3 layers, 95 % of weight_hh_l0 pruned, the whole update gate z of layer 1 zero (input and recurrent)."""
    torch.manual_seed(0)
    m = registry.build("egru_lm", vocab=9, embed=4, hidden=6, layers=3, thr_mean=0.2).double().eval()
    h = 6
    with torch.no_grad():
        w = m.rnn.weight_hh_l0
        w.view(-1)[torch.randperm(w.numel())[: round(0.95 * w.numel())]] = 0.0
        m.rnn.weight_ih_l1[h:2 * h] = 0.0
        m.rnn.weight_hh_l1[h:2 * h] = 0.0
    tok = torch.randint(0, 9, (10, 3))
    return m, tok


def _batch_first_classifier():
    torch.manual_seed(0)
    m = registry.build("egru_classifier", input_size=6, n_classes=3, hidden=5, layers=2).double().eval()
    torch.manual_seed(1)
    m.rnn = EGRU(6, 5, num_layers=2, batch_first=True, thr_mean=0.2).double().eval()
    return m, torch.randn(7, 4, 6, dtype=torch.float64)


def test_three_layer_pruned_lm_float_interpreter_and_counts_by_hand():
    m, tok = _lm3()
    g = trace(m, dt=1e-3, input_shape=(9,))
    with torch.no_grad():
        logits, _, events = m.forward_events(tok)
    names = [f"rnn_l{k}" for k in range(3)]
    r = simulate(g, one_hot(tok.numpy(), 9), record=[*names, "output"])
    np.testing.assert_allclose(r.output, logits.numpy(), rtol=0, atol=1e-12)
    for k, n in enumerate(names):
        assert np.array_equal(r.traces[n] != 0, events[k].numpy() > 0), n
    assert all(0 < float((r.traces[n] != 0).mean()) < 1 for n in names)
    # effective MACs per gate = sum over steps of the units that sent an event at t-1 x their nonzero fan-out
    rows = {layer.name.split("EGRULM.")[1]: layer for layer in profile.count(m, tok.double(), strict=True).layers}
    h = 6
    for k, n in enumerate(names):
        y = r.traces[n]
        active = (np.concatenate([np.zeros_like(y[:1]), y[:-1]]) != 0).astype(float)
        w_hh = getattr(m.rnn, f"weight_hh_l{k}").detach().numpy()
        for gi, gate in enumerate("rzn"):
            fan = (w_hh[gi * h:(gi + 1) * h] != 0).sum(0)
            rec = rows[f"rnn.l{k}.{gate}.recurrent"]
            assert rec.total("eff_macs") == float((active * fan).sum()), (n, gate)
            assert rec.total("dense_macs") == 10 * 3 * h * h
        assert rows[f"rnn.l{k}.cell"].total("out_nonzero") == float((y != 0).sum())
    assert rows["rnn.l1.z.recurrent"].total("eff_macs") == 0.0 == rows["rnn.l1.z.input"].total("eff_macs")
    assert rows["rnn.l0.r.recurrent"].total("eff_macs") < 0.2 * rows["rnn.l0.r.recurrent"].total("dense_macs")


@pytest.mark.parametrize("f", [0, 3, 7])
def test_written_description_runs_to_the_interpreters_payloads(tmp_path, f):
    """A run of the JSON alone (CSR int8 weights / per-gate scales + float32 gates, as documented) reproduces the
    fixed-point interpreter's payloads exactly; the zero gate keeps scale 1 and no synapses."""
    m, tok = _lm3()
    g = trace(m, dt=1e-3, input_shape=(9,))
    xs = one_hot(tok.numpy(), 9)
    sim = simulate(g, xs, numerics="spinnaker2", quantize_kwargs={"payload_frac_bits": f},
                   record=["rnn_l0", "rnn_l1", "rnn_l2", "output"])
    ex = write_spinnaker2(g, tmp_path / "net.json", payload_frac_bits=f)
    d = json.loads(ex.path.read_text())
    pops = {p["name"]: p for p in d["populations"]}
    prj = {q["name"]: q for q in d["projections"]}
    # a zero gate: scale 1, times the 2**f of the payload it reads
    assert pops["rnn_l1"]["params"]["ih_scale"][1] == 2.0**f == pops["rnn_l1"]["params"]["hh_scale"][1]
    src = xs.astype(np.float32)
    for n in ("rnn_l0", "rnn_l1", "rnn_l2"):
        p, h = pops[n]["params"], pops[n]["size"]
        wi, wh = matrix_of(prj[f"{n}.ih"]), matrix_of(prj[f"{n}.hh"])
        assert not wi[:, h:2 * h].any() if n == "rnn_l1" else True
        ki, kh = (np.repeat(1 / np.array(p[s]), h).astype(np.float32) for s in ("ih_scale", "hh_scale"))
        bi, bh, th = (np.array(p[s], np.float32) for s in ("bias_ih", "bias_hh", "threshold"))
        c = np.zeros((3, h), np.float32)
        y = np.zeros((3, h), np.float32)
        outs = []
        for t in range(src.shape[0]):
            gi = (src[t].astype(np.float64) @ wi).astype(np.float32) * ki + bi
            gh = (y.astype(np.float64) @ wh).astype(np.float32) * kh + bh
            r = (1 / (1 + np.exp(-(gi[:, :h] + gh[:, :h]).astype(np.float64)))).astype(np.float32)
            z = (1 / (1 + np.exp(-(gi[:, h:2 * h] + gh[:, h:2 * h]).astype(np.float64)))).astype(np.float32)
            nn_ = np.tanh((gi[:, 2 * h:] + r * gh[:, 2 * h:]).astype(np.float64)).astype(np.float32)
            ct = z * c + (1 - z) * nn_
            e = ct > th
            c = (ct - e * th).astype(np.float32)
            y = np.clip(np.round(np.where(e, ct, 0).astype(np.float32) * np.float32(2.0**f)), -127, 127)
            outs.append(y.astype(np.float32))
        src = np.stack(outs)
        assert np.array_equal(src / 2.0**f, sim.traces[n]), n
    rd = pops["decoder"]["params"]
    out = src.astype(np.float64) @ matrix_of(prj["decoder"]) / (rd["scale"] * 2.0**f) + np.array(rd["bias"])
    np.testing.assert_allclose(out, sim.output, rtol=0, atol=1e-6)   # float32 readout weights in the graph


@pytest.mark.parametrize("f", [None, 0, 5])
def test_cpp_target_step_equals_interpreter_on_three_pruned_layers(f):
    from spikeseq.graph.target_forward import target_forward
    from spikeseq.graph.trace import trace_bound

    m, tok = _lm3()
    m = m.float()
    x = torch.from_numpy(one_hot(tok.numpy(), 9)).float()
    g, b = trace_bound(m, dt=1e-3, input_shape=(9,), input_payload="graded")
    res = target_forward(g, b, x, "spinnaker2", payload_frac_bits=f, record=True)
    sim = simulate(res.graph, x.double().numpy(), numerics="spinnaker2")
    for name, tr in res.traces.items():
        assert np.array_equal(tr.detach().numpy(), sim.traces[name]), name
    assert float(np.abs(res.output.detach().numpy() - sim.outputs[res.graph.outputs()[0]]).max()) <= 1e-9


def test_payload_frac_bits_beyond_int8_refused_for_cells():
    """y = e * c~ lies in (theta, 1): with f = 8 every payload >= 0.496 saturated at 127 silently (logit error
    0.08 against 0.002 at f = 7 on this net); the cell now refuses f > 7."""
    m, tok = _lm3()
    g = trace(m, dt=1e-3, input_shape=(9,))
    xs = one_hot(tok.numpy(), 9)
    with torch.no_grad():
        ref = m(tok)[0].numpy()
    r7 = simulate(g, xs, numerics="spinnaker2", quantize_kwargs={"payload_frac_bits": 7}, record=["rnn_l0", "output"])
    q = r7.traces["rnn_l0"] * 128
    assert np.array_equal(q, np.round(q)) and np.abs(q).max() <= 127
    assert float(np.abs(r7.output - ref).max()) < 0.01
    for f in (8, 16):
        with pytest.raises(ExportError, match=rf"payload_frac_bits must be in 0\.\.7 \(got {f}"):
            quantize(g, "spinnaker2", payload_frac_bits=f)
    cell = g.nodes["rnn_l0"]
    with pytest.raises(ParameterError, match=r"0\.\.7"):
        ir.EGRUCell(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh, cell.threshold,
                    ih_scale=np.ones(3), hh_scale=np.ones(3), payload_frac_bits=8)


def test_batch_first_egru_refused_by_export_and_counted_on_its_own_time_axis():
    m, x = _batch_first_classifier()
    with torch.no_grad():
        y, _ = m(x)
        out, _ = m.rnn(x)           # batch_first: recurs over axis 1 of x
    assert float(np.abs(y.numpy()).max()) > 0
    with pytest.raises(ExportError, match=r"batch_first=True"):
        trace(m, dt=1e-3, input_shape=(6,), input_payload="dense")
    rows = {layer.name.split("EGRUClassifier.")[1]: layer for layer in profile.count(m, x, strict=True).layers}
    h = 5
    for k in range(2):
        ev = out.events[k].numpy() > 0                      # [B', T', H] in the EGRU's layout = x's [7, 4]
        yk = out.y.numpy() if k == 1 else None
        assert rows[f"rnn.l{k}.cell"].total("out_nonzero") == float(ev.sum())
        active = np.concatenate([np.zeros_like(ev[:, :1]), ev[:, :-1]], axis=1).astype(float)   # y[t-1]
        w_hh = getattr(m.rnn, f"weight_hh_l{k}").detach().numpy()
        for gi, gate in enumerate("rzn"):
            fan = (w_hh[gi * h:(gi + 1) * h] != 0).sum(0)
            assert rows[f"rnn.l{k}.{gate}.recurrent"].total("eff_macs") == float((active * fan).sum())
        if yk is not None:
            assert rows["out"].total("eff_macs") == float((yk != 0).sum()) * 3


def test_loihi_refusal_names_the_gate_for_a_classifier_on_real_valued_inputs(tmp_path):
    """The CLI/verify path scales real-valued inputs for Loihi first: it used to fail with 'real-valued inputs on
    Loihi need the input to feed weight synapses; 'rnn_l0' is a EGRUCell' instead of naming the gates."""
    from spikeseq.graph.quantize import scale_input_synapses
    from spikeseq.verify import export_and_verify

    torch.manual_seed(0)
    m = registry.build("egru_classifier", input_size=6, n_classes=3, hidden=5, layers=3).eval()
    x, labels = torch.randn(7, 4, 6), torch.randint(0, 3, (4,))
    gate = r"'rnn_l0' \(EGRUCell\) does not map to Loihi-style cores: gate n = tanh\(W_n x \+ b_in \+ r \*"
    with pytest.raises(ExportError, match=gate):
        export_and_verify(m, "loihi", tmp_path / "net.net", x, labels, dt=1e-3)
    with pytest.raises(ExportError, match=gate):
        scale_input_synapses(trace(m, dt=1e-3, input_shape=(6,), input_payload="dense"), 4)
    assert not list(tmp_path.iterdir())                       # nothing half-written


def test_read_back_check_covers_cell_biases_and_scales(tmp_path, monkeypatch):
    """The description check compared only weights and thresholds: a bias or gate scale written wrong passed."""
    from spikeseq.export import spinnaker2, spinnaker2_cells

    m, _ = _lm3()
    g = trace(m, dt=1e-3, input_shape=(9,))
    real = spinnaker2_cells.cell_description
    for key, k in (("bias_hh", 4), ("ih_scale", 2)):
        def wrong(q, per_unit, key=key, k=k):
            pops, projs = real(q, per_unit)
            pops[0]["params"][key][k] *= 1.0 + 2.0**-20          # rnn_l0, one value off by one part in 1e6
            return pops, projs

        monkeypatch.setattr(spinnaker2, "cell_description", wrong)
        with pytest.raises(ExportError, match=r"'rnn_l0' does not read back"):
            write_spinnaker2(g, tmp_path / "net.json", payload_frac_bits=7)
        assert not (tmp_path / "net.json").exists()
    monkeypatch.setattr(spinnaker2, "cell_description", real)
    assert write_spinnaker2(g, tmp_path / "net.json", payload_frac_bits=7).path.exists()


def test_payloads_that_round_to_zero_are_counted_per_cell():
    """round(y * 2**f) is 0 for y < 2**-(f+1): units whose threshold lies below that are counted, per cell."""
    import numpy as np

    from spikeseq.graph import ir
    from spikeseq.verify.core import payloads_that_round_to_zero

    def cell(th, f):
        h = len(th)
        return ir.EGRUCell(weight_ih=np.zeros((3 * h, 2), np.float32), weight_hh=np.zeros((3 * h, h), np.float32),
                           bias_ih=np.zeros(3 * h, np.float32), bias_hh=np.zeros(3 * h, np.float32),
                           threshold=np.asarray(th, np.float32), payload_frac_bits=f)

    from types import SimpleNamespace

    graph = SimpleNamespace(nodes={"a": cell([0.01, 0.2, 0.3], 0),     # 2**-1 = 0.5: all three below
                                   "b": cell([0.001, 0.2, 0.3], 7),    # 2**-8 = 0.0039: one below
                                   "c": cell([0.01, 0.2], None)})      # float payloads: never 0
    assert payloads_that_round_to_zero(graph) == {"a": (3, 3, 0), "b": (1, 3, 7)}
