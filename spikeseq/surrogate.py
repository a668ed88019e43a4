"""Surrogate gradients for the Heaviside spike function.

Every surrogate has the same forward, the Heaviside step with a strict comparison,

    z = H(x) = 1 if x > 0 else 0,        x = v - v_th,

and defines its backward once, as ``grad_(x)``: the derivative of a smooth ``primitive(x)``, evaluated in place
on a tensor the caller owns (no temporaries: on the CPU each fresh sequence-sized tensor costs more than the
arithmetic). ``grad(x) = grad_(x.clone())`` is the out-of-place form. The autograd function :func:`spike` and
every fast kernel call these methods, so each formula exists in one place. Tests compare ``grad`` with a float64
finite difference of ``primitive``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from spikeseq.errors import ParameterError


@dataclass(frozen=True)
class Surrogate:
    """Base class. Subclasses implement ``grad`` and ``primitive`` with the same formula in torch."""

    name: ClassVar[str] = "surrogate"

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative, overwriting ``x`` (subclasses implement this or :meth:`grad`)."""
        return x.copy_(self.grad(x))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative as a new tensor."""
        return self.grad_(x.clone())

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The smooth function whose derivative is the surrogate gradient (used by the finite-difference tests)."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``H(x)`` forward (``x > 0``), this surrogate's gradient backward (:func:`spike`)."""
        return spike(x, self)


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arc-tangent surrogate (Fang et al. 2021, SpikingJelly; snnTorch ``atan``).

    primitive(x) = 1/pi * arctan(pi/2 * alpha * x) + 1/2
    grad(x)      = (alpha/2) / (1 + (pi/2 * alpha * x)^2)

    alpha = 2 is the SpikingJelly and snnTorch default; the delay paper uses alpha = 5 (specs/models.md §5).
    """

    alpha: float = 2.0
    name: ClassVar[str] = "atan"

    def __post_init__(self) -> None:
        _positive(self.alpha, "ATan.alpha")

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """``grad(x)`` of the class docstring, written into ``x``."""
        return x.mul_(math.pi / 2 * self.alpha).square_().add_(1).reciprocal_().mul_(self.alpha / 2)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """``primitive(x)`` of the class docstring."""
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic surrogate (SpikingJelly ``Sigmoid``, default alpha = 4, used by LMUFormer).

    primitive(x) = sigmoid(alpha * x)
    grad(x)      = alpha * sigmoid(alpha x) * (1 - sigmoid(alpha x))
    """

    alpha: float = 4.0
    name: ClassVar[str] = "sigmoid"

    def __post_init__(self) -> None:
        _positive(self.alpha, "Sigmoid.alpha")

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """``grad(x)`` of the class docstring, written into ``x``."""
        s = x.mul_(self.alpha).sigmoid_()
        return s.addcmul_(s, s, value=-1).mul_(self.alpha)  # alpha * s * (1 - s)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """``primitive(x)`` of the class docstring."""
        return torch.sigmoid(self.alpha * x)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike fast sigmoid (Zenke & Ganguli 2018; snnTorch ``fast_sigmoid``, default slope 25).

    primitive(x) = x / (1 + slope * |x|)
    grad(x)      = 1 / (1 + slope * |x|)^2
    """

    slope: float = 25.0
    name: ClassVar[str] = "fast_sigmoid"

    def __post_init__(self) -> None:
        _positive(self.slope, "FastSigmoid.slope")

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """``grad(x)`` of the class docstring, written into ``x``."""
        return x.abs_().mul_(self.slope).add_(1).square_().reciprocal_()

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """``primitive(x)`` of the class docstring."""
        return x / (1 + self.slope * x.abs())


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangular pseudo-derivative of EGRU (Subramoney et al. 2023, specs/models.md §4).

    grad(x)      = dampening * max(0, 1 - |x| / width)
    primitive(x) = dampening * (clamp(x, -w, w) - sign(x) * clamp(x, -w, w)^2 / (2 w))

    ``width`` is the half-width of the support (EGRU's epsilon = 1 / width); dampening gamma = 0.7 in EGRU.
    """

    width: float = 1.0
    dampening: float = 0.7
    name: ClassVar[str] = "triangle"

    def __post_init__(self) -> None:
        _positive(self.width, "Triangle.width")
        _positive(self.dampening, "Triangle.dampening")

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """``grad(x)`` of the class docstring, written into ``x``."""
        return x.abs_().div_(-self.width).add_(1).clamp_(min=0).mul_(self.dampening)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """``primitive(x)`` of the class docstring."""
        c = x.clamp(-self.width, self.width)
        return self.dampening * (c - torch.sign(c) * c.square() / (2 * self.width))


@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """Straight-through estimator: grad(x) = 1, primitive(x) = x (Bengio et al. 2013)."""

    name: ClassVar[str] = "straight_through"

    def grad_(self, x: torch.Tensor) -> torch.Tensor:
        """``grad(x) = 1``, written into ``x``."""
        return x.fill_(1)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """``primitive(x) = x`` (a copy)."""
        return x.clone()


def _positive(value: float, name: str) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ParameterError(f"{name} must be a finite number > 0, got {value}")


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return ctx.surrogate.grad(x).mul_(grad_out), None


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Heaviside ``x > 0`` in the forward pass, ``surrogate.grad(x)`` in the backward pass."""
    return _SpikeFunction.apply(x, surrogate)


DEFAULT = ATan(alpha=2.0)

_BY_NAME: dict[str, type[Surrogate]] = {
    "atan": ATan,
    "sigmoid": Sigmoid,
    "fast_sigmoid": FastSigmoid,
    "triangle": Triangle,
    "straight_through": StraightThrough,
}


def by_name(name: str, **params: float) -> Surrogate:
    """Build a surrogate from a config name, e.g. ``by_name("atan", alpha=5)``."""
    try:
        cls = _BY_NAME[name]
    except KeyError:
        raise ParameterError(f"unknown surrogate {name!r}; known: {', '.join(sorted(_BY_NAME))}") from None
    return cls(**params)
