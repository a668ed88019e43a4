"""Target mode for EGRU cells on SpiNNaker2 (spikeseq.graph.target_cells): the events of every cell equal the
bit-exact interpreter's on the exported graph, readouts agree, and the gradients follow the float model's."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeseq.errors import ConfigError
from spikeseq.graph.simulate import simulate
from spikeseq.graph.target_forward import target_forward
from spikeseq.graph.target_mode import TargetMode, TargetSettings, check_target
from spikeseq.graph.trace import trace_bound
from spikeseq.models import registry
from spikeseq.models.egru.lower import one_hot


def _model_and_input(kind: str, layers: int):
    torch.manual_seed(3)
    if kind == "classifier":    # real-valued inputs: products summed in float64, rounded once
        m = registry.build("egru_classifier", input_size=12, n_classes=4, hidden=16, layers=layers, seed=1)
        return m.eval(), torch.randn(30, 3, 12) * 2, (12,)
    m = registry.build("egru_lm", vocab=11, embed=8, hidden=16, layers=layers, seed=1)
    tokens = np.random.default_rng(2).integers(0, 11, (30, 3))
    return m.eval(), torch.from_numpy(one_hot(tokens, 11)).float(), (11,)


@pytest.mark.parametrize("payload_frac_bits", [None, 7])
@pytest.mark.parametrize(("kind", "layers"), [("classifier", 1), ("classifier", 2), ("lm", 2)])
def test_cell_events_equal_the_interpreters(kind, layers, payload_frac_bits):
    m, x, shape = _model_and_input(kind, layers)
    g, b = trace_bound(m, dt=1e-3, input_shape=shape, input_payload="graded")
    res = target_forward(g, b, x, "spinnaker2", payload_frac_bits=payload_frac_bits, record=True)
    sim = simulate(res.graph, x.double().numpy(), numerics="spinnaker2")
    assert set(res.traces) == {f"rnn_l{k}" for k in range(layers)}
    for name, tr in res.traces.items():
        ours = tr.detach().numpy()
        assert 0.02 < float((ours != 0).mean()) < 0.6, name          # cells fire, sparsely
        assert np.array_equal(ours, sim.traces[name]), name          # every event, every payload
    out = res.output.detach().numpy()
    assert out.shape == sim.outputs[res.graph.outputs()[0]].shape
    assert float(np.abs(out - sim.outputs[res.graph.outputs()[0]]).max()) <= 1e-9


@pytest.mark.parametrize("payload_frac_bits", [None, 7])
def test_gradients_follow_the_float_model(payload_frac_bits):
    """Weights and biases get the float model's gradient direction and size (int8 weights straight through with
    their per-gate factors, the cell's own pseudo-derivative); thresholds are constants in target mode."""
    m = registry.build("egru_classifier", input_size=6, n_classes=6, hidden=64, seed=0)
    g_ = torch.Generator().manual_seed(4)
    x, y = torch.randn(64, 16, 6, generator=g_), torch.randint(0, 6, (16,), generator=g_)
    fm, tmm = copy.deepcopy(m), copy.deepcopy(m)
    F.cross_entropy(fm(x)[0].mean(0), y).backward()
    tm = TargetMode(tmm, TargetSettings("spinnaker2", payload_frac_bits=payload_frac_bits), dt=1e-3,
                    integer_inputs=False)
    F.cross_entropy(tm(x)[0].mean(0), y).backward()
    for (name, p), (_, q) in zip(fm.named_parameters(), tmm.named_parameters(), strict=True):
        if "threshold" in name:
            assert q.grad is None
            continue
        cos = float(F.cosine_similarity(p.grad.flatten(), q.grad.flatten(), dim=0))
        ratio = float(q.grad.norm() / p.grad.norm())
        assert cos > 0.99 and 0.95 < ratio < 1.05, (name, cos, ratio)


def test_loihi_refuses_the_cell_before_training():
    m, _, shape = _model_and_input("lm", 1)
    with pytest.raises(ConfigError, match=r"'rnn_l0' \(EGRUCell\) does not map to Loihi-style cores"):
        check_target(m, TargetSettings("loihi"), dt=1e-3, input_shape=())   # the data: token ids


