"""``nn.EGRU``: a stack of event-based GRU layers with ``torch.nn.GRU``'s arguments, parameter names and shapes.

Equations: :mod:`spikeseq.functional.egru`. The time loop of each layer runs in the kernel chosen by ``backend``
(``"auto"``: the activity-sparse C++ loop on the CPU, see :mod:`spikeseq.kernels.egru`). Layer ``k > 0`` reads the
graded events ``y`` of layer ``k - 1`` (after dropout), so its input projection is event-driven too.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq import kernels
from spikeseq import surrogate as sg
from spikeseq.checks import check_floating
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional.egru import (
    DAMPENING,
    EGRUState,
    beta_threshold_init,
    check_eps,
    compute_dtype,
    pseudo_derivative,
)
from spikeseq.kernels import dispatch
from spikeseq.nn.base import StatefulModule
from spikeseq.nn.weight_input import WeightInput

#: The largest threshold the module uses (the cell's valid range is [0, 1): a unit at threshold >= 1 never fires).
THRESHOLD_CEILING = 0.999


@functools.lru_cache(maxsize=8)
def threshold_ceiling(dtype: torch.dtype) -> float:
    """:data:`THRESHOLD_CEILING`, or the largest number below 1 of ``dtype`` where 0.999 rounds to 1 (bfloat16)."""
    one = torch.ones((), dtype=dtype)
    ceiling = torch.tensor(THRESHOLD_CEILING, dtype=dtype)
    return float(ceiling if ceiling < one else torch.nextafter(one, torch.zeros((), dtype=dtype)))


class EGRUStackOutput(NamedTuple):
    """Outputs of :class:`EGRU`: ``y`` the last layer's graded events ``[T, B, H]`` (``[B, T, H]`` with
    ``batch_first``), ``events`` every layer's binary events ``[num_layers, T, B, H]`` (``[num_layers, B, T, H]``),
    differentiable through the pseudo-derivative (for activity regularisation and sparsity statistics)."""

    y: torch.Tensor
    events: torch.Tensor


def _previous_outputs(y: torch.Tensor, state: EGRUState | None) -> torch.Tensor:
    """What ``weight_hh`` multiplies at each step: ``y[t-1]`` for ``t = 0 .. T-1`` (the initial state's ``y``, zeros
    at rest, then ``y[0 .. T-2]``), detached."""
    y = y.detach()
    y0 = y.new_zeros(y.shape[1:]) if state is None else state.y.detach().to(y.dtype)
    return torch.cat([y0[None], y[:-1]])


class EGRU(StatefulModule):
    """``out, state = EGRU(input_size, hidden_size, num_layers)(x, state=None)``.

    Arguments as ``torch.nn.GRU`` (``bias``, ``batch_first`` at the outer boundary only, ``dropout`` between
    layers; ``bidirectional`` is refused: an event-based unit is causal), plus the EGRU options ``thr_mean``
    (Beta init of the per-unit thresholds ``threshold_l{k}``), ``eps`` (pseudo-derivative support), ``zoneout``,
    ``dropconnect`` (on ``weight_hh_l{k}``) and ``backend``. ``state`` is an
    :class:`~spikeseq.functional.egru.EGRUState` of ``[num_layers, B, H]`` tensors (like GRU's ``h_n``).
    Thresholds are clamped to ``[0, 0.999]`` when used (the valid range of the cell).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 thr_mean: float = 0.3, eps: float = 1.0, dampening: float = DAMPENING, zoneout: float = 0.0,
                 dropconnect: float = 0.0, backend: str = "auto", seed: int | None = None) -> None:
        super().__init__()
        if bidirectional:
            raise ParameterError("EGRU is causal (events are emitted in time order); bidirectional=True is not "
                                 "supported: run two EGRUs on x and x.flip(0) instead")
        for n, name in ((input_size, "input_size"), (hidden_size, "hidden_size"), (num_layers, "num_layers")):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {n!r}")
        for p, name in ((dropout, "dropout"), (zoneout, "zoneout"), (dropconnect, "dropconnect")):
            if isinstance(p, bool) or not isinstance(p, int | float) or not (0.0 <= p < 1.0):
                raise ParameterError(f"{name} must be a probability in [0, 1), got {p!r}")
        for flag, name in ((bias, "bias"), (batch_first, "batch_first")):
            if isinstance(flag, str) or flag not in (True, False):  # a string such as "false" would be truthy
                raise ParameterError(f"{name} must be True or False, got {flag!r}")
        if isinstance(thr_mean, bool) or not isinstance(thr_mean, int | float):
            raise ParameterError(f"thr_mean must be a number in (0, 1) (the mean of the Beta threshold init), got "
                                 f"{thr_mean!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ParameterError(f"seed must be a whole number or None, got {seed!r}")
        known = ("auto", *sorted(dispatch.backends("egru_scan")))
        if backend not in known:
            raise ParameterError(f"unknown EGRU backend {backend!r}; known: {', '.join(known)}")
        check_eps(eps, dampening)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), dropout
        self.thr_mean, self.eps, self.dampening = thr_mean, eps, dampening
        self.zoneout, self.dropconnect, self.backend = zoneout, dropconnect, backend
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        k = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            for name, shape in (("weight_ih", (3 * hidden_size, fan_in)), ("weight_hh", (3 * hidden_size, hidden_size)),
                                *((("bias_ih", (3 * hidden_size,)), ("bias_hh", (3 * hidden_size,))) if bias else ())):
                w = torch.empty(shape).uniform_(-k, k, generator=gen)  # torch.nn.GRU's init
                self.register_parameter(f"{name}_l{layer}", nn.Parameter(w))
            self.register_parameter(f"threshold_l{layer}",
                                    nn.Parameter(beta_threshold_init(hidden_size, thr_mean, generator=gen)))
        # the inputs of the weights the kernels apply, shown to forward hooks (spikeseq.nn.weight_input): no
        # parameter, no state; built only while a hook is registered (e.g. a continual-learning plug-in's)
        self.weight_inputs = nn.ModuleDict({
            f"{w}_l{layer}": WeightInput(f"{w}_l{layer}", hidden_size if w == "weight_hh" or layer else input_size)
            for layer in range(num_layers) for w in ("weight_ih", "weight_hh")})

    @property
    def surrogate(self) -> sg.Surrogate:
        """The events' pseudo-derivative (EvNN's Triangle: ``dampening * max(0, 1 - eps |c~ - theta|)``)."""
        return pseudo_derivative(self.eps, self.dampening)

    def layer_params(self, layer: int) -> dict[str, torch.Tensor | None]:
        """The weights of one layer as :func:`~spikeseq.functional.egru_scan` takes them."""
        g = lambda n: getattr(self, f"{n}_l{layer}", None)  # noqa: E731
        th = g("threshold")
        return dict(weight_ih=g("weight_ih"), weight_hh=g("weight_hh"), bias_ih=g("bias_ih"),
                    bias_hh=g("bias_hh"), threshold=th.clamp(0.0, threshold_ceiling(th.dtype)))

    def _state(self, state: EGRUState | None, batch: int) -> list[EGRUState | None]:
        if state is None:
            return [None] * self.num_layers
        want = (self.num_layers, batch, self.hidden_size)
        if not isinstance(state, tuple) or len(state) != 2:
            raise ShapeError("EGRU state must be an EGRUState(c, y) of [num_layers, B, H] tensors or None")
        for s, name in zip(state, ("c", "y"), strict=True):
            check_floating(s, f"state.{name}")
            if tuple(s.shape) != want:
                raise ShapeError(f"EGRU state.{name} has shape {tuple(s.shape)}, expected {want} "
                                 "(num_layers, batch, hidden_size); pass state=None to start at rest")
        return [EGRUState(state.c[k], state.y[k]) for k in range(self.num_layers)]

    def forward(self, x: torch.Tensor, state: EGRUState | None = None) -> tuple[EGRUStackOutput, EGRUState]:
        """Run the stack over ``x [T, B, input_size]`` (``[B, T, ...]`` with ``batch_first``); returns the last
        layer's output ``y`` with every layer's events ``e`` and the final state of every layer."""
        check_floating(x, "x")
        if x.dim() != 3:
            raise ShapeError(f"EGRU takes [T, B, {self.input_size}] (or [B, T, ...] with batch_first), got "
                             f"{tuple(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[0] == 0:
            raise ShapeError(f"EGRU got a sequence of length 0 (shape {tuple(x.shape)}); T must be >= 1")
        states = self._state(state, x.shape[1])
        events, cs, ys = [], [], []
        # inference: every layer writes its events into one [L, T, B, H] tensor (no stacking copy: 12 % of a pruned
        # 2 x 512 forward); in training the events carry the pseudo-derivative and are stacked
        stacked = None if torch.is_grad_enabled() else torch.empty(
            (self.num_layers, *x.shape[:2], self.hidden_size), dtype=compute_dtype(x.dtype), device=x.device)
        h = x
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                h = F.dropout(h, self.dropout, self.training)
            extra = {} if stacked is None else {"events_out": stacked[layer]}
            tap_ih, tap_hh = self.weight_inputs[f"weight_ih_l{layer}"], self.weight_inputs[f"weight_hh_l{layer}"]
            if tap_ih.hooked:
                tap_ih(h.detach())
            out, st = kernels.egru_scan(h, states[layer], backend=self.backend, eps=self.eps,
                                        dampening=self.dampening, zoneout=self.zoneout,
                                        dropconnect=self.dropconnect, training=self.training,
                                        **extra, **self.layer_params(layer))
            if tap_hh.hooked:
                tap_hh(_previous_outputs(out.y, states[layer]))
            h = out.y
            if layer + 1 < self.num_layers:  # half-precision layers: the float32 events feed the next layer's dtype
                h = h.to(getattr(self, f"weight_ih_l{layer + 1}").dtype)
            events.append(out.e)
            cs.append(st.c)
            ys.append(st.y)
        e = torch.stack(events) if stacked is None else stacked
        if self.batch_first:
            h, e = h.transpose(0, 1), e.transpose(1, 2)
        return EGRUStackOutput(h, e), EGRUState(torch.stack(cs), torch.stack(ys))

    def step(self, x: torch.Tensor, state: EGRUState | None = None) -> tuple[EGRUStackOutput, EGRUState]:
        """One time step on ``x [B, input_size]`` (with or without ``batch_first``): returns
        ``EGRUStackOutput(y [B, H], events [num_layers, B, H])`` and the state, the same as step ``t`` of
        :meth:`forward` on the sequence."""
        check_floating(x, "x")
        if x.dim() != 2:
            raise ShapeError(f"EGRU.step takes one step [B, {self.input_size}], got {tuple(x.shape)}; call the module "
                             "itself on a sequence")
        out, st = self.forward(x.unsqueeze(1 if self.batch_first else 0), state)
        if self.batch_first:
            return EGRUStackOutput(out.y[:, 0], out.events[:, :, 0]), st
        return EGRUStackOutput(out.y[0], out.events[:, 0]), st

    def extra_repr(self) -> str:
        """Sizes, pseudo-derivative width, threshold init and backend, for ``repr``."""
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, eps={self.eps}, "
                f"thr_mean={self.thr_mean}, backend={self.backend!r}")
