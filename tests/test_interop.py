"""Same spikes and membrane traces as snnTorch and Norse for matching settings (float64, tolerance 1e-6).

- LIF == snnTorch ``Leaky(reset_mechanism="zero")``: snnTorch's ``mem`` is our ``v_pre`` (membrane before reset);
  with ``reset_delay=False`` its ``mem`` is our post-reset ``v``.
- LIF == Norse ``LIFBoxCell``: Norse's Euler step ``v + dt/tau (x' - v)`` is ``beta v + x`` with
  ``beta = 1 - dt/tau`` and ``x' = x / (dt/tau)``; ``reset_value`` (to 0) is our ``"zero"``, ``reset_subtract``
  our ``"subtract"``; Norse's state is our post-reset ``v``.
- CubaLIF == snnTorch ``Synaptic(reset_mechanism="zero", reset_delay=False)`` and ``reset_mechanism="none"``:
  ``syn`` is our ``i``, ``mem`` our ``v``. (snnTorch's delayed resets differ from ours: its delayed "subtract"
  does not decay the subtracted threshold, and Synaptic's delayed "zero" also zeroes the input of the next step.)
Every fast backend available here runs the same comparison on spikes and final state.
"""

from __future__ import annotations

import pytest
import torch

from spikeseq import functional as F
from spikeseq import kernels as K
from spikeseq import surrogate as sg
from tests.conftest import expected_backends

D = torch.float64
TOL = 1e-6
BACKENDS = expected_backends("lif_scan")   # non-empty; holds "cpu" under SPIKESEQ_REQUIRE_NATIVE=1


def _input(T=60, B=3, N=8, scale=1.2):
    return torch.randn(T, B, N, dtype=D) * scale + 0.4


def _ours_lif_trace(x, beta, v_th, reset):
    """Spikes, v_pre and post-reset v of every step, from the reference step function."""
    v, zs, pres, posts = None, [], [], []
    for t in range(x.shape[0]):
        prev = torch.zeros_like(x[t]) if v is None else v.v
        z, v = F.lif_step(x[t], v, beta=beta, v_th=v_th, reset=reset)
        zs.append(z)
        pres.append(beta * prev + x[t])
        posts.append(v.v)
    return torch.stack(zs), torch.stack(pres), torch.stack(posts)


def _check_backends(x, z_ref, v_final, **params):
    for b in BACKENDS:
        z, s = K.lif_scan(x, backend=b, **params)
        assert torch.equal(z, z_ref), b
        torch.testing.assert_close(s.v, v_final, atol=TOL, rtol=0)


@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("reset_delay", [True, False])
def test_lif_equals_snntorch_leaky(per_neuron, reset_delay):
    snn = pytest.importorskip("snntorch")
    x = _input()
    beta = torch.linspace(0.5, 0.95, 8, dtype=D) if per_neuron else torch.tensor(0.9, dtype=D)
    leaky = snn.Leaky(beta=beta, threshold=torch.tensor(1.0, dtype=D), reset_mechanism="zero",
                      reset_delay=reset_delay)
    mem, spk, mems = torch.zeros_like(x[0]), [], []
    for t in range(x.shape[0]):
        s, mem = leaky(x[t], mem)
        spk.append(s.to(D))
        mems.append(mem)
    spk, mems = torch.stack(spk), torch.stack(mems)
    z, v_pre, v_post = _ours_lif_trace(x, beta, 1.0, "zero")
    assert 0.05 < z.mean() < 0.5  # a real number of spikes
    assert torch.equal(z, spk)
    torch.testing.assert_close(mems, v_pre if reset_delay else v_post, atol=TOL, rtol=0)
    _check_backends(x, z, v_post[-1], beta=beta, v_th=1.0, reset="zero")


