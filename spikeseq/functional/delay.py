"""Synaptic delays: a dense layer in which every synapse (i -> j) delivers its input ``d_ji`` steps late.

Integer delays (inference, export) are a pure shift, causal:

    y[t, b, j] = bias_j + sum_i W_ji * x[t - D_ji, b, i],        D_ji in {0, ..., max_delay}

with ``x[t] = 0`` for ``t < 0`` (or the history carried in :class:`DelayState`). A synapse with delay ``D``
delivers a spike arriving at step ``t`` exactly at step ``t + D``: this maps onto a per-synapse delay buffer.

Learnable real-valued delays (training, DCLS; Hammouamri, Khalfaoui-Hassani, Masquelier, ICLR 2024,
arXiv 2306.17670; ``specs/models.md`` §5) replace the shift by a K-tap kernel (``K = max_delay + 1``) holding one
Gaussian-interpolated tap per synapse:

    y[t, b, j] = bias_j + sum_i sum_{k=0}^{K-1} W_ji * g_ji[k] * x[t - k, b, i]
    g_ji[k]    = e_ji[k] / sum_m e_ji[m],     e_ji[k] = exp(-1/2 * ((k - d_ji) / s)^2),     s = |sigma| + 0.27

``d_ji`` is clamped to ``[0, max_delay]`` (the paper clamps the positions to the kernel after every step).
The offset 0.27 and the normalisation are those of the ``dcls`` package (``ConstructKernel1d.forward_vgauss``,
dcls 0.1.1); the paper's position ``p`` in ``[-K//2, K//2]`` is ``p = K//2 - d`` here for odd ``K`` (same kernel, delay
counted from the present step; in general ``p = K - 1 - K//2 - d``, the dcls tap index ``p + K//2`` read as delay
``K - 1 - index`` after a left pad of ``K - 1``). As ``sigma -> 0`` with ``s -> 0`` the kernel becomes one-hot at
the nearest integer, i.e. the integer shift with ``D = round(d)``; the paper evaluates with exactly those rounded
delays (``torch.round``: half to even; at exactly ``k + 0.5`` the Gaussian limit splits the tap evenly instead).

The sigma schedule (:func:`sigma_schedule`): sigma starts at ``max_delay / 2`` (12 for SHD, = K//2) and is multiplied
by ``(0.23 / sigma_init) ** (1 / final_epoch)`` each epoch until it reaches 0.23 (s = 0.5), ``final_epoch =
epochs / 4`` (SNN-delays ``decrease_sig``; ``specs/models.md`` §5).

Implementations (chosen by measurement, ``spikeseq bench delays``; CPU, SHD shape 140 -> 256, K = 25, T = 100,
B = 32): the Gaussian path is one ``conv1d`` over the K taps (dense GEMM at near peak throughput; per-tap shifted
matmuls and an im2col GEMM measured 1.3x and 1.6x slower; a window-truncated scatter formulation was far slower on
the CPU because ``index_add_``/``scatter_add_`` run at tens of M elements/s, and a sparse-input CSR product
(``torch.sparse.mm``) lost to the dense conv once its matrix is built). The kernel construction has a hand-written
backward that keeps only the normalised taps (about half the saved memory of dcls). The integer path is a gather-sum
(``embedding_bag`` over rows ``(t - D_ji, i)`` weighted by ``W_ji``): it touches each synapse once per step instead
of K times, 3-4x faster than the Gaussian conv. :func:`delay_shift_reference` is the plain per-delay
masked-matmul form every other path is tested against.

State: ``DelayState(x)`` with ``x`` the last ``max_delay`` input steps ``[max_delay, B, in]`` (oldest first).
``state=None`` means silence before the sequence; then the sequence must be at least ``max_delay + 1`` steps long,
otherwise the longest delays can never deliver (pad the end of the sequence with zeros, or stream it with a state).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from spikeseq.checks import all_finite, check_floating
from spikeseq.errors import DTypeError, NonFiniteError, ParameterError, ShapeError

#: s = |sigma| + SIGMA_OFFSET (dcls 0.1.1, ``ConstructKernel1d.forward_vgauss``).
SIGMA_OFFSET = 0.27
#: Final sigma of the schedule (SNN-delays ``decrease_sig``: "decreasing to 0.23", s = 0.5).
SIGMA_FINAL = 0.23


class DelayState(NamedTuple):
    """Delay-line state: ``x``, the last ``max_delay`` input steps ``[max_delay, B, in]``, oldest first."""

    x: torch.Tensor  # [max_delay, B, in]: the last max_delay input steps, oldest first


def check_max_delay(max_delay: int) -> int:
    """Return ``max_delay`` if it is an integer >= 1 (the largest delay, in steps); else raise ``ParameterError``."""
    if isinstance(max_delay, bool) or not isinstance(max_delay, int) or max_delay < 1:
        raise ParameterError(
            f"max_delay must be an integer >= 1 (the largest delay in time steps), got {max_delay!r}; "
            "for a layer without delays use torch.nn.Linear"
        )
    return max_delay


def sigma_schedule(epoch: int, *, sigma_init: float, final_epoch: int, sigma_final: float = SIGMA_FINAL) -> float:
    """Sigma during ``epoch`` (0-based): ``sigma_init * alpha**epoch``, reaching ``sigma_final`` at ``final_epoch``.

    ``alpha = (sigma_final / sigma_init) ** (1 / final_epoch)`` (SNN-delays ``decrease_sig``, ``specs/models.md`` §5).
    """
    if not (math.isfinite(sigma_init) and math.isfinite(sigma_final) and sigma_init > 0 and sigma_final > 0):
        raise ParameterError(f"sigma_init and sigma_final must be finite numbers > 0, got {sigma_init}, {sigma_final}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ParameterError(f"epoch must be an integer >= 0 (0-based), got {epoch!r}")
    if final_epoch < 1:
        return float(sigma_final)
    if sigma_init <= sigma_final:
        return float(sigma_init)
    alpha = (sigma_final / sigma_init) ** (1.0 / final_epoch)
    return float(max(sigma_init * alpha ** min(epoch, final_epoch), sigma_final))


def _check_weight_delay(weight: torch.Tensor, delay: torch.Tensor) -> None:
    check_floating(weight, "weight")
    if weight.dim() != 2:
        raise ShapeError(f"weight must be [out, in], got shape {tuple(weight.shape)}")
    if tuple(delay.shape) != tuple(weight.shape):
        raise ShapeError(
            f"delay must have the shape of weight {tuple(weight.shape)} (one delay per synapse), "
            f"got {tuple(delay.shape)}"
        )


def _width(sigma: float | torch.Tensor, offset: float) -> float:
    s = float(sigma.detach().abs()) if isinstance(sigma, torch.Tensor) else abs(float(sigma))
    s += offset
    if not s > 0:
        raise ParameterError("the Gaussian width |sigma| + sigma_offset must be > 0; use the integer path for s = 0")
    return s


def _taps(delay: torch.Tensor, sigma: float | torch.Tensor, k: torch.Tensor, offset: float) -> torch.Tensor:
    s = _width(sigma, offset)
    z = (k - delay.clamp(0, k.numel() - 1).unsqueeze(-1)) / s
    return torch.softmax(-0.5 * z * z, dim=-1)


class _GaussianKernel(torch.autograd.Function):
    """``W[..., None] * g`` with ``g = _taps(delay)``, saving only ``g`` for a hand-written backward.

    With ``a_n = -z_n^2 / 2``, ``z_n = (k_n - d) / s`` and ``g = softmax(a)``:
    ``dL/dd = (sum_n g_n c_n k_n - (sum_n g_n c_n)(sum_n g_n k_n)) / s^2`` where ``c = W * dL/dkernel``
    (zero where the clamp of ``d`` to ``[0, max_delay]`` is active). Tested against finite differences.
    """

    @staticmethod
    def forward(ctx, weight, delay, k, s):  # type: ignore[override]
        lim = k.numel() - 1
        z = (k - delay.clamp(0, lim).unsqueeze(-1)) / s
        g = torch.softmax(-0.5 * z * z, dim=-1)
        ctx.save_for_backward(weight, delay, g, k)
        ctx.s = s
        return weight.unsqueeze(-1) * g

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        weight, delay, g, k = ctx.saved_tensors
        gw = gd = None
        if ctx.needs_input_grad[0]:
            gw = (grad * g).sum(-1)
        if ctx.needs_input_grad[1]:
            gc = grad * g * weight.unsqueeze(-1)
            gd = ((gc * k).sum(-1) - gc.sum(-1) * (g * k).sum(-1)) / (ctx.s * ctx.s)
            gd = gd * ((delay >= 0) & (delay <= k.numel() - 1)).to(gd.dtype)
        return gw, gd, None, None


def gaussian_taps(delay: torch.Tensor, sigma: float | torch.Tensor, max_delay: int, *,
                  sigma_offset: float = SIGMA_OFFSET) -> torch.Tensor:
    """Normalised Gaussian tap weights ``g [out, in, K]``, index ``k`` = delay in steps (module docstring).

    ``sigma_offset=0`` gives width ``s = |sigma|``, whose limit ``sigma -> 0`` is the integer shift.
    """
    check_max_delay(max_delay)
    check_floating(delay, "delay")
    k = torch.arange(max_delay + 1, device=delay.device, dtype=delay.dtype)
    return _taps(delay, sigma, k, sigma_offset)


def gaussian_kernel(weight: torch.Tensor, delay: torch.Tensor, sigma: float | torch.Tensor,
                    max_delay: int, *, sigma_offset: float = SIGMA_OFFSET) -> torch.Tensor:
    """The per-synapse K-tap kernel ``W_ji * g_ji[k]``, shape ``[out, in, K]`` (k = delay in steps)."""
    _check_weight_delay(weight, delay)
    return weight.unsqueeze(-1) * gaussian_taps(delay, sigma, max_delay, sigma_offset=sigma_offset)


def _check_input(x: torch.Tensor, n_in: int) -> None:
    check_floating(x, "x")
    if x.dim() != 3:
        raise ShapeError(
            f"x must be time-first [T, B, in], got shape {tuple(x.shape)}; for one step use x.unsqueeze(0) "
            "with a state"
        )
    if x.shape[-1] != n_in:
        raise ShapeError(f"x has {x.shape[-1]} input channels but the weight expects {n_in}")
    if x.shape[0] == 0:
        raise ShapeError("x has an empty time axis; T must be >= 1")
    _check_finite(x, "the delay layer's input x", "clean the input (e.g. torch.nan_to_num) or find where it became "
                  "non-finite")


def _first_bad(t: torch.Tensor) -> str:
    """``[j, i]``: the index of the first NaN or Inf of ``t`` (a parameter known to hold one)."""
    return "[" + ", ".join(str(int(i)) for i in (~torch.isfinite(t.detach())).nonzero()[0]) + "]"


def check_finite_parameters(weight: torch.Tensor | None = None, delay: torch.Tensor | None = None,
                            bias: torch.Tensor | None = None, *, kernel: torch.Tensor | None = None) -> None:
    """Refuse NaN or Inf in a delay layer's parameters, naming the parameter and the first bad synapse, as the
    inputs and states are refused (and as the EGRU and the neurons refuse theirs): ``weight``, ``bias`` and
    ``kernel`` raise :class:`~spikeseq.errors.NonFiniteError`; ``delay`` raises
    :class:`~spikeseq.errors.ParameterError` (as the delay paths always have for NaN positions). Otherwise a NaN
    weight reaches only the outputs of the synapses that carry it, and an infinite delay is clamped to 0 or
    ``max_delay`` by the eval path and silently used."""
    for name, t in (("weight", weight), ("bias", bias), ("kernel", kernel)):
        if t is not None and t.is_floating_point() and not all_finite(t):
            raise NonFiniteError(f"the delay layer's parameter {name} contains NaN or Inf (first at {name}"
                                 f"{_first_bad(t)}): a diverged update? lower the learning rate or restart from a "
                                 f"checkpoint with finite values, or find where the {name} became non-finite")
    if delay is not None and delay.is_floating_point() and not all_finite(delay):
        raise ParameterError(f"the delay layer's parameter delay: the delays contain NaN or Inf (first at delay"
                             f"{_first_bad(delay)}; a diverged update of the positions?): lower the delays' learning "
                             "rate or restart from a checkpoint with finite delays")


def _check_finite(t: torch.Tensor, what: str, fix: str) -> None:
    """Raise :class:`~spikeseq.errors.NonFiniteError` naming ``what`` and the first non-finite ``[step, batch row]``
    when ``t`` (``[steps, B, in]``) holds a NaN or an Inf. Checked up front, as the EGRU and the neurons do (they
    raise NonFiniteError too): a delay line would otherwise deliver the NaN ``D`` steps later, into some outputs,
    or only into the returned state (inputs of the last steps whose delays reach past the end), where the next
    call would find it."""
    if all_finite(t):
        return
    step, row, _ = (int(i) for i in (~torch.isfinite(t.detach())).nonzero()[0])
    raise NonFiniteError(f"{what} contains NaN or Inf (first at time step {step}, batch row {row}); {fix}")


def _with_history(x: torch.Tensor, state: DelayState | None, max_delay: int) -> torch.Tensor:
    """``[max_delay + T, B, in]``: the carried history (zeros when ``state`` is None) followed by ``x``."""
    t, b, n = x.shape
    if state is None:
        if t < max_delay + 1:
            raise ShapeError(
                f"the sequence has T={t} steps but the delays span {max_delay + 1} steps (0..{max_delay}): "
                f"inputs delayed by more than T-1 steps would never arrive. Pad the end of the sequence with "
                f"zeros to at least {max_delay + 1} steps, or stream it and pass the state returned by the "
                "previous call (start from DelayLinear.initial_state(batch)); x is time-first [T, B, in]: "
                "transpose a batch-first input with x.transpose(0, 1)"
            )
        return F.pad(x, (0, 0, 0, 0, max_delay, 0))
    if not isinstance(state, DelayState):
        raise ShapeError(f"the delay state must be a DelayState (the state a call returned, or "
                         f"DelayLinear.initial_state(batch)) or None, got {type(state).__name__}")
    h = state.x
    if tuple(h.shape) != (max_delay, b, n):
        raise ShapeError(
            f"delay state has shape {tuple(h.shape)} but this call needs [max_delay={max_delay}, B={b}, in={n}]; "
            "pass state=None or the state returned by a call with the same batch and layer"
        )
    _check_finite(h, "the delay state (DelayState.x, the last max_delay input steps)", "pass state=None (or "
                  "DelayLinear.initial_state(batch)) or the state a call with finite inputs returned")
    return torch.cat([h.to(x.dtype), x], 0)


def _finish(y: torch.Tensor, bias: torch.Tensor | None, xp: torch.Tensor, max_delay: int):
    if bias is not None:
        y = y + bias
    return y, DelayState(xp[xp.shape[0] - max_delay:])


def delay_conv(x: torch.Tensor, kernel: torch.Tensor, state: DelayState | None = None, *,
               bias: torch.Tensor | None = None) -> tuple[torch.Tensor, DelayState]:
    """Causal K-tap temporal convolution ``y[t] = sum_k kernel[:, :, k] @ x[t - k]`` on ``x [T, B, in]``."""
    check_floating(kernel, "kernel")
    if kernel.dim() != 3 or kernel.shape[-1] < 2:
        raise ShapeError(f"kernel must be [out, in, K] with K >= 2 taps, got shape {tuple(kernel.shape)}")
    _check_input(x, kernel.shape[1])
    check_finite_parameters(bias=bias, kernel=kernel)
    max_delay = kernel.shape[-1] - 1
    xp = _with_history(x, state, max_delay)
    # conv1d is a cross-correlation over [B, in, max_delay + T]: tap n sees x[t + n - max_delay], delay max_delay - n
    y = F.conv1d(xp.permute(1, 2, 0), kernel.flip(-1)).permute(2, 0, 1)
    return _finish(y, bias, xp, max_delay)


def delay_gaussian(x: torch.Tensor, state: DelayState | None = None, *, weight: torch.Tensor,
                   delay: torch.Tensor, sigma: float | torch.Tensor, max_delay: int,
                   bias: torch.Tensor | None = None,
                   sigma_offset: float = SIGMA_OFFSET) -> tuple[torch.Tensor, DelayState]:
    """The training path: Gaussian-interpolated real-valued delays (module docstring). ``x [T, B, in]``."""
    check_max_delay(max_delay)
    _check_weight_delay(weight, delay)
    _check_input(x, weight.shape[1])
    check_finite_parameters(weight, delay, bias)
    k = torch.arange(max_delay, -1, -1, device=x.device, dtype=x.dtype)  # conv order: tap n has delay K-1-n
    kernel = _GaussianKernel.apply(weight, delay, k, _width(sigma, sigma_offset))
    xp = _with_history(x, state, max_delay)
    y = F.conv1d(xp.permute(1, 2, 0), kernel).permute(2, 0, 1)
    return _finish(y, bias, xp, max_delay)


def integer_delays(delay: torch.Tensor, max_delay: int) -> torch.Tensor:
    """Check that ``delay`` holds integers in ``[0, max_delay]`` and return it as int64."""
    check_max_delay(max_delay)
    if delay.is_floating_point():
        check_finite_parameters(delay=delay)
        if not torch.equal(delay, torch.round(delay)):
            raise ParameterError(
                "integer-delay semantics were asked for but the delays are not integers; round them first "
                "(DelayLinear.round_delays(), or torch.round) or use the Gaussian path"
            )
    elif delay.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise DTypeError(f"delays must be an integer or floating tensor, got {delay.dtype}")
    d = delay.detach().to(torch.int64)
    if d.numel() and (int(d.min()) < 0 or int(d.max()) > max_delay):
        raise ParameterError(
            f"delays must lie in [0, max_delay={max_delay}] steps, got values in [{int(d.min())}, {int(d.max())}]; "
            "clamp them (DelayLinear.clamp_delays_()) or build the layer with a larger max_delay"
        )
    return d


class IntegerPlan(NamedTuple):
    """Gather indices and weights of :func:`delay_integer` for one sequence length (reusable while W, D are fixed)."""

    idx: torch.Tensor  # [steps * out, in] int32/int64: row (s, i) of the padded input summed into output (t, j)
    psw: torch.Tensor  # [steps * out, in]: W_ji, repeated per step
    steps: int


def integer_plan(weight: torch.Tensor, delay: torch.Tensor, max_delay: int, steps: int) -> IntegerPlan:
    """Precompute the gather of :func:`delay_integer` for sequences of ``steps`` steps."""
    _check_weight_delay(weight, delay)
    d = integer_delays(delay, max_delay)
    o, n = weight.shape
    # table row (s, i) = padded input step s, channel i; output (t, j) sums rows (t + max_delay - D_ji, i)
    itype = torch.int32 if (max_delay + steps) * n < 2**31 else torch.int64  # int32 halves the index memory
    base = ((max_delay - d) * n + torch.arange(n, device=weight.device)).to(itype)
    idx = (torch.arange(steps, device=weight.device, dtype=itype).view(steps, 1, 1) * n + base).view(steps * o, n)
    psw = weight.unsqueeze(0).expand(steps, o, n).reshape(steps * o, n)
    return IntegerPlan(idx, psw, steps)


def delay_integer(x: torch.Tensor, state: DelayState | None = None, *, weight: torch.Tensor,
                  delay: torch.Tensor, max_delay: int, bias: torch.Tensor | None = None,
                  plan: IntegerPlan | None = None) -> tuple[torch.Tensor, DelayState]:
    """The integer path: ``y[t, :, j] = sum_i W_ji x[t - D_ji, :, i]`` as one gather-sum (``embedding_bag``).

    Differentiable with respect to ``x``, ``weight`` and ``bias`` (not the integer delays). ``plan`` (from
    :func:`integer_plan` with the same weight and delays and ``steps = T``) skips rebuilding the gather indices.
    """
    _check_weight_delay(weight, delay)
    _check_input(x, weight.shape[1])
    check_finite_parameters(weight, None, bias)
    t, b, _ = x.shape
    if plan is None or plan.steps != t:
        plan = integer_plan(weight, delay, max_delay, t)
    elif plan.idx.shape != (t * weight.shape[0], weight.shape[1]):
        raise ShapeError("the integer plan was built for another layer shape; rebuild it with integer_plan()")
    xp = _with_history(x, state, max_delay)
    table = xp.permute(0, 2, 1).reshape(-1, b)
    y = F.embedding_bag(plan.idx, table, mode="sum", per_sample_weights=plan.psw.to(x.dtype))
    return _finish(y.view(t, weight.shape[0], b).permute(0, 2, 1), bias, xp, max_delay)


def delay_shift_reference(x: torch.Tensor, state: DelayState | None = None, *, weight: torch.Tensor,
                          delay: torch.Tensor, max_delay: int,
                          bias: torch.Tensor | None = None) -> tuple[torch.Tensor, DelayState]:
    """Reference of :func:`delay_integer`: one masked matmul per delay value, ``sum_k x[t-k] @ (W * [D == k])^T``."""
    _check_weight_delay(weight, delay)
    _check_input(x, weight.shape[1])
    check_finite_parameters(weight, None, bias)
    d = integer_delays(delay, max_delay)
    xp = _with_history(x, state, max_delay)
    t = x.shape[0]
    y = torch.zeros(t, x.shape[1], weight.shape[0], dtype=x.dtype, device=x.device)
    for k in range(max_delay + 1):
        mask = d == k
        if bool(mask.any()):
            y = y + xp[max_delay - k: max_delay - k + t] @ (weight * mask).t()
    return _finish(y, bias, xp, max_delay)


def uniform_delays(shape: tuple[int, ...], max_delay: int, *, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Delays drawn uniformly in ``[0, max_delay]`` (the paper's position init: uniform over the kernel)."""
    check_max_delay(max_delay)
    return torch.rand(shape, generator=generator, dtype=dtype) * max_delay


__all__ = [
    "SIGMA_FINAL", "SIGMA_OFFSET", "DelayState", "check_finite_parameters", "check_max_delay", "delay_conv",
    "delay_gaussian", "delay_integer", "delay_shift_reference", "gaussian_kernel", "gaussian_taps", "integer_delays",
    "integer_plan", "IntegerPlan", "sigma_schedule", "uniform_delays",
]
