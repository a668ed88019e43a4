"""LMUFormer: parallel forward == streaming forward, causality, foundation neurons, errors."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import NonFiniteError, ParameterError, ShapeError
from spikeseq.models.lmuformer import CausalConv1d, LMUFormer
from spikeseq.nn import LIF, LMUMemory


def _trained_small(spiking: bool, dtype=torch.float64) -> LMUFormer:
    torch.manual_seed(0)
    model = LMUFormer(6, 4, dim=16, order=8, theta=24.0, n_u=2, spiking=spiking).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(24, 8, 6, dtype=dtype)
    for _ in range(3):  # move weights and BatchNorm statistics away from their initial values
        y, _ = model(x)
        loss = torch.nn.functional.cross_entropy(y[-1], torch.arange(8) % 4)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m in model.modules():  # running statistics = those of one pass, so the eval model stays active
        if isinstance(m, torch.nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(x)
    return model.eval()


@pytest.mark.parametrize("spiking", [True, False])
def test_parallel_equals_streaming(spiking):
    model = _trained_small(spiking)
    x = torch.randn(24, 3, 6, dtype=torch.float64) * 2
    with torch.no_grad():
        y_par, _ = model(x)
        st, rows = None, []
        for t in range(x.shape[0]):
            y_t, st = model(x[t:t + 1], st)
            rows.append(y_t)
        y_stream = torch.cat(rows)
        y_a, s = model(x[:9])
        y_b, _ = model(x[9:], s)
    torch.testing.assert_close(y_stream, y_par, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.cat([y_a, y_b]), y_par, rtol=0, atol=1e-10)
    assert y_par.std(dim=0).min() > 1e-3  # the readout changes over time: the network is active


def test_parallel_equals_streaming_float32_nonspiking():
    model = _trained_small(False, torch.float32)
    x = torch.randn(32, 2, 6)
    with torch.no_grad():
        y_par, _ = model(x)
        st, rows = None, []
        for t in range(32):
            y_t, st = model(x[t:t + 1], st)
            rows.append(y_t)
    torch.testing.assert_close(torch.cat(rows), y_par, rtol=1e-5, atol=1e-5)


def test_outputs_are_causal():
    model = _trained_small(True)
    x = torch.randn(30, 2, 6, dtype=torch.float64)
    x2 = x.clone()
    x2[20:] = torch.randn(10, 2, 6, dtype=torch.float64) * 5
    with torch.no_grad():
        y1, _ = model(x)
        y2, _ = model(x2)
    torch.testing.assert_close(y1[:20], y2[:20], rtol=0, atol=1e-12)
    assert not torch.allclose(y1[20:], y2[20:])


def test_spiking_variant_uses_foundation_lif_and_emits_spikes():
    model = LMUFormer(6, 4, dim=8, order=4, theta=16.0)
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    # 4 in the embedding + RPE, 4 in the spiking LMU branch (input, u, m, h), 2 in the mixer, 1 in the head
    assert len(lifs) == 11
    assert sum(isinstance(m, LMUMemory) for m in model.modules()) == 1
    assert not any(isinstance(m, LIF) for m in LMUFormer(6, 4, dim=8, order=4, theta=16.0,
                                                          spiking=False).modules())
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(out[0])) for m in lifs]
    model(torch.randn(10, 2, 6))
    for h in hooks:
        h.remove()
    assert len(seen) == 11
    for z in seen:
        assert torch.all((z == 0) | (z == 1))


def test_causal_conv_known_answer_and_state():
    conv = CausalConv1d(1, 1, kernel_size=3)
    with torch.no_grad():
        conv.conv.weight.copy_(torch.tensor([[[1.0, 10.0, 100.0]]]))  # oldest .. newest
    x = torch.arange(1.0, 6.0).view(5, 1, 1)
    y, st = conv(x)
    assert y.flatten().tolist() == [100.0, 210.0, 321.0, 432.0, 543.0]
    assert st.ctx.flatten().tolist() == [4.0, 5.0]
    y2, _ = conv(torch.tensor([[[6.0]]]), st)
    assert y2.item() == 654.0


def test_bad_inputs_and_config():
    model = LMUFormer(6, 4, dim=8, order=4, theta=16.0)
    with pytest.raises(ShapeError, match="6 sensor channels"):
        model(torch.randn(10, 2, 3))
    x = torch.randn(10, 2, 6)
    x[2, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        model(x)
    for kw in (dict(order=0), dict(theta=0.0), dict(theta=0.3), dict(dim=0)):
        with pytest.raises(ParameterError):
            LMUFormer(6, 4, **kw)
