"""Spiking neuron modules: LIF, IF, CubaLIF, ALIF and the LI readout.

Equations: :mod:`spikeseq.functional.lif`, ``.cuba``, ``.alif``, ``.li``. Modules hold time constants in seconds
and the step ``dt``; decays are computed by :class:`~spikeseq.nn.base.TimeConstants`. The time loop runs in the
kernel chosen by ``backend`` (see :mod:`spikeseq.kernels`).
"""

from __future__ import annotations

import torch
from torch import nn

from spikeseq import kernels
from spikeseq import surrogate as sg
from spikeseq.checks import check_reset
from spikeseq.functional import ALIFState, CubaLIFState, LIFState, LIState
from spikeseq.nn.base import StatefulModule, TimeConstants, threshold_parameter
from spikeseq.types import ResetMode


class _Spiking(StatefulModule):
    def __init__(self, size, dt, v_th, reset, detach_reset, surrogate, learn_threshold, backend):
        super().__init__()
        check_reset(reset)
        self.size = size
        self.time = TimeConstants(dt)
        self.reset = reset
        self.detach_reset = bool(detach_reset)
        self.surrogate = surrogate
        self.backend = backend
        th = threshold_parameter(v_th, learn_threshold, size)
        if isinstance(th, nn.Parameter):
            self.v_th = th
        else:
            self.register_buffer("v_th", th)

    @property
    def dt(self) -> float:
        return self.time.dt

    @torch.no_grad()
    def project_(self) -> None:
        """After an optimizer step: decays back into [0, 1] (:meth:`TimeConstants.project_`) and a trainable
        threshold back to >= 0. A threshold below 0 fires from rest on every step, and neither Loihi (an unsigned
        ``vth`` mantissa) nor the exporters represent it."""
        self.time.project_()
        if isinstance(self.v_th, nn.Parameter):
            self.v_th.clamp_(min=0.0)

    def _common(self) -> dict:
        return dict(v_th=self.v_th, reset=self.reset, detach_reset=self.detach_reset, surrogate=self.surrogate)

    def extra_repr(self) -> str:
        return f"size={self.size}, dt={self.dt}, reset={self.reset!r}, surrogate={self.surrogate}"


