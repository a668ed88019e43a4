"""Profiler edge cases: empty inputs are refused, a one-step Linear input whose shape equals (T, B) is counted at
the step it runs (not spread over T steps), and the LMU memory is counted in its recurrent form whatever
implementation (FFT or step loop) ran; profiling leaves hidden state held in buffers (snnTorch) as it was."""

from __future__ import annotations

import pytest
import torch

from spikeseq import profile
from spikeseq.errors import ShapeError
from spikeseq.nn.lmu import LMUMemory
from spikeseq.nn.recurrent import RLIF


def _rlif(hidden: int) -> RLIF:
    m = RLIF(3, hidden, beta=0.5, bias=False, v_th=0.5)
    with torch.no_grad():
        m.fc.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0]]))
        m.rec.weight.copy_(torch.tensor([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]]))
    return m


@pytest.mark.parametrize("shape", [(3, 0, 4), (0, 2, 4)])
def test_empty_inputs_are_refused(shape):
    lin = torch.nn.Linear(4, 2)
    with pytest.raises(ShapeError, match="at least one time step and one sample"):
        profile.count(lin, torch.zeros(shape))


def test_recurrent_linear_counted_at_its_step_when_batch_equals_hidden_equals_T():
    """T = B = hidden = 3: ``rec(z)`` gets z [B, hidden] = [3, 3] once per step. Step 0 sees z = 0 (no ops);
    the ops of step t are those of the spikes of step t - 1."""
    m = _rlif(3)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 3, 3, generator=g) < 0.5).float()
    with torch.no_grad():
        z, _ = m(x)
    fan = (m.rec.weight != 0).sum(0).float()
    z_prev = torch.cat([torch.zeros_like(z[:1]), z[:-1]])
    expected = (z_prev @ fan).sum(1).tolist()                  # per step, all samples
    assert expected[0] == 0.0 and sum(expected) > 0
    rep = profile.count(m, x)
    got = rep.per_step("eff_acs", per_sample=False, layer="rec").tolist()
    assert got == expected
    assert rep.per_step("dense_macs", per_sample=False, layer="rec").tolist() == [27.0, 27.0, 27.0]


def test_lmu_memory_fft_counts_equal_recurrent_counts_and_hand_count():
    """One event per sample late in the window: before it the memory is exactly 0 in the recurrence, while the FFT
    output holds round-off there, which must not count as effective MACs of ``A_bar m``."""
    t_len, order = 8, 4
    u = torch.zeros(t_len, 2, 3)
    u[4, 0, 1] = 1.0
    u[7, 1, 2] = 1.0
    rec = LMUMemory(order, 5.0, mode="recurrent")
    a_bar, b_bar = rec.matrices()
    with torch.no_grad():
        mem, _ = rec(u)
    m_prev = torch.cat([torch.zeros_like(mem[:1]), mem[:-1]]).reshape(t_len, -1, order)
    hand_macs = float(((m_prev != 0).double() @ (a_bar != 0).sum(0).double()).sum()) / 2
    hand_acs = float((u != 0).sum() * (b_bar != 0).sum()) / 2
    for mode in ("fft", "recurrent", "auto"):
        tot = profile.count(LMUMemory(order, 5.0, mode=mode), u).totals()
        assert (tot["eff_macs"], tot["eff_acs"]) == (hand_macs, hand_acs), mode


def test_profiling_leaves_snntorch_hidden_state_and_next_outputs_unchanged():
    snn = pytest.importorskip("snntorch")
    from snntorch import utils as snn_utils

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(3, 2), snn.Leaky(beta=0.9, init_hidden=True, output=True))
    x = torch.rand(6, 2, 4) * 2
    outs = {}
    for profiled in (False, True):
        snn_utils.reset(net)
        with torch.no_grad():
            for t in range(3):
                net(x[t])
            mems = [m.mem.clone() for m in (net[1], net[3])]
            if profiled:
                profile.count(net, (torch.rand(5, 7, 4) < 0.5).float(), run="steps")
                assert all(torch.equal(a, m.mem) for a, m in zip(mems, (net[1], net[3])))
            outs[profiled] = [net(x[t])[0] for t in range(3, 6)]
    assert all(torch.equal(a, b) for a, b in zip(outs[False], outs[True]))
