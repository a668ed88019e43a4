"""Native counts equal hand counts (explicit loops over steps, samples, inputs and outputs) on small networks with
pruned weights, real-valued and ternary inputs, recurrence, delays and an LMU memory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from spikeseq import nn as snn
from spikeseq import profile
from spikeseq.errors import ProfileError, ShapeError
from spikeseq.functional import lif_step
from spikeseq.nn.lmu import LMUMemory
from spikeseq.nn.recurrent import RLIF


def hand_linear(x: torch.Tensor, w: torch.Tensor, rule: str = "element") -> tuple[list, list]:
    """Per step (effective MACs, effective ACs) of y = W x over x [T, B, in] by explicit loops."""
    t_len, b_len, n_in = x.shape
    w = w.detach()
    macs, acs = [0.0] * t_len, [0.0] * t_len
    for t in range(t_len):
        spiking_step = all(float(v) in (-1.0, 0.0, 1.0) for v in x[t].flatten())
        for b, i, o in itertools.product(range(b_len), range(n_in), range(w.shape[0])):
            v = float(x[t, b, i])
            if v == 0 or float(w[o, i]) == 0:
                continue
            is_ac = spiking_step if rule == "call" else abs(v) == 1
            if is_ac:
                acs[t] += 1
            else:
                macs[t] += 1
    return macs, acs


def _pruned_linear(n_in: int, n_out: int, seed: int) -> nn.Linear:
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(n_in, n_out)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_out, n_in, generator=g))
        lin.weight[torch.rand(n_out, n_in, generator=g) < 0.4] = 0.0
        lin.bias.copy_(torch.randn(n_out, generator=g))
        lin.bias[0] = 0.0
    return lin


def _mixed_input() -> torch.Tensor:
    """[T=4, B=3, 6]: step 0 spikes, step 1 ternary, steps 2-3 mixed real values, zeros and +-1."""
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(4, 3, 6, generator=g) < 0.4).float()
    x[1] *= torch.where(torch.rand(3, 6, generator=g) < 0.5, -1.0, 1.0)
    x[2:] *= torch.randn(2, 3, 6, generator=g)
    x[3, 0, :3] = torch.tensor([1.0, -1.0, 2.0])
    return x


@pytest.mark.parametrize("rule", ["element", "call"])
def test_linear_pruned_weights_mixed_inputs(rule):
    lin = _pruned_linear(6, 5, seed=1)
    x = _mixed_input()
    r = profile.count(lin, x, ac_rule=rule)
    lp = r.layer(r.layers[0].name)
    macs, acs = hand_linear(x, lin.weight, rule)
    assert lp.counts["eff_macs"].tolist() == macs
    assert lp.counts["eff_acs"].tolist() == acs
    assert lp.counts["dense_macs"].tolist() == [3 * 6 * 5] * 4
    assert lp.counts["bias_adds"].tolist() == [3 * 4] * 4             # one bias entry is zero
    nz = (x != 0).reshape(4, -1).sum(1).double().tolist()
    assert lp.counts["mem_input_reads"].tolist() == nz
    eff = np.array(macs) + np.array(acs)
    assert lp.counts["mem_weight_reads"].tolist() == (eff + 12).tolist()   # weights + bias reads
    assert lp.counts["mem_state_reads"].tolist() == eff.tolist()
    assert r.n_samples == 3 and r.time_steps == 4


def test_time_folded_and_stepwise_calls_agree():
    lin = _pruned_linear(6, 5, seed=2)
    x = _mixed_input()
    folded = profile.count(snn.Sequential(lin), x)
    stepwise = profile.count(lin, x, run="steps")
    for key in ("eff_macs", "eff_acs", "dense_macs", "bias_adds"):
        assert folded.layers[0].counts[key].tolist() == stepwise.layers[0].counts[key].tolist()


def test_lif_network_hand_count():
    torch.manual_seed(0)
    l1, l2 = _pruned_linear(6, 4, seed=4), _pruned_linear(4, 3, seed=5)
    model = snn.Sequential(l1, snn.LIF(4, beta=0.8, reset="subtract"), l2, snn.LIF(3, beta=0.7, reset="zero"))
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(5, 2, 6, generator=g) < 0.5).float()
    r = profile.count(model, x)
    # hand run of the network, step by step
    s1 = s2 = None
    z1s, z2s = [], []
    with torch.no_grad():
        for t in range(5):
            z1, s1 = lif_step(l1(x[t]), s1, beta=0.8, v_th=1.0, reset="subtract")
            z2, s2 = lif_step(l2(z1), s2, beta=0.7, v_th=1.0, reset="zero")
            z1s.append(z1)
            z2s.append(z2)
    z1s, z2s = torch.stack(z1s), torch.stack(z2s)
    spk1 = z1s.reshape(5, -1).sum(1).tolist()
    lif1, lif2 = r.layer("layers.1").counts, r.layer("layers.3").counts
    assert lif1["spikes_out"].tolist() == spk1
    assert lif1["neuron_updates"].tolist() == [8.0] * 5
    assert lif1["state_mults"].tolist() == [8.0] * 5                       # beta * v
    assert lif1["state_adds"].tolist() == [8.0 + s for s in spk1]          # + x, and the subtractive reset
    assert lif1["state_cmps"].tolist() == [8.0] * 5
    assert lif2["state_adds"].tolist() == [6.0] * 5                        # zero reset: no add
    assert lif2["spikes_out"].tolist() == z2s.reshape(5, -1).sum(1).tolist()
    assert lif1["mem_output_writes"].tolist() == spk1
    macs, acs = hand_linear(z1s, l2.weight)
    assert r.layer("layers.2").counts["eff_acs"].tolist() == acs and sum(macs) == 0
    assert r.totals()["spikes_out"] == pytest.approx((sum(spk1) + float(z2s.sum())) / 2)


def test_rlif_recurrence_hand_count():
    torch.manual_seed(1)
    m = RLIF(5, 4, beta=0.9, v_th=0.5, rec_bias=False)
    with torch.no_grad():
        m.rec.weight[0, :2] = 0.0
        m.rec.weight[2:, 3] = 0.0
    x = (torch.rand(6, 3, 5, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    r = profile.count(m, x)
    with torch.no_grad():
        zs, _ = m(x)
    z_prev = torch.cat((torch.zeros(1, 3, 4), zs[:-1]))
    _, rec_acs = hand_linear(z_prev, m.rec.weight)
    _, fc_acs = hand_linear(x, m.fc.weight)
    assert r.layer("rec").counts["eff_acs"].tolist() == rec_acs
    assert r.layer("rec").counts["dense_macs"].tolist() == [3 * 16] * 6
    assert r.layer("fc").counts["eff_acs"].tolist() == fc_acs
    rl = r.layer("RLIF").counts
    assert rl["spikes_out"].tolist() == zs.reshape(6, -1).sum(1).tolist()
    assert rl["neuron_updates"].tolist() == [12.0] * 6
    assert r.not_counted == []


def test_rnn_cell_real_hidden_state_is_macs():
    torch.manual_seed(0)
    cell = nn.RNNCell(4, 3)
    with torch.no_grad():
        cell.weight_hh[0, 0] = 0.0

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x):
            h = x.new_zeros(x.shape[1], 3)
            hs = [h]
            for t in range(x.shape[0]):
                h = self.cell(x[t], h)
                hs.append(h)
            return torch.stack(hs)

    x = (torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    net = Net()
    r = profile.count(net, x)
    with torch.no_grad():
        hs = net(x)
    mac_ih, ac_ih = hand_linear(x, cell.weight_ih)
    mac_hh, ac_hh = hand_linear(hs[:-1], cell.weight_hh)
    c = r.layer("cell").counts
    assert c["eff_acs"].tolist() == [a + b for a, b in zip(ac_ih, ac_hh)]
    assert c["eff_macs"].tolist() == [a + b for a, b in zip(mac_ih, mac_hh)]
    assert c["dense_macs"].tolist() == [2 * 3 * (4 + 3)] * 3
    assert sum(mac_hh) > 0                                                  # the real-valued h costs MACs


def _hand_delay(x, w, d):
    t_len, b_len, n_in = x.shape
    ops = [0.0] * t_len
    for t, b, j, i in itertools.product(range(t_len), range(b_len), range(w.shape[0]), range(n_in)):
        s = t - int(d[j, i])
        if s >= 0 and float(x[s, b, i]) != 0 and float(w[j, i]) != 0:
            ops[t] += 1
    return ops


def test_delay_linear_hand_count_and_streaming():
    g = torch.Generator().manual_seed(0)
    layer = snn.DelayLinear(4, 3, max_delay=3, learn_delay=False, generator=g).eval()
    with torch.no_grad():
        layer.weight[1, 2] = 0.0
    x = (torch.rand(8, 2, 4, generator=torch.Generator().manual_seed(5)) < 0.5).float()
    r = profile.count(layer, x)
    w, d = layer.integer_weights_and_delays()
    c = r.layers[0].counts
    assert c["eff_acs"].tolist() == _hand_delay(x, w, d)
    assert c["eff_macs"].tolist() == [0.0] * 8
    assert c["dense_macs"].tolist() == [2 * 4 * 3] * 8
    # streaming: the second half sees the first half's delayed events through the state
    with torch.no_grad():
        _, st = layer(x[:4])
    first = profile.count(layer, x[:4]).layers[0].counts["eff_acs"]
    second = profile.count(layer, [x[4:]], run=lambda m, v: m(v, st)).layers[0].counts["eff_acs"]
    assert np.concatenate([first, second]).tolist() == c["eff_acs"].tolist()


def test_lmu_memory_hand_count():
    mem = LMUMemory(3, 4.0)
    u = (torch.rand(5, 2, 2, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    u[3, 1, 0] = 0.5                                                        # one real value: MACs
    r = profile.count(mem, u)
    with torch.no_grad():  # the hand count follows the recurrence (exact zeros), not the FFT's round-off
        m, _ = LMUMemory(3, 4.0, mode="recurrent")(u)
    a, b = mem._a64.float(), mem._b64.float()
    m_prev = torch.cat((torch.zeros(1, 2, 2, 3), m[:-1])).reshape(5, 4, 3)
    mac_a, ac_a = hand_linear(m_prev, a)
    mac_b, ac_b = hand_linear(u.reshape(5, 4, 1), b.reshape(3, 1))
    c = r.layers[0].counts
    assert c["eff_macs"].tolist() == [p + q for p, q in zip(mac_a, mac_b)]
    assert c["eff_acs"].tolist() == [p + q for p, q in zip(ac_a, ac_b)]
    assert c["dense_macs"].tolist() == [4 * (9 + 3)] * 5
    assert sum(mac_b) == 3 and c["neuron_updates"].tolist() == [12.0] * 5


def test_l2mu_populations_match_model_stats():
    from spikeseq.models.l2mu import L2MU

    torch.manual_seed(0)
    model = L2MU(6, 4, hidden_size=12, memory_size=6)
    x = torch.randn(15, 3, 6)
    r = profile.count(model, x)
    with torch.no_grad():
        _, _, stats = model.eval().forward_with_spike_counts(x)
    for pop, key in (("pop_u", "u"), ("pop_m", "m"), ("pop_h", "h")):
        lp = r.layer(f"L2MU.{pop}")
        assert lp.total("spikes_out") == stats[key][0]
        assert lp.total("neuron_updates") == stats[key][1]
    assert r.layer("pop_x").total("spikes_out") == stats["x"][0]
    assert r.not_counted == []


def test_uncountable_modules_are_reported_or_raise():
    class OwnWeight(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4, 4))
            self.inner = nn.Linear(4, 4)

        def forward(self, x):
            return self.inner(x @ self.w)

    class FunctionalChild(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return torch.nn.functional.linear(x, self.lin.weight)

    model = nn.Sequential(nn.Linear(4, 4), nn.Softmax(-1), OwnWeight(), FunctionalChild())
    x = torch.rand(3, 2, 4)
    r = profile.count(model, x)
    names = {d["name"]: d["type"] for d in r.not_counted}
    assert names == {"1": "Softmax", "2": "OwnWeight", "3": "FunctionalChild"}
    assert "'lin' (Linear) holds parameters but never ran" in r.not_counted[-1]["reason"]
    assert "Softmax" in r.to_markdown()
    with pytest.raises(ProfileError, match=r"1 \(Softmax\)"):
        profile.count(model, x, strict=True)
    with pytest.raises(ProfileError, match="num_layers=2"):
        profile.count(nn.GRU(4, 3, num_layers=2), x)
    with pytest.raises(ShapeError, match="time-first"):
        profile.count(model, torch.rand(4))
    with pytest.raises(ProfileError, match="ac_rule"):
        profile.count(model, x, ac_rule="sometimes")
