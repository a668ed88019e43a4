"""Bit-exact Loihi CUBA semantics of the interpreter (targets.md §4.2) on hand-computed trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import DTypeError, ExportError
from spikeseq.graph import ir, quantize, simulate, trace
from spikeseq.nn.recurrent import RLIF

L = "loihi"


def _one(weight, *, i_decay, v_decay, vth, bias=0, readout=False, n_in=1):
    cuba = ir.LoihiCUBA(i_decay=np.full(1, i_decay), v_decay=np.full(1, v_decay), vth=np.full(1, vth),
                        bias=np.full(1, bias), scale=1 / 64, readout=readout)
    return ir.Graph({"input": ir.Input((n_in,)), "syn": ir.Linear(np.full((1, n_in), weight)), "cuba": cuba,
                     "output": ir.Output((1,))}, [("input", "syn"), ("syn", "cuba"), ("cuba", "output")],
                    dt=1e-3, metadata={"numerics": "loihi"})


def _pulse(t=7, at=(0,)):
    x = np.zeros((t, 1, 1))
    x[list(at), 0, 0] = 1
    return x


def test_known_answer_trajectory():
    # u = dec(u, 1024) + a<<6 ; v = dec(v, 512) + u ; dec(x, d) = sign(x) * (|x| * (4096 - d) >> 12)
    # spike at 100 -> u: 0, 6400, 4800, 3600, 2700, 2025, 1518 (floor of 1518.75)
    # v (threshold 200 << 6 = 12800): 0, 6400, 10400, 12700, 13812 -> spike (v reset to 0), 2025, 3289
    # a readout is the same compartment as netx's LIF: it spikes and resets too, and reads v after the reset
    g = _one(100, i_decay=1024, v_decay=512, vth=200, readout=True)
    v = simulate(g, _pulse(), align=False, numerics=L).output
    np.testing.assert_array_equal(v[:, 0, 0], [0, 6400, 10400, 12700, 0, 2025, 3289])
    z = simulate(_one(100, i_decay=1024, v_decay=512, vth=200), _pulse(), align=False, numerics=L).output
    np.testing.assert_array_equal(z[:, 0, 0], [0, 0, 0, 0, 1, 0, 0])


def test_saturated_readout_spikes_and_resets_as_netx():
    """A readout (vth = 2**17 - 1, the largest mantissa) is reached only by a saturated membrane: v clips at
    2**23 - 1 > 131071 << 6 = 2**23 - 64, so Loihi (netx builds the readout as Lava's LIF) spikes and resets it to 0;
    the interpreter must read the same v. Input 2000 per step, u = 2000 << 6 = 128000 (iDecay 4096: no memory),
    v non-leaky: 128000 * k until k = 66 gives 8448000 > 2**23 - 1 -> clipped to 8388607 > 8388544 -> reset to 0."""
    g = _one(2000, i_decay=4096, v_decay=0, vth=2**17 - 1, readout=True)
    x = np.ones((70, 1, 1))
    v = simulate(g, x, align=False, numerics=L).output[:, 0, 0]
    np.testing.assert_array_equal(v[:66], 128000 * np.arange(66))
    assert v[66] == 0 and v[67] == 128000                       # spiked at step 66 (v clipped), reset, integrates again


def test_negative_values_round_toward_zero():
    # u: -6400, -4800, -3600, -2700, -2025, -1518 (toward zero, not -1519)
    g = _one(-100, i_decay=1024, v_decay=4096, vth=200, readout=True)
    v = simulate(g, _pulse(), align=False, numerics=L).output
    np.testing.assert_array_equal(v[:, 0, 0], [0, -6400, -4800, -3600, -2700, -2025, -1518])


def test_bias_and_leak_without_input():
    # v = dec(v, 2048) + (3 << 6): 192, 288, 336, 360
    v = simulate(_one(0, i_decay=4096, v_decay=2048, vth=1000, bias=3, readout=True), np.zeros((4, 1, 1)), numerics=L,
                 align=False).output
    np.testing.assert_array_equal(v[:, 0, 0], [192, 288, 336, 360])


def test_u_wraps_at_24_bits_and_v_saturates():
    big = 2**17 + 1  # a << 6 = 2^23 + 64 > 2^23 -> u wraps to -2^23 + 64
    g = _one(big, i_decay=4096, v_decay=4096, vth=1000, readout=True)
    v = simulate(g, _pulse(3), align=False, numerics=L).output
    assert v[1, 0, 0] == -(2**23) + 64
    # u = -2^22 every step, v never decays: -2^22, then -2^23 saturates at -(2^23 - 1) (no reset below zero)
    v = simulate(_one(-(2**16), i_decay=4096, v_decay=0, vth=1000, readout=True), _pulse(4, at=(0, 1, 2)),
                 numerics=L, align=False).output
    np.testing.assert_array_equal(v[:, 0, 0], [0, -(2**22), -(2**23 - 1), -(2**23 - 1)])


def test_threshold_is_strict():
    # a = 10 -> u = v = 640 = 10 << 6: not above vth = 10
    z = simulate(_one(10, i_decay=4096, v_decay=4096, vth=10), _pulse(3), align=False, numerics=L).output
    assert z.sum() == 0
    z = simulate(_one(11, i_decay=4096, v_decay=4096, vth=10), _pulse(3), align=False, numerics=L).output
    np.testing.assert_array_equal(z[:, 0, 0], [0, 1, 0])


def test_one_step_latency_per_hop_and_alignment():
    lif = lambda: snn.LIF(tau_mem=5e-3, dt=1e-3, reset="zero")  # noqa: E731
    m = snn.Sequential(torch.nn.Linear(1, 1, bias=False), lif(), torch.nn.Linear(1, 1, bias=False), lif())
    with torch.no_grad():
        m[0].weight.fill_(2.0)
        m[2].weight.fill_(2.0)
    g = trace(m, dt=1e-3)
    x = _pulse(6)
    raw = simulate(g, x, numerics="loihi", align=False)
    assert np.flatnonzero(raw.traces["1_lif"][:, 0, 0]).tolist() == [1]
    assert np.flatnonzero(raw.traces["3_lif"][:, 0, 0]).tolist() == [2]
    al = simulate(g, x, numerics="loihi")
    assert al.latency["3_lif"] == 2 and al.steps == 6 + 2
    assert np.flatnonzero(al.traces["3_lif"][:, 0, 0]).tolist() == [0]


def test_per_synapse_delays_add_to_the_hop():
    w = np.array([[3.0, 3.0]])
    d = np.array([[0, 4]])
    cuba = ir.LoihiCUBA(i_decay=np.full(1, 4096), v_decay=np.full(1, 4096), vth=np.full(1, 1), bias=np.zeros(1))
    g = ir.Graph({"input": ir.Input((2,)), "syn": ir.DelayAffine(w, d), "cuba": cuba, "output": ir.Output((1,))},
                 [("input", "syn"), ("syn", "cuba"), ("cuba", "output")], dt=1e-3, metadata={"numerics": "loihi"})
    x = np.zeros((8, 1, 2))
    x[0, 0, :] = 1
    z = simulate(g, x, align=False, numerics=L).output[:, 0, 0]
    assert np.flatnonzero(z).tolist() == [1, 5]  # delay 0 -> t+1, delay 4 -> t+5


def test_quantised_recurrent_net_tracks_float_model():
    torch.manual_seed(0)
    m = snn.Sequential(RLIF(16, 24, dt=1e-3, tau_mem=5e-3, reset="zero"), torch.nn.Linear(24, 6),
                       snn.LIF(tau_mem=5e-3, dt=1e-3, reset="zero"))
    with torch.no_grad():
        m[0].fc.weight.mul_(3)
        m[0].rec.weight.mul_(2)
        m[1].weight.mul_(3)
    x = (torch.rand(60, 4, 16) < 0.3).float()
    with torch.no_grad():
        y = m(x)[0].numpy()
    g = trace(m, dt=1e-3)
    q = quantize(g, "loihi")
    info = q.metadata["quant"]["0_lif"]
    w = q.nodes["0_fc"].weight
    assert np.all(w == np.round(w)) and np.all(w % 2 == 0) and w.min() >= -256 and w.max() <= 254
    assert max(np.abs(w).max(), np.abs(q.nodes["0_rec"].weight).max()) == 254  # one shared scale
    assert info["scale"] > 0
    out = simulate(q, x, numerics="loihi").output
    assert np.mean(out == y) > 0.95


def test_loihi_refusals():
    m = snn.Sequential(torch.nn.Linear(4, 3), snn.LIF(tau_mem=5e-3, dt=1e-3))  # reset="subtract"
    g = trace(m, dt=1e-3)
    with pytest.raises(ExportError, match=r"'1_lif'.*subtract"):
        quantize(g, "loihi")
    assert quantize(g, "loihi", reset_policy="zero").metadata["quant"]["1_lif"]["approximations"]
    with pytest.raises(DTypeError, match="integer inputs"):
        simulate(g, np.full((3, 1, 4), 0.5), numerics="loihi", quantize_kwargs={"reset_policy": "zero"})
    d = ir.Graph({"input": ir.Input((2,)), "syn": ir.DelayAffine(np.ones((1, 2)), np.array([[0, 63]])),
                  "lif": ir.LIF(tau=np.full(1, 1e-2), r=np.ones(1), v_threshold=np.ones(1)),
                  "output": ir.Output((1,))}, [("input", "syn"), ("syn", "lif"), ("lif", "output")], dt=1e-3)
    with pytest.raises(ExportError, match=r"'syn'.*delay 63.*62"):
        quantize(d, "loihi")
    back2back = ir.Graph({"input": ir.Input((2,)), "a": ir.Linear(np.ones((2, 2))), "b": ir.Linear(np.ones((2, 2))),
                          "lif": ir.LIF(tau=np.full(2, 1e-2), r=np.ones(2), v_threshold=np.ones(2)),
                          "output": ir.Output((2,))},
                         [("input", "a"), ("a", "b"), ("b", "lif"), ("lif", "output")], dt=1e-3)
    with pytest.raises(ExportError, match="'a'"):
        quantize(back2back, "spinnaker2")
