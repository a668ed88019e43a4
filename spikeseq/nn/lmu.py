"""LMU modules: the frozen Legendre memory and the (spiking) LMU cell of LMUFormer.

Equations: :mod:`spikeseq.functional.lmu`. :class:`LMUMemory` runs the memory in parallel (FFT) over a whole
sequence or recurrently (step by step, for streaming); both give the same result. :class:`LMU` is the parallel
LMU cell without hidden-to-encoder feedback (Chilkuri & Eliasmith 2021) as used by LMUFormer
(``zeyuliu1037/LMUFormer`` ``src/blocks/lmu_cell.py``, specs/models.md section 3):

    u = f_u(W_u x)                         [T, B, n_u]      (f = ReLU, or BN -> LIF spikes when spiking)
    m = LMUMemory(u)                       [T, B, n_u * d]  (real valued)
    m' = m  or  LIF(BN(m))                 spiking: the memory is turned into spikes
    h = f_h(W_h [m'; x])                   [T, B, hidden]

BatchNorm here normalises each channel over time and batch; in eval mode it is a per-channel affine map, so the
step-by-step (streaming) path computes the same function as the parallel path.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from spikeseq import surrogate as sg
from spikeseq.checks import check_sequence
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional.lmu import (
    LMUState,
    check_lmu_args,
    lmu_impulse_response,
    lmu_matrices,
    lmu_memory_fft,
    lmu_memory_scan,
)
from spikeseq.nn.base import StatefulModule
from spikeseq.nn.neurons import LIF
from spikeseq.types import ResetMode

MODES = ("auto", "fft", "recurrent")
#: Default surrogate of the spiking cell: SpikingJelly's default ``Sigmoid(alpha=4)`` (specs/models.md section 3).
SIGMOID4 = sg.Sigmoid(4.0)


class LMUMemory(StatefulModule):
    """Frozen LMU memory of order ``d`` and window ``theta`` (steps): ``m, state = mem(u [T, B, N])``.

    ``m`` is ``[T, B, N, d]``. ``mode="fft"`` uses the parallel form, ``"recurrent"`` the step loop, ``"auto"``
    the FFT for ``T > 1`` and the step otherwise. ``A_bar``/``B_bar`` are buffers (never trained).
    """

    def __init__(self, order: int, theta: float, *, dt: float = 1.0, mode: str = "auto") -> None:
        super().__init__()
        check_lmu_args(order, theta, dt)
        if mode not in MODES:
            raise ParameterError(f"unknown LMU memory mode {mode!r}; expected one of {', '.join(MODES)}")
        self.order, self.theta, self.dt_steps, self.mode = order, float(theta), float(dt), mode
        a, b = lmu_matrices(order, theta, dt, dtype=torch.float64)
        self.register_buffer("a_bar", a.float(), persistent=False)
        self.register_buffer("b_bar", b.float(), persistent=False)
        self._a64, self._b64 = a, b
        self._impulse: dict[tuple, torch.Tensor] = {}

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen ``(A_bar [d, d], B_bar [d])`` in float64 (what :meth:`forward` uses, cast to the input)."""
        return self._a64, self._b64

    def impulse(self, steps: int, like: torch.Tensor) -> torch.Tensor:
        """Impulse response ``H[k] = A_bar^k B_bar``, ``k < steps``, in ``like``'s dtype/device (cached)."""
        key = (steps, like.dtype, like.device)
        if key not in self._impulse:
            self._impulse = {k: v for k, v in self._impulse.items() if k[1:] != key[1:]}
            self._impulse[key] = lmu_impulse_response(self._a64, self._b64, steps).to(like)
        return self._impulse[key]

    def forward(self, u: torch.Tensor, state: LMUState | None = None):
        """``m [T, B, N, d], state = mem(u [T, B, N], state)``: FFT or step loop as chosen by ``mode``."""
        check_sequence(u, "u", min_rank=3)
        a, b = self._a64.to(u), self._b64.to(u)
        if self.mode == "fft" or (self.mode == "auto" and u.shape[0] > 1):
            return lmu_memory_fft(u, state, a_bar=a, b_bar=b, impulse=self.impulse(u.shape[0], u))
        return lmu_memory_scan(u, state, a_bar=a, b_bar=b)

    def extra_repr(self) -> str:
        """Order, window ``theta`` and ``dt`` (in steps) and the ``mode`` for ``repr``."""
        return f"order={self.order}, theta={self.theta}, dt={self.dt_steps}, mode={self.mode!r}"


