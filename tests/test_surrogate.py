import pytest
import torch

from spikeseq import surrogate as sg
from spikeseq.errors import ParameterError

ALL = [sg.ATan(2.0), sg.ATan(5.0), sg.Sigmoid(4.0), sg.FastSigmoid(25.0), sg.Triangle(1.0, 0.7),
       sg.Triangle(3.6, 0.7), sg.StraightThrough()]


@pytest.mark.parametrize("s", ALL, ids=lambda s: repr(s))
def test_grad_is_derivative_of_primitive(s):
    # float64 central finite difference of the smooth primitive, away from the kinks of Triangle / FastSigmoid
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    x = x[(x.abs() > 1e-3) & ((x.abs() - getattr(s, "width", 99.0)).abs() > 1e-3)]
    h = 1e-6
    fd = (s.primitive(x + h) - s.primitive(x - h)) / (2 * h)
    torch.testing.assert_close(s.grad(x), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("s", ALL, ids=lambda s: repr(s))
def test_spike_forward_is_strict_heaviside_and_backward_uses_grad(s):
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0], requires_grad=True)
    z = sg.spike(x, s)
    assert z.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    z.backward(g)
    torch.testing.assert_close(x.grad, g * s.grad(x.detach()))


def test_known_values():
    assert sg.ATan(2.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert sg.Sigmoid(4.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert sg.FastSigmoid(25.0).grad(torch.tensor(0.04)).item() == pytest.approx(0.25)
    assert sg.Triangle(2.0, 0.7).grad(torch.tensor(1.0)).item() == pytest.approx(0.35)
    assert sg.Triangle(2.0, 0.7).grad(torch.tensor(2.5)).item() == 0.0


def test_bad_parameters_and_names():
    with pytest.raises(ParameterError, match="alpha"):
        sg.ATan(0.0)
    with pytest.raises(ParameterError, match="known"):
        sg.by_name("nope")
    assert sg.by_name("atan", alpha=5.0) == sg.ATan(5.0)
