"""spikeseq.nn neuron modules: decays from tau, learnable tau / beta / threshold with gradients equal on every
backend (float64, 1e-10), states threaded, and bad input rejected with the specific errors."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq import nn as snn
from spikeseq.errors import BackendUnavailableError, DTypeError, NonFiniteError, ParameterError, ShapeError
from spikeseq.functional import LIFState
from tests.conftest import expected_backends

D = torch.float64
FAST = expected_backends("lif_scan", exclude=("torch",))   # non-empty; holds "cpu" under SPIKESEQ_REQUIRE_NATIVE=1


def _x(T=30, B=3, N=6):
    return (torch.randn(T, B, N, dtype=D) * 1.5 + 0.4).requires_grad_()


def _grads(module, x, state=None):
    y, new = module(x, state)
    gen = torch.Generator().manual_seed(3)
    loss = (y * torch.randn(y.shape, generator=gen, dtype=D)).sum()
    loss = loss + sum((s * torch.randn(s.shape, generator=gen, dtype=D)).sum() for s in new)
    params = [p for _, p in sorted(module.named_parameters())]
    grads = torch.autograd.grad(loss, [x, *params])
    return y.detach(), grads, [n for n, _ in sorted(module.named_parameters())]


def _same_on_backends(make, x=None, state=None):
    x = _x() if x is None else x
    ref = make("torch").double()
    y_r, g_r, names = _grads(ref, x, state)
    assert names, "the module should have learnable parameters in this test"
    for b in FAST:
        mod = make(b).double()
        mod.load_state_dict(ref.state_dict())
        y, g, _ = _grads(mod, x, state)
        assert torch.equal(y, y_r), b
        for name, a, c in zip(["x", *names], g_r, g, strict=True):
            torch.testing.assert_close(c, a, atol=1e-10, rtol=0, msg=f"{b}: grad of {name}")
    return g_r, names


def test_decay_from_tau_known_answer():
    lif = snn.LIF(tau_mem=0.02, dt=1e-3)
    assert lif.beta.item() == pytest.approx(math.exp(-0.05), rel=1e-6)
    assert snn.LIF(beta=0.9, dt=1e-3).tau_mem.item() == pytest.approx(-1e-3 / math.log(0.9), rel=1e-6)


@pytest.mark.parametrize("learn", ["tau", "beta"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_learnable_decay_and_threshold_gradients(learn, reset):
    def make(backend):
        return snn.LIF(6, tau_mem=0.01, dt=1e-3, reset=reset, learn=learn, learn_threshold=True, backend=backend)

    grads, names = _same_on_backends(make)
    assert names == sorted([f"time.{learn}_mem", "v_th"])
    for g in grads[1:]:
        assert g.shape == (6,) and g.abs().sum() > 0  # per-neuron, and actually reached


def test_lif_population_scalar_parameters_and_state():
    def make(backend):
        return snn.LIF(beta=0.8, learn="beta", learn_threshold=True, backend=backend)

    grads, _ = _same_on_backends(make, state=LIFState(torch.randn(3, 6, dtype=D)))
    assert all(g.dim() == 0 for g in grads[1:])


def test_cuba_learnable_time_constants():
    def make(backend):
        return snn.CubaLIF(6, tau_syn=5e-3, tau_mem=1e-2, learn="tau", learn_threshold=True, backend=backend)

    grads, names = _same_on_backends(make, x=_x() * 0.5)
    assert names == ["time.tau_mem", "time.tau_syn", "v_th"]
    assert all(g.abs().sum() > 0 for g in grads[1:])


def test_alif_learnable_time_constants_and_threshold():
    def make(backend):
        return snn.ALIF(6, tau_mem=1e-2, tau_adapt=5e-2, adapt=0.5, learn="tau", learn_threshold=True,
                        backend=backend)

    grads, names = _same_on_backends(make)
    assert names == ["time.tau_adapt", "time.tau_mem", "v_th"]
    assert all(g.abs().sum() > 0 for g in grads[1:])


def test_li_and_if_modules():
    def make_li(backend):
        return snn.LI(6, tau_mem=0.01, learn="tau", backend=backend)

    _same_on_backends(make_li)

    def make_if(backend):
        return snn.IF(6, learn_threshold=True, backend=backend)

    _same_on_backends(make_if)


def test_step_equals_forward_and_state_threads():
    lif = snn.LIF(4, beta=0.85).double()
    x = torch.randn(10, 2, 4, dtype=D) * 2
    z_all, s_all = lif(x)
    s, zs = None, []
    for t in range(10):
        z, s = lif.step(x[t], s)
        zs.append(z)
    assert torch.equal(torch.stack(zs), z_all) and torch.equal(s.v, s_all.v)


def test_bad_input_and_bad_configuration():
    lif = snn.LIF(3, beta=0.9)
    with pytest.raises(DTypeError):
        lif(torch.ones(4, 2, 3, dtype=torch.int64))
    with pytest.raises(ShapeError):
        lif(torch.ones(3))
    with pytest.raises(ShapeError):
        lif(torch.ones(4, 2, 3), LIFState(torch.zeros(2, 5)))
    with pytest.raises(NonFiniteError):
        lif(torch.full((4, 2, 3), float("nan")))
    with pytest.raises(ParameterError):
        snn.LIF(beta=0.9, reset="bounce")
    with pytest.raises(ParameterError):
        snn.LIF(beta=0.9, tau_mem=0.01)
    with pytest.raises(ParameterError):
        snn.LIF(tau_mem=-0.01)
    with pytest.raises(ParameterError):
        snn.LIF(beta=0.9, learn="alpha")
    with pytest.raises(ParameterError):
        snn.CubaLIF(tau_mem=0.01)  # no synaptic time constant
    with pytest.raises(BackendUnavailableError):
        snn.LIF(beta=0.9, backend="fpga")(torch.ones(2, 1, 3))


def test_project_puts_decays_and_thresholds_back_in_range():
    """project_ (the training loop's step-end projection): raw decays into [0, 1], trainable tau >= 1e-12 s,
    trainable thresholds >= 0; values in range are left alone, buffers are not touched."""
    from spikeseq.nn import LI, LIF, CubaLIF

    lif = LIF(3, beta=0.5, v_th=0.4, learn="beta", learn_threshold=True)
    with torch.no_grad():
        lif.time.beta_mem.copy_(torch.tensor([1.3, -0.2, 0.7]))
        lif.v_th.fill_(-0.05)
    lif.project_()
    assert torch.equal(lif.time.beta_mem, torch.tensor([1.0, 0.0, 0.7]))
    assert torch.equal(lif.v_th, torch.zeros(3))
    cuba = CubaLIF(2, tau_syn=5e-3, tau_mem=1e-2, dt=1e-3, v_th=0.3, learn="tau")
    with torch.no_grad():
        cuba.time.tau_syn.fill_(-1.0)
    cuba.project_()
    assert torch.equal(cuba.time.tau_syn, torch.full((2,), 1e-12))
    assert torch.equal(cuba.time.tau_mem, torch.full((2,), 1e-2))
    assert torch.allclose(cuba.v_th, torch.tensor(0.3))   # a buffer (learn_threshold False): untouched
    li = LI(beta=0.9, learn="beta")
    with torch.no_grad():
        li.time.beta_mem.fill_(1.01)
    li.project_()
    assert float(li.time.beta_mem) == 1.0


def test_l2mu_step_end_projects_its_populations():
    """L2MU.train_step_end projects every population (a decay pushed past 1 gets its gradient back)."""
    from spikeseq.models import registry

    m = registry.build("l2mu", input_size=3, n_classes=2, order=2, theta=4.0, hidden_size=5, memory_size=3,
                       neuron="lif", input_module="lif")
    with torch.no_grad():
        m.pop_m.time.beta_mem.fill_(1.02)
        m.pop_m.v_th.fill_(-0.02)
        m.pop_x.v_th.fill_(-1.0)
        m.pop_out.time.beta_mem.fill_(-0.5)
    m.train_step_end()
    assert float(m.pop_m.time.beta_mem) == 1.0 and float(m.pop_m.v_th) == 0.0
    assert float(m.pop_x.v_th) == 0.0 and float(m.pop_out.time.beta_mem) == 0.0