def test_lif_gradients_equal_snntorch_leaky():
    snn = pytest.importorskip("snntorch")
    from snntorch import surrogate as ssg

    x = _input(T=40).requires_grad_()
    leaky = snn.Leaky(beta=torch.tensor(0.9, dtype=D), threshold=torch.tensor(1.0, dtype=D),
                      reset_mechanism="zero", spike_grad=ssg.atan(alpha=2.0))
    mem, spk = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        s, mem = leaky(x[t], mem)
        spk.append(s.to(D))
    w = torch.randn(x.shape, dtype=D)
    (g_snn,) = torch.autograd.grad((torch.stack(spk) * w).sum(), x)
    for b in BACKENDS:  # snnTorch detaches its reset; its spikes are float32, so its gradients carry ~1e-7 error
        z, _ = K.lif_scan(x, beta=0.9, v_th=1.0, reset="zero", detach_reset=True, surrogate=sg.ATan(2.0), backend=b)
        (g,) = torch.autograd.grad((z * w).sum(), x)
        torch.testing.assert_close(g, g_snn, atol=TOL, rtol=0)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_lif_equals_norse_lifbox(reset):
    pytest.importorskip("norse")
    from norse.torch import LIFBoxCell
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract, reset_value

    dt, tau_mem_inv = 1e-3, 100.0
    p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(tau_mem_inv, dtype=D), v_leak=torch.as_tensor(0.0, dtype=D),
                         v_th=torch.as_tensor(1.0, dtype=D), v_reset=torch.as_tensor(0.0, dtype=D),
                         reset_method=reset_value if reset == "zero" else reset_subtract)
    cell = LIFBoxCell(p, dt=dt)
    x = _input()
    k = dt * tau_mem_inv
    state, zs, vs = None, [], []
    for t in range(x.shape[0]):
        z, state = cell(x[t] / k, state)
        zs.append(z)
        vs.append(state.v)
    beta = 1.0 - k
    z, _, v_post = _ours_lif_trace(x, beta, 1.0, reset)
    assert 0.05 < z.mean() < 0.5
    assert torch.equal(z, torch.stack(zs))
    torch.testing.assert_close(torch.stack(vs), v_post, atol=TOL, rtol=0)
    _check_backends(x, z, v_post[-1], beta=beta, v_th=1.0, reset=reset)


@pytest.mark.parametrize("reset", ["zero", "none"])
def test_cuba_equals_snntorch_synaptic(reset):
    snn = pytest.importorskip("snntorch")
    x = torch.randn(60, 3, 8, dtype=D) * 0.5 + 0.05
    alpha, beta = torch.tensor(0.7, dtype=D), torch.linspace(0.6, 0.9, 8, dtype=D)
    syn_neuron = snn.Synaptic(alpha=alpha, beta=beta, threshold=torch.tensor(1.0, dtype=D), reset_mechanism=reset,
                              reset_delay=False)
    syn, mem = torch.zeros_like(x[0]), torch.zeros_like(x[0])
    spk, syns, mems = [], [], []
    for t in range(x.shape[0]):
        s, syn, mem = syn_neuron(x[t], syn, mem)
        spk.append(s.to(D))
        syns.append(syn)
        mems.append(mem)
    state, zs, cur, vs = None, [], [], []
    for t in range(x.shape[0]):
        z, state = F.cuba_lif_step(x[t], state, alpha=alpha, beta=beta, v_th=1.0, reset=reset)
        zs.append(z)
        cur.append(state.i)
        vs.append(state.v)
    z = torch.stack(zs)
    assert 0.02 < z.mean() < 0.8
    assert torch.equal(z, torch.stack(spk))
    torch.testing.assert_close(torch.stack(syns), torch.stack(cur), atol=TOL, rtol=0)
    torch.testing.assert_close(torch.stack(mems), torch.stack(vs), atol=TOL, rtol=0)
    for b in expected_backends("cuba_lif_scan"):
        zb, sb = K.cuba_lif_scan(x, alpha=alpha, beta=beta, v_th=1.0, reset=reset, backend=b)
        assert torch.equal(zb, z), b
        torch.testing.assert_close(sb.v, vs[-1], atol=TOL, rtol=0)
        torch.testing.assert_close(sb.i, cur[-1], atol=TOL, rtol=0)
