"""models.delay_snn: the paper's SHD recipe, variants, integer semantics, neuron match with SpikingJelly."""

from __future__ import annotations

import itertools

import pytest
import torch

from spikeseq.errors import ConfigError, ParameterError, ShapeError
from spikeseq.models import registry
from spikeseq.models.delay_snn import DelaySNN, DelaySNNConfig, predict, sum_softmax_loss
from spikeseq.nn import DelayLinear


def _small(**kw):
    base = dict(n_inputs=12, n_outputs=3, n_hidden=16, n_layers=2, max_delay=6)
    base.update(kw)
    return DelaySNN(DelaySNNConfig(**base))


def test_shd_recipe_sizes_and_parameter_count():
    m = registry.build("delay_snn")
    cfg = m.config
    assert (cfg.n_inputs, cfg.n_hidden, cfg.n_layers, cfg.n_outputs, cfg.max_delay) == (140, 256, 2, 20, 24)
    assert cfg.dropout == 0.4 and cfg.train["lr_pos"] == 100 * cfg.train["lr_w"]
    sizes = [140, 256, 256, 20]
    n_syn = sum(a * b for a, b in itertools.pairwise(sizes))
    n_bn = 2 * 2 * 256
    assert sum(p.numel() for p in m.parameters()) == 2 * n_syn + n_bn  # weights + one delay per synapse + BN
    none = registry.build("delay_snn", delays="none")
    assert sum(p.numel() for p in none.parameters()) == n_syn + n_bn
    fixed = registry.build("delay_snn", delays="fixed")
    w, pos = fixed.parameter_groups()
    assert pos == [] and all(d.delay.requires_grad is False for d in fixed.delay_layers())
    w, pos = m.parameter_groups()
    assert len(pos) == 3 and len(w) == 3 + 4  # 3 weight matrices, 2 BN x (gamma, beta)
    ssc = registry.build("delay_snn", recipe="ssc")
    assert (ssc.config.n_hidden, ssc.config.n_layers, ssc.config.max_delay, ssc.config.n_outputs) == (512, 3, 30, 35)


def test_neuron_matches_spikingjelly_lifnode_of_the_paper():
    """One hidden LIF of the recipe vs SpikingJelly LIFNode(tau=1.005, decay_input=False, hard reset, detach)."""
    sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    sj_sur = pytest.importorskip("spikingjelly.activation_based.surrogate")
    m = _small(dropout=0.0)
    lif = m.neurons[0]
    assert abs(float(lif.beta) - (1 - 10e-3 / 10.05e-3)) < 1e-7
    torch.manual_seed(4)
    x = torch.randn(40, 3, 16) * 1.5
    node = sj_neuron.LIFNode(tau=10.05 / 10.0, decay_input=False, v_threshold=1.0, v_reset=0.0,
                             detach_reset=True, surrogate_function=sj_sur.ATan(alpha=5.0), step_mode="m")
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    z_ref = node(x1)
    z, _ = lif(x2)
    assert torch.equal(z, z_ref)
    gz = torch.randn_like(z)
    (z_ref * gz).sum().backward()
    (z * gz).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-5, atol=1e-6)


def test_integer_semantics_and_exported_tensors():
    m = _small().eval()
    x = (torch.rand(20, 2, 12) < 0.3).float()
    with pytest.raises(ParameterError, match="round_delays"):
        m.forward_integer(x)
    with torch.no_grad():
        v_eval, _ = m(x)
        m.round_delays()
        v_int, _ = m.forward_integer(x)
    torch.testing.assert_close(v_int, v_eval, rtol=0, atol=0)
    layers = m.integer_weights_and_delays()
    assert [tuple(w.shape) for w, _ in layers] == [(16, 12), (16, 16), (3, 16)]
    assert all(d.dtype == torch.int64 and int(d.max()) <= 6 and int(d.min()) >= 0 for _, d in layers)


