"""Two small spiking classifiers built from :mod:`spikeseq.nn`.

``snn_mlp``: feed-forward ``[Flatten ->] (Linear -> LIF) x len(hidden) -> Linear -> LI``. Input ``[T, B, ...]``
(trailing dims are flattened, e.g. N-MNIST frames ``[T, B, 2, 34, 34]``), output the LI membrane trace
``[T, B, n_out]``.

``rsnn``: one recurrent LIF layer (:class:`spikeseq.nn.RLIF`) for sensor sequences (HAR): the input current at
step t is ``W x[t] + b + R z[t-1]``, spikes ``z`` go to a Linear -> LI readout. Input ``[T, B, n_in]``, output
``[T, B, n_out]``.
The raw (normalised) signal is the input current, as in the "recurrent LIF, raw signal" reference point of
``specs/har-reference-points.md``; a delta code would drop the gravity component that separates postures.

Both are :class:`spikeseq.nn.Sequential` networks (so :mod:`spikeseq.graph` traces and exports them) and follow
the LIF equations of :mod:`spikeseq.functional.lif` and keep no hidden state: ``y, state = m(x, state)``. Every
Linear fed by spiking neurons is a :class:`spikeseq.nn.SpikeLinear` (event-driven products where they pay; the
first layer takes the raw input, which may be graded, and stays an ``nn.Linear``).
"""

from __future__ import annotations

import torch
from torch import nn

from spikeseq.checks import check_sequence
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.nn import LI, LIF, Sequential, SpikeLinear
from spikeseq.nn.recurrent import RLIF


def _hidden_list(hidden: int | list[int] | tuple[int, ...]) -> list[int]:
    sizes = [hidden] if isinstance(hidden, int) else list(hidden)
    if not sizes or any((not isinstance(h, int)) or h < 1 for h in sizes):
        raise ParameterError(f"hidden must be a positive int or a non-empty list of them, got {hidden!r}")
    return sizes


class SNNMLP(Sequential):
    """Feed-forward LIF classifier (see module docstring); a :class:`~spikeseq.nn.Sequential`, so it traces and
    exports like one."""

    def __init__(self, n_in: int, n_out: int, hidden: int | list[int] = 256, *, tau_mem: float = 0.02,
                 tau_out: float | None = None, dt: float = 1e-3, v_th: float = 1.0, reset: str = "subtract",
                 learn: str = "none", backend: str = "auto") -> None:
        sizes = _hidden_list(hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        prev = int(n_in)
        for i, h in enumerate(sizes):  # layers after the first take spikes: event-driven products where they pay
            linear = nn.Linear(prev, h) if i == 0 else SpikeLinear(prev, h)
            layers += [linear, LIF(tau_mem=tau_mem, dt=dt, v_th=v_th, reset=reset, learn=learn,
                                                backend=backend)]
            prev = h
        layers += [SpikeLinear(prev, int(n_out)), LI(tau_mem=tau_out or tau_mem, dt=dt, learn=learn, backend=backend)]
        super().__init__(*layers)
        self.n_in, self.n_out = int(n_in), int(n_out)

    def forward(self, x: torch.Tensor, state: tuple | None = None):
        """``v [T, B, n_out], state = model(x [T, B, ...], state)``; ``ShapeError`` unless a step has ``n_in``."""
        check_sequence(x)
        flat = 1
        for s in x.shape[2:]:
            flat *= s
        if flat != self.n_in:
            raise ShapeError(f"snn_mlp expects {self.n_in} input features per step, got {tuple(x.shape[2:])} "
                             f"= {flat}; set [model] n_in = {flat}")
        return super().forward(x, state)


class RSNN(Sequential):
    """Recurrent LIF layer (:class:`~spikeseq.nn.RLIF`) -> Linear -> LI readout (see module docstring)."""

    def __init__(self, n_in: int, n_out: int, hidden: int = 128, *, tau_mem: float = 0.1,
                 tau_out: float | None = None, dt: float = 0.02, v_th: float = 1.0, reset: str = "subtract",
                 learn: str = "none", backend: str = "auto") -> None:
        (h,) = _hidden_list(hidden)
        super().__init__(
            RLIF(int(n_in), h, tau_mem=tau_mem, dt=dt, v_th=v_th, reset=reset, learn=learn),
            SpikeLinear(h, int(n_out)),
            LI(tau_mem=tau_out or tau_mem, dt=dt, learn=learn, backend=backend),
        )
        self.n_in, self.n_out, self.hidden = int(n_in), int(n_out), h

    def forward(self, x: torch.Tensor, state: tuple | None = None):
        """``v [T, B, n_out], state = model(x [T, B, n_in], state)``; ``ShapeError`` for another input shape."""
        check_sequence(x)
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ShapeError(f"rsnn expects [T, B, {self.n_in}], got {tuple(x.shape)}; set [model] n_in to the "
                             "number of channels")
        return super().forward(x, state)


def build_snn_mlp(**cfg) -> SNNMLP:
    """Registry builder of :class:`SNNMLP` (``cfg``: its keyword arguments)."""
    return SNNMLP(**cfg)


def build_rsnn(**cfg) -> RSNN:
    """Registry builder of :class:`RSNN` (``cfg``: its keyword arguments)."""
    return RSNN(**cfg)