def bn_time(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a ``BatchNorm1d(C)`` to ``[T, B, C]`` (statistics over time and batch)."""
    t, b, c = x.shape
    return bn(x.reshape(t * b, c)).reshape(t, b, c)


class LMUCellState(NamedTuple):
    """State of :class:`LMU`: the memory, plus the encoder/memory/hidden LIF states (``None`` when not spiking)."""

    u: object  #: encoder neuron state (None when not spiking)
    m: LMUState  #: memory
    m_spk: object  #: memory neuron state (None when not spiking)
    h: object  #: hidden neuron state (None when not spiking)


class LMU(StatefulModule):
    """LMU cell with parallel training (see module docstring): ``h, state = lmu(x [T, B, input_size])``.

    ``spiking=False``: ReLU encoder and hidden, real memory (LMUFormer's ``LMUFFTCell``). ``spiking=True``:
    BN + LIF after the encoder, the memory and the hidden projection (``SpikingLMUFFTCell``); neurons are
    :class:`spikeseq.nn.LIF` with time constant ``tau_mem`` (seconds, with ``dt``) or decay ``beta`` (default 0.5:
    LMUFormer's tau = 2 steps), hard reset,
    detached reset and the sigmoid(alpha=4) surrogate by default.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        order: int,
        theta: float,
        *,
        n_u: int = 1,
        spiking: bool = False,
        tau_mem: float | None = None,
        beta: float | None = None,
        v_th: float = 1.0,
        reset: ResetMode = "zero",
        detach_reset: bool = True,
        surrogate: sg.Surrogate = SIGMOID4,
        dt: float = 1e-3,
        mode: str = "auto",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("n_u", n_u)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ParameterError(f"LMU {name} must be an integer >= 1, got {v!r}")
        self.input_size, self.hidden_size, self.n_u, self.spiking = input_size, hidden_size, n_u, spiking
        self.w_u = nn.Linear(input_size, n_u)
        self.memory = LMUMemory(order, theta, mode=mode)
        self.w_h = nn.Linear(n_u * order + input_size, hidden_size)
        if spiking:
            if tau_mem is None and beta is None:
                beta = 0.5  # LMUFormer's neurons: tau = 2 steps, i.e. half the membrane kept per step
            kw = dict(tau_mem=tau_mem, beta=beta, v_th=v_th, reset=reset, detach_reset=detach_reset,
                      surrogate=surrogate, dt=dt, backend=backend)
            self.bn_u, self.bn_m, self.bn_h = (nn.BatchNorm1d(n_u), nn.BatchNorm1d(n_u * order),
                                               nn.BatchNorm1d(hidden_size))
            self.lif_u, self.lif_m, self.lif_h = LIF(**kw), LIF(**kw), LIF(**kw)

    def forward(self, x: torch.Tensor, state: LMUCellState | None = None):
        """``h [T, B, hidden_size], state = lmu(x [T, B, input_size], state)``; ``ShapeError`` on bad features."""
        check_sequence(x, "x", min_rank=3)
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"LMU expects {self.input_size} input features, got x of shape {tuple(x.shape)}")
        if state is not None and not isinstance(state, LMUCellState):
            raise ShapeError(f"LMU state must be an LMUCellState (the state a call returned) or None, got "
                             f"{type(state).__name__}")
        st = state if state is not None else LMUCellState(None, None, None, None)
        u = self.w_u(x)
        su = sm = sh = None
        if self.spiking:
            u, su = self.lif_u(bn_time(self.bn_u, u), st.u)
        else:
            u = torch.relu(u)
        m, mem = self.memory(u, st.m)
        m = m.flatten(2)
        if self.spiking:
            m, sm = self.lif_m(bn_time(self.bn_m, m), st.m_spk)
        h = self.w_h(torch.cat((m, x), dim=-1))
        if self.spiking:
            h, sh = self.lif_h(bn_time(self.bn_h, h), st.h)
        else:
            h = torch.relu(h)
        return h, LMUCellState(su, mem, sm, sh)


class SpikingLMU(LMU):
    """:class:`LMU` with ``spiking=True`` (LMUFormer's spiking LMU cell)."""

    def __init__(self, input_size: int, hidden_size: int, order: int, theta: float, **kw) -> None:
        kw.setdefault("spiking", True)
        super().__init__(input_size, hidden_size, order, theta, **kw)
