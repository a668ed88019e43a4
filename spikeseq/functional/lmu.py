"""Legendre Memory Unit (LMU) memory, reference implementation.

Continuous-time delay network (Voelker, Kajic & Eliasmith, NeurIPS 2019, eq. 1-2), order ``d``, window
``theta`` (in the units of ``dt``; for a sequence model ``dt = 1`` step and ``theta`` is in steps):

    theta * dm/dt = A m + B u
    A_ij = (2i+1) * (-1            if i < j
                     (-1)^(i-j+1)  if i >= j)          i, j = 0 .. d-1
    B_i  = (2i+1) * (-1)^i

Zero-order hold (ZOH) over one step ``dt`` (what ``scipy.signal.cont2discrete(..., method="zoh")`` computes):

    A_bar = expm(A dt / theta)
    B_bar = (A/theta)^-1 (A_bar - I) (B/theta)       computed as one block exponential, no inverse:
    expm([[A, B], [0, 0]] * dt/theta) = [[A_bar, B_bar], [0, 1]]

Memory, one step (one independent memory of ``d`` coefficients per input channel ``n``):

    m[t] = A_bar m[t-1] + B_bar u[t]                 u: [B, N] -> m: [B, N, d]

Parallel form (Chilkuri & Eliasmith, ICML 2021): without feedback from the memory or hidden state into ``u``,
``m`` is a causal convolution of ``u`` with the impulse response ``H[k] = A_bar^k B_bar``, plus the free response
of the initial state:

    m[t] = sum_{s=0..t} H[t-s] u[s] + A_bar^(t+1) m[-1]

computed with a real FFT of length ``2T`` (no circular wrap-around). Sources: A/B as in the LMU paper and in
``neuromorphic-polito/L2MU-Braille`` ``core/lmu/interface.py`` and ``zeyuliu1037/LMUFormer``
``src/blocks/lmu_cell.py`` (specs/models.md sections 2-3).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from spikeseq.checks import check_finite_result, check_floating, check_sequence, check_state_shape
from spikeseq.errors import NonFiniteError, ParameterError, ShapeError


class LMUState(NamedTuple):
    """LMU state: memory ``m``, ``[B, N, d]`` (``d`` Legendre coefficients per input channel)."""

    m: torch.Tensor  #: memory, ``[B, N, d]``


def _check_order_theta(order: int, theta: float) -> None:
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ParameterError(f"LMU order must be an integer >= 1 (number of Legendre coefficients), got {order!r}")
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not math.isfinite(theta) or theta <= 0:
        raise ParameterError(f"LMU window theta must be a finite number > 0, got {theta!r}")


def check_lmu_args(order: int, theta: float, dt: float = 1.0) -> None:
    """Order an integer >= 1, ``theta`` finite and at least one step ``dt``."""
    _check_order_theta(order, theta)
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ParameterError(f"LMU step dt must be a finite number > 0, got {dt!r}")
    if theta < dt:
        raise ParameterError(
            f"LMU window theta={theta} is shorter than one step dt={dt}; the memory cannot represent a window "
            "below the sampling step: use theta >= dt (theta is in the units of dt, i.e. time steps when dt=1)"
        )


def legendre_matrices(order: int, theta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous LMU matrices ``A / theta`` ``[d, d]`` and ``B / theta`` ``[d, 1]`` in float64."""
    _check_order_theta(order, theta)
    q = torch.arange(order, dtype=torch.float64)
    r = (2 * q + 1).unsqueeze(1)  # [d, 1]
    i, j = q.unsqueeze(1), q.unsqueeze(0)
    sign = torch.where(i < j, torch.full_like(i - j, -1.0), (-1.0) ** (i - j + 1))
    a = r * sign
    b = r * ((-1.0) ** q).unsqueeze(1)
    return a / theta, b / theta


