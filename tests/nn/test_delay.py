"""nn.DelayLinear: modes (Gaussian / rounded / integer), rounding, export tensors, checkpoints, streaming."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional import delay as fd
from spikeseq.nn import DelayLinear


def _spikes(t=30, b=2, n=5, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(t, b, n, generator=g) < p).float()


def test_train_mode_is_gaussian_eval_mode_is_rounded_integer():
    layer = DelayLinear(5, 4, 8, generator=torch.Generator().manual_seed(0))
    layer.set_sigma(1.5)
    x = _spikes()
    y_train, _ = layer.train()(x)
    want, _ = fd.delay_gaussian(x, weight=layer.weight, delay=layer.delay, sigma=1.5, max_delay=8)
    torch.testing.assert_close(y_train, want, rtol=0, atol=0)
    y_eval, _ = layer.eval()(x)
    ref, _ = fd.delay_shift_reference(x, weight=layer.weight.detach(), delay=layer.delay.detach().round(),
                                      max_delay=8)
    torch.testing.assert_close(y_eval, ref, rtol=0, atol=1e-6)
    # evaluation did not change the learnable real-valued delays
    assert not layer.delays_are_integer()


def test_integer_semantics_require_round_delays():
    layer = DelayLinear(5, 4, 8)
    x = _spikes()
    with pytest.raises(ParameterError, match="round_delays"):
        layer.forward_integer(x)
    with pytest.raises(ParameterError, match="round_delays"):
        layer.integer_weights_and_delays()
    expected_eval, _ = layer.eval()(x)
    layer.round_delays()
    assert layer.delays_are_integer()
    y, _ = layer.forward_integer(x)
    torch.testing.assert_close(y, expected_eval, rtol=0, atol=0)
    w, d = layer.integer_weights_and_delays()
    assert d.dtype == torch.int64 and w.shape == d.shape == (4, 5)
    assert int(d.min()) >= 0 and int(d.max()) <= 8
    # the documented semantics: y[t, b, j] = sum_i W[j, i] x[t - D[j, i], b, i]
    want = torch.zeros(30, 2, 4)
    for j in range(4):
        for i in range(5):
            dd = int(d[j, i])
            want[dd:, :, j] += w[j, i] * x[: 30 - dd, :, i]
    torch.testing.assert_close(y, want, rtol=0, atol=1e-6)


def test_positions_get_gradients_and_clamp():
    layer = DelayLinear(5, 4, 8)
    x = _spikes()
    y, _ = layer(x)
    y.square().sum().backward()
    assert layer.delay.grad is not None and bool(layer.delay.grad.abs().sum() > 0)
    with torch.no_grad():
        layer.delay[0, 0] = -3.0
        layer.delay[1, 1] = 11.0
    layer.clamp_delays_()
    assert float(layer.delay.detach()[0, 0]) == 0.0 and float(layer.delay.detach()[1, 1]) == 8.0


def test_fixed_random_delays_are_integer_and_not_trained():
    layer = DelayLinear(5, 4, 8, learn_delay=False)
    assert layer.delays_are_integer() and not layer.delay.requires_grad
    x = _spikes().requires_grad_(True)
    y, _ = layer.train()(x)  # one-hot conv path (gradient needed)
    with torch.no_grad():
        y_fast, _ = layer(x)  # gather path
    torch.testing.assert_close(y, y_fast, rtol=0, atol=1e-6)
    y.sum().backward()
    assert layer.weight.grad is not None and layer.delay.grad is None


def test_cached_integer_plan_follows_weight_updates():
    layer = DelayLinear(5, 4, 8).eval()
    x = _spikes()
    with torch.no_grad():
        y1, _ = layer(x)
        layer.weight.mul_(2.0)
        y2, _ = layer(x)
    torch.testing.assert_close(y2, 2 * y1, rtol=1e-6, atol=1e-6)


def test_checkpoint_with_delays_out_of_range_is_refused():
    layer = DelayLinear(5, 4, 8)
    sd = layer.state_dict()
    sd["delay"] = sd["delay"].clone()
    sd["delay"][0, 0] = 9.5
    with pytest.raises(ParameterError, match="outside"):
        DelayLinear(5, 4, 8).load_state_dict(sd)
    ok = DelayLinear(5, 4, 8)
    ok.load_state_dict(layer.state_dict())
    assert torch.equal(ok.delay, layer.delay) and float(ok.sigma) == float(layer.sigma)


def test_streaming_steps_equal_the_whole_sequence():
    layer = DelayLinear(5, 4, 6).eval()
    x = _spikes(t=20)
    y, _ = layer(x)
    state = layer.initial_state(2)
    ys = []
    for t in range(20):
        yt, state = layer.step(x[t], state)
        ys.append(yt)
    torch.testing.assert_close(torch.stack(ys), y, rtol=0, atol=1e-6)


def test_bad_construction_and_short_sequences():
    with pytest.raises(ParameterError, match="max_delay"):
        DelayLinear(5, 4, 0)
    with pytest.raises(ShapeError, match=r"Pad the end"):
        DelayLinear(5, 4, 8)(torch.zeros(5, 1, 5))


def test_gaussian_path_equals_the_dcls_package_with_identical_parameters():
    """Same weights, positions (P = K//2 - d) and sigma as DCLS Dcls1d (used as in SNN-delays): same output."""
    modules = pytest.importorskip("DCLS.construct.modules")
    k = 9
    layer = DelayLinear(6, 5, k - 1, generator=torch.Generator().manual_seed(3))
    layer.set_sigma(2.5)
    ref = modules.Dcls1d(6, 5, kernel_count=1, dilated_kernel_size=k, bias=False, version="gauss")
    with torch.no_grad():
        ref.weight.copy_(layer.weight.detach().unsqueeze(-1))
        ref.P.copy_((k // 2 - layer.delay.detach()).view(1, 5, 6, 1))
        ref.SIG.fill_(2.5)
    x = _spikes(t=25, n=6)
    y, _ = layer.train()(x)
    y_ref = ref(torch.nn.functional.pad(x.permute(1, 2, 0), (k - 1, 0))).permute(2, 0, 1)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)  # dcls adds 1e-7 to the normaliser


def test_freeze_delays_switches_training_to_the_integer_path():
    layer = DelayLinear(5, 4, 8).freeze_delays()
    assert layer.delays_are_integer() and not layer.delay.requires_grad
    x = _spikes()
    y, _ = layer.train()(x)
    ref, _ = fd.delay_shift_reference(x, weight=layer.weight.detach(), delay=layer.delay.detach(), max_delay=8)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-6)
    y.sum().backward()
    assert layer.weight.grad is not None and layer.delay.grad is None