def _autograd_cell(cell, x, w_ih, b_ih, w_hh, b_hh) -> torch.Tensor:
    """The cell's step written with autograd (the module docstring's equations in the interpreter's operations;
    events through the cell's surrogate, payload rounding straight through)."""
    from spikeseq import surrogate as sg
    from spikeseq.graph.ste import straight_through
    from spikeseq.graph.target_cells import _exact32, _sigmoid, _tanh

    def mm(a, w, exact):
        return a @ w.float().t() if exact else (a.double() @ w.t()).float()

    h = cell.h
    gi_all = mm(x, w_ih, _exact32(x, w_ih)) * cell.ki + b_ih
    y = torch.zeros(x.shape[1], h)
    c = torch.zeros(x.shape[1], h)
    outs = []
    for gi in gi_all.unbind(0):
        gh = mm(y, w_hh, cell.int8_payloads) * cell.kh + b_hh
        r = _sigmoid(gi[:, :h] + gh[:, :h])
        z = _sigmoid(gi[:, h:2 * h] + gh[:, h:2 * h])
        n = _tanh(gi[:, 2 * h:] + r * gh[:, 2 * h:])
        ct = z * c + (1 - z) * n
        e = sg.spike(ct - cell.th, cell.surrogate)
        y, c = e * ct, ct - e * cell.th
        if cell.frac is not None:
            scaled = y * float(2.0**cell.frac)
            y = straight_through(torch.round(scaled.detach()).clamp(-127, 127), scaled)
        outs.append(y)
    return torch.stack(outs)


@pytest.mark.parametrize("integer_events", [False, True])
@pytest.mark.parametrize("payload_frac_bits", [None, 7])
def test_handwritten_cell_backward_matches_autograd(payload_frac_bits, integer_events):
    """The sequence function's written-out backward equals autograd through the same step: same payloads, same
    gradients of the input events, both weight matrices and both biases (to float32 rounding)."""
    from spikeseq.graph.quantize import quantize_with_factors
    from spikeseq.graph.target_cells import _Cell, _CellScanFn

    m, x0, shape = _model_and_input("classifier", 1)
    if integer_events:      # event counts: the input products run as exact float32 sums
        x0 = torch.round(x0.abs() * 2)
    g, b = trace_bound(m, dt=1e-3, input_shape=shape, input_payload="graded")
    q, fac = quantize_with_factors(g, "spinnaker2", payload_frac_bits=payload_frac_bits)
    cell = _Cell("rnn_l0", q.nodes["rnn_l0"], fac, {}, m.rnn.surrogate)
    probe = torch.randn(30, 3, 16, generator=torch.Generator().manual_seed(5))
    grads = []
    for fn in (lambda *a: _CellScanFn.apply(*a, cell), lambda *a: _autograd_cell(cell, *a)):
        args = [v.detach().clone().requires_grad_(True) for v in (x0, cell.w_ih, cell.b_ih, cell.w_hh, cell.b_hh)]
        out = fn(*args)
        (out * probe).sum().backward()
        grads.append((out.detach(), *(a.grad for a in args)))
    (o1, *g1), (o2, *g2) = grads
    assert torch.equal(o1, o2) and 0 < float((o1 != 0).float().mean()) < 0.8
    for a, ref in zip(g1, g2, strict=True):
        assert ref.abs().sum() > 0
        torch.testing.assert_close(a.double(), ref.double(), rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.native
@pytest.mark.parametrize("payload_frac_bits", [None, 7])
def test_the_cpp_step_equals_the_torch_step(payload_frac_bits, monkeypatch):
    """The C++ step (``kernels/egru/egru_fixed.cpp``, event-driven recurrent products) and the same operations in
    torch give identical payloads and states, and gradients equal to float32 rounding."""
    from spikeseq.graph import target_cells

    m, x, shape = _model_and_input("classifier", 2)
    runs = []
    for native in (True, False):
        monkeypatch.setattr(target_cells, "_native_steps", lambda native=native: native)
        mm = copy.deepcopy(m)
        g, b = trace_bound(mm, dt=1e-3, input_shape=shape, input_payload="graded")
        res = target_forward(g, b, x, "spinnaker2", payload_frac_bits=payload_frac_bits, record=True)
        (res.output * torch.linspace(-1, 1, res.output.numel()).reshape(res.output.shape)).sum().backward()
        runs.append((res, {k: p.grad for k, p in mm.named_parameters() if p.grad is not None}))
    (r1, g1), (r2, g2) = runs
    assert all(torch.equal(r1.traces[k], r2.traces[k]) for k in r1.traces) and torch.equal(r1.output, r2.output)
    assert set(g1) == set(g2) and len(g1) == 10
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=1e-4, atol=1e-5 * float(g2[k].abs().max()))