def zoh(a: torch.Tensor, b: torch.Tensor, dt: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-order-hold discretisation of ``dx/dt = a x + b u`` over a step ``dt``: ``(A_bar, B_bar)``."""
    if a.dim() != 2 or a.shape[0] != a.shape[1] or b.dim() != 2 or b.shape[0] != a.shape[0]:
        raise ShapeError(f"zoh needs a [d, d] and b [d, k], got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ParameterError(f"dt must be a finite number > 0, got {dt!r}")
    d, k = b.shape
    blk = torch.zeros(d + k, d + k, dtype=torch.float64)
    blk[:d, :d] = a.to(torch.float64)
    blk[:d, d:] = b.to(torch.float64)
    e = torch.linalg.matrix_exp(blk * dt)
    return e[:d, :d].to(a.dtype), e[:d, d:].to(a.dtype)


def lmu_matrices(order: int, theta: float, dt: float = 1.0, dtype: torch.dtype = torch.float32):
    """Discrete ``(A_bar [d, d], B_bar [d])`` for order ``d`` and window ``theta`` (in units of ``dt``)."""
    check_lmu_args(order, theta, dt)
    a, b = legendre_matrices(order, theta)
    ad, bd = zoh(a, b, dt)
    return ad.to(dtype), bd[:, 0].to(dtype)


def lmu_impulse_response(a_bar: torch.Tensor, b_bar: torch.Tensor, steps: int) -> torch.Tensor:
    """``H[k] = A_bar^k B_bar`` for k = 0..steps-1, shape ``[steps, d]`` (computed in float64)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ParameterError(f"the impulse response needs a number of steps >= 0 (an integer), got {steps!r}")
    a64, h = a_bar.to(torch.float64), b_bar.to(torch.float64)
    out = torch.empty(steps, h.shape[0], dtype=torch.float64)
    for k in range(steps):
        out[k] = h
        h = a64 @ h
    return out.to(a_bar.dtype)


def _check_memory_args(u: torch.Tensor, a_bar: torch.Tensor, b_bar: torch.Tensor) -> None:
    d = b_bar.shape[-1]
    if a_bar.shape != (d, d) or b_bar.dim() != 1:
        raise ShapeError(f"A_bar must be [d, d] and B_bar [d], got {tuple(a_bar.shape)} and {tuple(b_bar.shape)}")


def lmu_update(m: torch.Tensor, u: torch.Tensor, a_bar: torch.Tensor, b_bar: torch.Tensor) -> torch.Tensor:
    """``m @ A_bar^T + u[..., None] * B_bar`` on tensors, without checks (shared by step, scan and L2MU)."""
    return m @ a_bar.transpose(0, 1) + u.unsqueeze(-1) * b_bar


def lmu_memory_step(
    u: torch.Tensor, state: LMUState | None = None, *, a_bar: torch.Tensor, b_bar: torch.Tensor
) -> tuple[torch.Tensor, LMUState]:
    """One memory step: ``u`` ``[B, N]`` -> ``m`` ``[B, N, d]`` (returned as output and state)."""
    check_floating(u, "u")
    _check_memory_args(u, a_bar, b_bar)
    shape = (*u.shape, b_bar.shape[0])
    if state is None:
        m = torch.zeros(shape, dtype=u.dtype, device=u.device)
    else:
        check_state_shape(state.m, torch.Size(shape), "m")
        m = state.m
    m = lmu_update(m, u, a_bar.to(u), b_bar.to(u))
    return m, LMUState(m)


def lmu_memory_scan(
    u: torch.Tensor, state: LMUState | None = None, *, a_bar: torch.Tensor, b_bar: torch.Tensor
) -> tuple[torch.Tensor, LMUState]:
    """Recurrent memory over ``u`` ``[T, B, N]``; returns ``m`` ``[T, B, N, d]`` and the final state."""
    check_sequence(u, "u", min_rank=3)
    _check_memory_args(u, a_bar, b_bar)
    d = b_bar.shape[0]
    if state is None:
        m = torch.zeros((*u.shape[1:], d), dtype=u.dtype, device=u.device)
    else:
        check_state_shape(state.m, torch.Size((*u.shape[1:], d)), "m")
        m = state.m
    a, b = a_bar.to(u), b_bar.to(u)
    ms = []
    for t in range(u.shape[0]):
        m = lmu_update(m, u[t], a, b)
        ms.append(m)
    check_finite_result(m, "the final LMU memory")
    return torch.stack(ms), LMUState(m)


def lmu_memory_fft(
    u: torch.Tensor,
    state: LMUState | None = None,
    *,
    a_bar: torch.Tensor,
    b_bar: torch.Tensor,
    impulse: torch.Tensor | None = None,
) -> tuple[torch.Tensor, LMUState]:
    """Parallel memory: the same result as :func:`lmu_memory_scan`, by FFT causal convolution.

    ``impulse`` may pass a precomputed :func:`lmu_impulse_response` with at least ``T`` rows (cached by modules).
    """
    check_sequence(u, "u", min_rank=3)
    _check_memory_args(u, a_bar, b_bar)
    t_len, d = u.shape[0], b_bar.shape[0]
    if impulse is None:
        impulse = lmu_impulse_response(a_bar, b_bar, t_len)
    elif impulse.shape[0] < t_len or impulse.shape[1] != d:
        raise ShapeError(f"impulse response must be [>= {t_len}, {d}], got {tuple(impulse.shape)}")
    n = 2 * t_len
    if u[0].numel() == 0:  # an empty batch (or no units): MKL's FFT refuses zero-size transforms
        m = u.unsqueeze(-1).expand(*u.shape, d) * impulse[0].to(u)
    else:
        fu = torch.fft.rfft(u, n=n, dim=0)  # [n/2+1, B, N]
        fh = torch.fft.rfft(impulse[:t_len].to(u), n=n, dim=0)  # [n/2+1, d]
        m = torch.fft.irfft(fu.unsqueeze(-1) * fh.view(fh.shape[0], *([1] * (u.dim() - 1)), d), n=n,
                            dim=0)[:t_len]
    if state is not None:
        check_state_shape(state.m, torch.Size((*u.shape[1:], d)), "m")
        # free response A_bar^(t+1) m[-1]: d x d steps, independent of u (only used when continuing a stream)
        a = a_bar.to(u)
        z, free = state.m, []
        for _ in range(t_len):
            z = z @ a.transpose(0, 1)
            free.append(z)
        m = m + torch.stack(free)
    if not bool(torch.isfinite(m[-1].detach()).all()):
        raise NonFiniteError("non-finite values (NaN or Inf) reached the LMU memory: check u and the state")
    return m, LMUState(m[-1])