class LIF(_Spiking):
    """Leaky integrate-and-fire population. ``y, state = lif(x [T, B, ..., size])``.

    Give ``tau_mem`` (seconds) or ``beta``; ``learn="tau"`` or ``"beta"`` makes the decay trainable,
    ``learn_threshold=True`` the threshold. ``size`` makes both per-neuron.
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        tau_mem: float | None = None,
        beta: float | None = None,
        dt: float = 1e-3,
        v_th: float = 1.0,
        reset: ResetMode = "subtract",
        detach_reset: bool = False,
        surrogate: sg.Surrogate = sg.DEFAULT,
        learn: str = "none",
        learn_threshold: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(size, dt, v_th, reset, detach_reset, surrogate, learn_threshold, backend)
        self.time.add("mem", tau=tau_mem, beta=beta, learn=learn, size=size)

    @property
    def beta(self) -> torch.Tensor:
        """Membrane decay per step, ``exp(-dt / tau_mem)`` (or the learned ``beta``)."""
        return self.time.decay("mem")

    @property
    def tau_mem(self) -> torch.Tensor:
        """Membrane time constant in seconds."""
        return self.time.tau("mem")

    def forward(self, x: torch.Tensor, state: LIFState | None = None):
        """``z [T, B, ...], state = lif(x [T, B, ...], state)`` via ``lif_scan`` (:mod:`spikeseq.functional.lif`)."""
        return kernels.lif_scan(x, state, beta=self.beta, backend=self.backend, **self._common())


class IF(_Spiking):
    """Integrate-and-fire population (no leak)."""

    def __init__(self, size: int | None = None, *, dt: float = 1e-3, v_th: float = 1.0,
                 reset: ResetMode = "subtract", detach_reset: bool = False,
                 surrogate: sg.Surrogate = sg.DEFAULT, learn_threshold: bool = False,
                 backend: str = "auto") -> None:
        super().__init__(size, dt, v_th, reset, detach_reset, surrogate, learn_threshold, backend)

    def forward(self, x: torch.Tensor, state: LIFState | None = None):
        """``z [T, B, ...], state = if_(x [T, B, ...], state)``: ``lif_scan`` with ``beta = 1``."""
        one = torch.ones((), dtype=x.dtype if x.is_floating_point() else torch.float32)
        return kernels.lif_scan(x, state, beta=one, backend=self.backend, **self._common())


class CubaLIF(_Spiking):
    """Current-based LIF: synaptic current (``tau_syn`` or ``alpha``), then membrane (``tau_mem`` or ``beta``)."""

    def __init__(
        self,
        size: int | None = None,
        *,
        tau_syn: float | None = None,
        tau_mem: float | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        dt: float = 1e-3,
        v_th: float = 1.0,
        reset: ResetMode = "subtract",
        detach_reset: bool = False,
        surrogate: sg.Surrogate = sg.DEFAULT,
        learn: str = "none",
        learn_threshold: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(size, dt, v_th, reset, detach_reset, surrogate, learn_threshold, backend)
        self.time.add("syn", tau=tau_syn, beta=alpha, learn=learn, size=size)
        self.time.add("mem", tau=tau_mem, beta=beta, learn=learn, size=size)

    @property
    def alpha(self) -> torch.Tensor:
        """Synaptic-current decay per step, ``exp(-dt / tau_syn)`` (or the learned ``alpha``)."""
        return self.time.decay("syn")

    @property
    def beta(self) -> torch.Tensor:
        """Membrane decay per step, ``exp(-dt / tau_mem)`` (or the learned ``beta``)."""
        return self.time.decay("mem")

    @property
    def tau_syn(self) -> torch.Tensor:
        """Synaptic time constant in seconds."""
        return self.time.tau("syn")

    @property
    def tau_mem(self) -> torch.Tensor:
        """Membrane time constant in seconds."""
        return self.time.tau("mem")

    def forward(self, x: torch.Tensor, state: CubaLIFState | None = None):
        """``z [T, B, ...], state = cuba(x [T, B, ...], state)`` via ``cuba_lif_scan`` (``functional.cuba``)."""
        return kernels.cuba_lif_scan(x, state, alpha=self.alpha, beta=self.beta, backend=self.backend,
                                     **self._common())


class ALIF(_Spiking):
    """Adaptive-threshold LIF (Bellec et al. 2018): threshold ``v_th + adapt * a``, ``a`` decays with ``tau_adapt``."""

    def __init__(
        self,
        size: int | None = None,
        *,
        tau_mem: float | None = None,
        beta: float | None = None,
        tau_adapt: float | None = None,
        rho: float | None = None,
        adapt: float = 1.8,
        dt: float = 1e-3,
        v_th: float = 1.0,
        reset: ResetMode = "subtract",
        detach_reset: bool = False,
        surrogate: sg.Surrogate = sg.DEFAULT,
        learn: str = "none",
        learn_threshold: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(size, dt, v_th, reset, detach_reset, surrogate, learn_threshold, backend)
        self.time.add("mem", tau=tau_mem, beta=beta, learn=learn, size=size)
        self.time.add("adapt", tau=tau_adapt, beta=rho, learn=learn, size=size)
        self.register_buffer("adapt", torch.full(() if size is None else (size,), float(adapt)))

    def forward(self, x: torch.Tensor, state: ALIFState | None = None):
        """``z [T, B, ...], state = alif(x [T, B, ...], state)`` via ``alif_scan`` (:mod:`spikeseq.functional.alif`)."""
        return kernels.alif_scan(x, state, beta=self.time.decay("mem"), rho=self.time.decay("adapt"),
                                 adapt=self.adapt, backend=self.backend, **self._common())


class LI(StatefulModule):
    """Leaky-integrator readout: returns the membrane trace ``[T, B, ...]`` (no spikes)."""

    def __init__(self, size: int | None = None, *, tau_mem: float | None = None, beta: float | None = None,
                 dt: float = 1e-3, learn: str = "none", backend: str = "auto") -> None:
        super().__init__()
        self.size = size
        self.backend = backend
        self.time = TimeConstants(dt)
        self.time.add("mem", tau=tau_mem, beta=beta, learn=learn, size=size)

    @property
    def dt(self) -> float:
        """Simulation time step in seconds."""
        return self.time.dt

    @torch.no_grad()
    def project_(self) -> None:
        """After an optimizer step: the decay back into [0, 1] (:meth:`TimeConstants.project_`)."""
        self.time.project_()

    @property
    def beta(self) -> torch.Tensor:
        """Membrane decay per step, ``exp(-dt / tau_mem)`` (or the learned ``beta``)."""
        return self.time.decay("mem")

    @property
    def tau_mem(self) -> torch.Tensor:
        """Membrane time constant in seconds."""
        return self.time.tau("mem")

    def forward(self, x: torch.Tensor, state: LIState | None = None):
        """``v [T, B, ...], state = li(x [T, B, ...], state)`` via ``li_scan`` (:mod:`spikeseq.functional.li`)."""
        return kernels.li_scan(x, state, beta=self.beta, backend=self.backend)