def test_output_length_padding_and_loss():
    m = _small()
    x = (torch.rand(20, 2, 12) < 0.3).float()
    v, state = m(m.pad(x))
    assert v.shape == (20 + 3 * 3, 2, 3) and m.config.pad_end == 9
    # the output length never depends on whether a state was passed
    assert m(x)[0].shape == (20, 2, 3) and m(x, m.initial_state(2))[0].shape == (20, 2, 3)
    y = torch.tensor([0, 2])
    loss = sum_softmax_loss(v, y)
    s = torch.softmax(v, -1).sum(0)
    want = -(s[torch.arange(2), y] - torch.logsumexp(s, -1)).mean()
    torch.testing.assert_close(loss, want)
    assert predict(v).shape == (2,)


def test_one_training_step_moves_delays_and_keeps_them_in_range():
    torch.manual_seed(0)
    m = _small()
    w, pos = m.parameter_groups()
    opt_w, opt_p = torch.optim.Adam(w, lr=1e-3), torch.optim.Adam(pos, lr=5.0)
    before = [d.delay.detach().clone() for d in m.delay_layers()]
    m.set_sigma(m.sigma_for_epoch(0, 8))
    assert float(m.delay_layers()[0].sigma) == 3.0  # max_delay / 2
    x = (torch.rand(20, 4, 12) < 0.3).float()
    loss = sum_softmax_loss(m(x)[0], torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt_w.step()
    opt_p.step()
    m.clamp_delays_()
    after = [d.delay.detach() for d in m.delay_layers()]
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert all(float(a.min()) >= 0 and float(a.max()) <= 6 for a in after)
    assert abs(m.sigma_for_epoch(2, 8) - 0.23) < 1e-12  # final_epoch = 8/4 = 2


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="delays must be"):
        registry.build("delay_snn", delays="random")
    with pytest.raises(ConfigError, match="bad delay_snn option"):
        registry.build("delay_snn", n_hiden=3)
    with pytest.raises(ParameterError, match="max_delay"):
        _small(max_delay=0)
    assert isinstance(_small().synapses[0], DelayLinear)


def test_streaming_in_chunks_equals_one_call():
    m = _small(pad_end=0).eval()
    x = (torch.rand(30, 2, 12) < 0.3).float()
    with torch.no_grad():
        v, _ = m(x)
        s = m.initial_state(2)
        parts = []
        for a, b in ((0, 4), (4, 17), (17, 30)):
            vp, s = m(x[a:b], s)
            parts.append(vp)
    torch.testing.assert_close(torch.cat(parts), v, rtol=1e-5, atol=1e-5)


def test_frames_are_flattened_per_step_by_the_model_and_by_the_lowering(tmp_path):
    """N-MNIST-style frames ``[T, B, 2, H, W]``: the model equals itself on the flattened input, and the traced
    graph (a Flatten node first; learned delays not rounded in place: traced as the eval forward rounds them)
    computes the same spikes in the interpreter."""
    from spikeseq.graph import ir, trace
    from spikeseq.verify import export_and_verify

    torch.manual_seed(0)
    m = _small(n_inputs=2 * 2 * 3, n_layers=1, delays="learned", dropout=0.0).eval()
    assert not m.delay_layers()[0].delays_are_integer()
    x = (torch.rand(15, 4, 2, 2, 3) < 0.4).float()
    with torch.no_grad():
        torch.testing.assert_close(m(x)[0], m(x.flatten(2))[0], rtol=0, atol=0)
    g = trace(m, dt=m.config.dt, input_shape=(2, 2, 3))
    assert isinstance(g.nodes["flatten"], ir.Flatten) and g.nodes["flatten"].out_shape == (12,)
    r = export_and_verify(m, "nir", tmp_path / "m.nir", x, dt=m.config.dt)
    assert r.layer_agreement["lif0_lif"] == 1.0 and r.output_max_abs_diff < 1e-4
    with pytest.raises(ShapeError, match="12"):
        m(torch.zeros(5, 2, 2, 2, 2))
