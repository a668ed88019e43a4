"""SpikeGPT / RWKV-4 family: parallel form == RNN form, the LIF branch, L2Wrap, configs and bad input."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from spikeseq.errors import ConfigError, ShapeError
from spikeseq.kernels.wkv import block_step
from spikeseq.kernels.wkv import cpu as wkv_cpu
from spikeseq.models.registry import build, family_of
from spikeseq.models.spikegpt import SpikeGPT, SpikeGPTConfig
from spikeseq.nn.rwkv import RWKVBlock, l2wrap


def cpp_available() -> bool:
    return wkv_cpu.available()[0]


def _random_model(name: str, seed: int = 0, **kw) -> SpikeGPT:
    """A small model with all weights random (the RWKV init zeroes several projections, which silences spikes)."""
    torch.manual_seed(seed)
    m = build(name, size="tiny", vocab=40, **kw).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    return m


@pytest.mark.parametrize("path", ["c++ block step", "torch calls"])
@pytest.mark.parametrize("name", ["spikegpt", "rwkv4"])
def test_parallel_equals_rnn_mode_over_1000_tokens(name, path, monkeypatch):
    if path == "torch calls":  # where the C++ loops do not run (no compiler, another dtype): the torch calls
        monkeypatch.setattr(block_step, "pack", lambda *a, **k: None)
        monkeypatch.setattr(wkv_cpu, "step", lambda *a, **k: None)
    m = _random_model(name, ctx_len=1000)
    assert (m.blocks[0].step_weights().packed is not None) == (path == "c++ block step" and cpp_available())
    ids = torch.randint(0, 40, (1000, 2), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, final = m(ids)
        s, steps = None, []
        for t in range(1000):
            out, s = m.step(ids[t], s)
            steps.append(out)
    diff = (logits - torch.stack(steps)).abs().max().item()
    assert diff <= 1e-4
    for a, b in zip(final.blocks[-1], s.blocks[-1], strict=True):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
    if name == "spikegpt":  # the comparison covers spiking branches that do fire
        with torch.no_grad():
            x = m.emb(ids[:50])
        assert 0.05 < float(x.mean()) < 0.95


def test_rnn_step_sees_parameters_changed_after_its_first_call():
    # RNN mode keeps its weights rearranged (RWKVBlock.step_weights); changed in place (as an optimiser does) or
    # replaced, the next step must use the new values
    m = _random_model("rwkv4")
    ids = torch.randint(0, 40, (6, 2), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        m.step(ids[0], None)
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
        blk = m.blocks[1]
        blk.ffn.key.weight = torch.nn.Parameter(torch.randn_like(blk.ffn.key.weight) * 0.3)
        blk.att.time_mix_v = torch.nn.Parameter(torch.rand_like(blk.att.time_mix_v))
        logits, _ = m(ids)
        s, steps = None, []
        for t in range(6):
            out, s = m.step(ids[t], s)
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps), logits, atol=1e-4, rtol=0)


def test_rnn_step_float64_and_a_stepped_model_copies_and_pickles():
    m = _random_model("spikegpt")
    ids = torch.randint(0, 40, (12, 2), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        m.step(ids[0], None)  # packs the C++ step's weights (kept beside the module, not in it)
        torch.save(copy.deepcopy(m), io.BytesIO())
        m = m.double()  # the step follows the model's dtype, its initial state too
        logits, _ = m(ids)
        s, steps = None, []
        for t in range(12):
            out, s = m.step(ids[t], s)
            steps.append(out)
    assert steps[0].dtype == torch.float64
    torch.testing.assert_close(torch.stack(steps), logits, atol=1e-10, rtol=0)


def test_state_carries_across_parallel_calls():
    m = _random_model("spikegpt", ctx_len=32)
    ids = torch.randint(0, 40, (48, 3), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        l1, s1 = m(ids[:32])
        l2, _ = m(ids[32:], s1)
        s, steps = None, []
        for t in range(48):
            out, s = m.step(ids[t], s)
            steps.append(out)
    torch.testing.assert_close(torch.cat((l1, l2)), torch.stack(steps), atol=1e-4, rtol=0)


def test_lif_branch_is_spikingjelly_lif_tau2():
    # SpikingJelly MultiStepLIFNode(tau=2, decay_input=True, v_th=1, hard reset): H = V + (X - V)/2
    # X = 1.5 constant: H = 0.75 (no spike), 1.125 (spike, V -> 0), 0.75, 1.125, ...
    blk = RWKVBlock(1, spiking=True)
    z, v = blk._branch("lif_att", torch.full((4, 1, 1), 1.5), None)
    assert z.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert v.item() == 0.0
    assert blk.beta == 0.5


def test_l2wrap_known_gradient():
    logits = torch.tensor([[[1.0, 5.0, 2.0]], [[0.5, -1.0, 3.0]]], requires_grad=True)  # [T=2, B=1, V=3]
    (l2wrap(logits) * 0).sum().backward()
    expect = torch.zeros(2, 1, 3)
    expect[0, 0, 1] = 1e-4 / 2 * 5.0
    expect[1, 0, 2] = 1e-4 / 2 * 3.0
    torch.testing.assert_close(logits.grad, expect)


def test_rwkv_init_values():
    m = build("rwkv4", n_layer=3, n_embd=4, vocab=10, ctx_len=8)
    att = m.blocks[1].att  # layer 1 of 3: r0 = 0.5, r1 = 2/3
    h = torch.arange(4) / 3
    torch.testing.assert_close(att.time_decay.data, -5 + 8 * h ** (0.7 + 1.3 * 0.5))
    torch.testing.assert_close(att.time_first.data, torch.log(torch.tensor(0.3)) + torch.tensor([0.0, 0.5, -0.5, 0.0]))
    assert float(att.key.weight.abs().sum()) == 0.0 and float(att.output.weight.abs().sum()) == 0.0
    assert float(m.blocks[0].ffn.value.weight.abs().sum()) == 0.0
    assert float(m.emb.weight.abs().max()) <= 1e-4


def test_presets_and_parameter_count():
    cfg = SpikeGPTConfig.from_kwargs("46m", vocab=5458)
    assert (cfg.n_layer, cfg.n_embd, cfg.ctx_len) == (12, 512, 1024)
    assert SpikeGPTConfig.from_kwargs("216m").n_layer == 18 and SpikeGPTConfig.from_kwargs("216m").vocab == 50277
    m = build("spikegpt", size="tiny", vocab=40)
    C, L, V = 32, 2, 40
    # per block: 13 C^2 weights (time mix 4 C^2, channel mix 4 C^2 + 4 C^2 + C^2) + 11 C (2 LN, 5 mixes, decay,
    # bonus); LN0 and the output LN 4 C; embedding and head 2 V C
    assert sum(p.numel() for p in m.parameters()) == L * (13 * C * C + 11 * C) + 4 * C + 2 * V * C
    assert family_of("spikegpt").name == family_of("rwkv4").name == "spikegpt"


def test_an_empty_batch_trains_to_empty_logits():
    # [T, 0] ids: empty logits and a backward through L2Wrap (which divided by the token count: ZeroDivisionError)
    m = build("spikegpt", size="tiny", vocab=40).train()
    logits, _ = m(torch.zeros(3, 0, dtype=torch.long))
    assert logits.shape == (3, 0, 40)
    logits.sum().backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0.0 for p in m.parameters())


def test_bad_input():
    m = build("spikegpt", size="tiny", vocab=40)
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        m(torch.tensor([[3], [40]]))
    with pytest.raises(ConfigError, match="exceed the parallel form's context"):
        m(torch.zeros(33, 1, dtype=torch.long))
    with pytest.raises(ShapeError, match="time-first"):
        m(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ShapeError, match="no tokens"):
        m(torch.zeros(0, 3, dtype=torch.long))
    other = build("spikegpt", n_layer=3, n_embd=32, vocab=40, ctx_len=32)
    _, st = other(torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ShapeError, match="3 blocks"):
        m(torch.zeros(2, 1, dtype=torch.long), st)
    with pytest.raises(ConfigError, match="unknown SpikeGPT option"):
        build("spikegpt", size="tiny", heads=4)
    with pytest.raises(ConfigError, match="unknown SpikeGPT size"):
        build("rwkv4", size="huge")
