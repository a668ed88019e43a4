"""Models built from neurons take ``tau`` (seconds) and ``dt`` like the neurons; states hold tensors, not ints."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ParameterError
from spikeseq.functional import tau_from_decay
from spikeseq.models.l2mu import L2MU
from spikeseq.models.lmuformer import LMUFormer
from spikeseq.models.registry import build


def _leaves(state):
    if isinstance(state, tuple):
        for s in state:
            yield from _leaves(s)
    else:
        yield state


def test_l2mu_tau_in_seconds_equals_the_decay_it_stands_for():
    dt = 0.02
    kw = dict(order=2, theta=4.0, hidden_size=8, memory_size=4, input_pop_size=4, dt=dt)
    torch.manual_seed(0)
    by_beta = L2MU(6, 3, beta_u=0.8, beta_m=0.35, beta_h=0.6, beta_in=0.5, beta_out=0.3, **kw)
    torch.manual_seed(0)
    by_tau = L2MU(6, 3, tau_u=tau_from_decay(0.8, dt), tau_m=tau_from_decay(0.35, dt), tau_h=tau_from_decay(0.6, dt),
                  tau_in=tau_from_decay(0.5, dt), tau_out=tau_from_decay(0.3, dt), **kw)
    for a, b in zip(by_beta.parameters(), by_tau.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert float(by_tau.pop_u.tau_mem.detach()) == pytest.approx(tau_from_decay(0.8, dt), rel=1e-6)
    x = torch.randn(10, 2, 6)
    torch.testing.assert_close(by_beta(x)[0], by_tau(x)[0], rtol=0, atol=0)
    # the same tau at another dt is another decay: time is physical
    slow = L2MU(6, 3, tau_u=0.1, **{**kw, "dt": 0.01})
    assert float(slow.pop_u.beta.detach()) == pytest.approx(float(torch.exp(torch.tensor(-0.1))), rel=1e-6)
    with pytest.raises(ParameterError, match=r"give tau_u .* not both"):
        L2MU(6, 3, tau_u=0.1, beta_u=0.5, **kw)


def test_lmuformer_takes_tau_and_dt():
    torch.manual_seed(0)
    m = LMUFormer(6, 3, dim=8, order=4, theta=8.0, tau=0.05, dt=0.01)
    lifs = [mod for mod in m.modules() if type(mod).__name__ == "LIF"]
    assert lifs and all(float(lif.beta.detach()) == pytest.approx(float(torch.exp(torch.tensor(-0.2))), rel=1e-6)
                        for lif in lifs)
    default = LMUFormer(6, 3, dim=8, order=4, theta=8.0)
    assert all(float(lif.beta.detach()) == pytest.approx(0.5)
               for lif in default.modules() if type(lif).__name__ == "LIF")
    with pytest.raises(ParameterError, match="not both"):
        LMUFormer(6, 3, tau=0.05, beta=0.5)


@pytest.mark.parametrize("name, kw", [
    ("l2mu", dict(order=2, theta=4.0, hidden_size=8, memory_size=4, readout="membrane")),
    ("spiking_lmuformer", dict(dim=8, order=4, theta=8.0)),
    ("lmuformer", dict(dim=8, order=4, theta=8.0)),
])
def test_states_hold_tensors_not_python_numbers_and_stream(name, kw):
    torch.manual_seed(0)
    m = build(name, input_size=6, n_classes=3, **kw).eval()
    x = torch.randn(9, 2, 6)
    with torch.no_grad():
        y, state = m(x)
        y1, s = m(x[:4])
        y2, _ = m(x[4:], s)
    leaves = list(_leaves(state))
    assert leaves and all(v is None or isinstance(v, torch.Tensor) for v in leaves)
    assert not any(isinstance(v, (int, float)) for v in leaves)
    torch.testing.assert_close(torch.cat([y1, y2]), y, rtol=1e-5, atol=1e-5)