@pytest.mark.native
def test_event_products_equal_the_dense_product():
    """The event-driven product equals the dense one exactly on int8 values; its weight gradient to rounding."""
    from spikeseq.kernels.egru import fixed

    g = torch.Generator().manual_seed(6)
    y = torch.randint(-127, 128, (5, 40), generator=g).float() * (torch.rand(5, 40, generator=g) < 0.4)
    w = torch.randint(-127, 128, (40, 96), generator=g).float()
    out = torch.empty(5, 96)
    fixed.event_products(y, w, out)
    assert torch.equal(out, y @ w)
    grad = torch.randn(5, 96, generator=g)
    torch.testing.assert_close(fixed.event_outer(y, grad), y.t() @ grad, rtol=1e-5, atol=1e-3)


@pytest.mark.native
def test_an_odd_width_and_one_sample_run_the_same_on_both_paths(monkeypatch):
    """13 units (no whole number of vectors) and a batch of one: the C++ step equals the interpreter and the torch
    step."""
    from spikeseq.graph import target_cells

    m = registry.build("egru_classifier", input_size=5, n_classes=3, hidden=13, seed=2).eval()
    x = torch.randn(40, 1, 5, generator=torch.Generator().manual_seed(8)) * 2
    g, b = trace_bound(m, dt=1e-3, input_shape=(5,), input_payload="graded")
    outs = []
    for native in (True, False):
        monkeypatch.setattr(target_cells, "_native_steps", lambda native=native: native)
        outs.append(target_forward(g, b, x, "spinnaker2", payload_frac_bits=7, record=True))
    sim = simulate(outs[0].graph, x.double().numpy(), numerics="spinnaker2")
    ours = outs[0].traces["rnn_l0"].detach().numpy()
    assert 0 < float((ours != 0).mean()) < 1
    assert np.array_equal(ours, sim.traces["rnn_l0"]) and torch.equal(outs[0].traces["rnn_l0"],
                                                                        outs[1].traces["rnn_l0"])


def test_a_language_model_trains_on_token_ids_for_spinnaker2():
    """Token ids ``[T, B]`` become the graph's one-hot events through the model's ``graph_inputs`` (as the
    verifier feeds the interpreter): the check takes the data's shape, target mode returns ``[T, B, vocab]``
    logits whose per-token predictions equal the interpreter's, and the embedding gets gradients."""
    from spikeseq.train.target import target_agreement

    m = registry.build("egru_lm", vocab=11, embed=8, hidden=16, seed=1)
    tokens = torch.from_numpy(np.random.default_rng(3).integers(0, 11, (25, 4)))
    settings = TargetSettings("spinnaker2", payload_frac_bits=7)
    check_target(m, settings, dt=1e-3, input_shape=())
    tm = TargetMode(m, settings, dt=1e-3)
    logits, _ = tm(tokens)
    assert logits.shape == (25, 4, 11)
    F.cross_entropy(logits.reshape(-1, 11), torch.roll(tokens, -1, 0).reshape(-1)).backward()
    assert m.embed.weight.grad is not None and m.embed.weight.grad.abs().sum() > 0
    agree = target_agreement(tm, tokens, torch.roll(tokens, -1, 0).t())   # next-token labels [B, T]
    assert agree["spike_agreement"] == {"rnn_l0": 1.0} and agree["output_max_abs_diff"] == 0.0
    assert agree["prediction_agreement"] == 1.0 and agree["target_accuracy"] == agree["graph_accuracy"]
