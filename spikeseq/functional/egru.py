"""Event-based gated recurrent unit (EGRU), reference implementation.

Subramoney, Nazeer, Schöne, Mayr, Kappel, "Efficient recurrent architectures through activity sparsity and
sparse back-propagation through time", ICLR 2023 (EvNN ``EGRUScript``; specs/models.md §4). One step, input
``x[t]`` ``[B, I]``, gate order ``(r, z, n)`` as in ``torch.nn.GRU`` (``W = weight_ih [3H, I]``,
``R = weight_hh [3H, H]``), cuDNN-style reset placement (Haste, arXiv 1406.1078v1):

    r[t]  = sigmoid(W_r x[t] + b_ir + R_r y[t-1] + b_hr)
    z[t]  = sigmoid(W_z x[t] + b_iz + R_z y[t-1] + b_hz)
    n[t]  = tanh(W_n x[t] + b_in + r[t] * (R_n y[t-1] + b_hn))
    c~[t] = z[t] * c[t-1] + (1 - z[t]) * n[t]
    e[t]  = H(c~[t] - theta)                        event iff c~ > theta (strict), theta per unit
    y[t]  = e[t] * c~[t]                            graded event: the unit sends its value, only when it fires
    c[t]  = c~[t] - e[t] * theta                    subtractive reset
    c[t]  = m[t] * c[t-1] + (1 - m[t]) * c[t]       zoneout on the internal state (m = 0: none)

The recurrent input is the sparse output ``y[t-1]``, never ``c``. Backward: ``dH/dx`` is replaced by the
Triangle pseudo-derivative ``gamma * max(0, 1 - eps * |c~ - theta|)`` with dampening ``gamma = 0.7`` (fixed in
EvNN) and support parameter ``eps`` (EvNN ``pseudo_derivative_support``; support half-width ``1 / eps``),
i.e. :class:`spikeseq.surrogate.Triangle` with ``width = 1 / eps``. A unit outside the support that did not fire
passes no gradient to ``y[t-1]`` (``dy/dc~ = e + c~ * de/dc~ = 0``): the sparse BPTT of the paper.

Options: ``dropconnect`` (DropConnect on ``R``, AWD-LSTM style: one mask per call, training only),
``zoneout`` (probability ``p`` of keeping each unit's previous state; a float samples ``m ~ Bernoulli(p)`` in
training and uses ``m = p`` in evaluation, a tensor is ``m`` itself), the output trace
``tr[t] = 0.9 tr[t-1] + 0.1 y[t]`` (:func:`egru_trace`, EvNN's constants) and the activity regulariser
:func:`activity_loss`. Threshold init: :func:`beta_threshold_init`, ``Beta(alpha, 3)`` with mean ``thr_mean``.

Mixed precision: the gate non-linearities, the comparison ``c~ > theta`` and the state ``c`` run in float32 when
the input is float16/bfloat16 (float64 stays float64), so autocast never flips an event by rounding the state;
only the matrix products run in the low precision.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from spikeseq import surrogate as sg
from spikeseq.checks import all_finite, check_floating, check_sequence, check_state_shape
from spikeseq.errors import DTypeError, NonFiniteError, ParameterError, ShapeError

#: EvNN's dampening factor gamma of the pseudo-derivative (fixed in the reference code; specs/models.md §4).
DAMPENING = 0.7
#: Output-trace constants of EvNN: ``tr = 0.9 tr + 0.1 y`` (specs/models.md §4).
TRACE_DECAY = 0.9


class EGRUState(NamedTuple):
    """State of one EGRU layer: internal state ``c`` (after reset) and the last output ``y``, both ``[B, H]``."""

    c: torch.Tensor
    y: torch.Tensor


class EGRUOutput(NamedTuple):
    """Outputs of one EGRU layer over time: graded events ``y`` and binary events ``e``, both ``[T, B, H]``.

    ``e`` carries the pseudo-derivative (use it for activity regularisation); ``y == e * c~``.
    """

    y: torch.Tensor
    e: torch.Tensor


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the gate maths and the threshold comparison: float32 for half types, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def pseudo_derivative(eps: float, dampening: float = DAMPENING) -> sg.Triangle:
    """The Triangle surrogate ``dampening * max(0, 1 - eps |x|)`` (``width = 1 / eps``)."""
    check_eps(eps, dampening)
    return sg.Triangle(width=1.0 / eps, dampening=dampening)


def check_eps(eps: float, dampening: float = DAMPENING) -> None:
    """``eps`` and ``dampening`` must be finite and > 0."""
    for value, name in ((eps, "eps"), (dampening, "dampening")):
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value > 0):
            raise ParameterError(
                f"EGRU {name} must be a finite number > 0, got {value!r}; eps is the pseudo-derivative's support "
                "parameter (half-width 1/eps; EvNN uses 1.0, its language models 3.6), dampening 0.7"
            )


def check_threshold(threshold: torch.Tensor, hidden: int) -> None:
    """A per-unit threshold ``[H]`` (or scalar), finite and in ``[0, 1)``."""
    check_floating(threshold, "threshold")
    if threshold.dim() > 1 or (threshold.dim() == 1 and threshold.shape[0] != hidden):
        raise ShapeError(f"threshold must be a scalar or have shape [{hidden}] (one per unit), got "
                         f"{tuple(threshold.shape)}")
    t = threshold.detach()
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteError("EGRU threshold contains NaN or Inf")
    if bool(((t < 0) | (t >= 1)).any()):
        raise ParameterError(
            f"EGRU threshold must lie in [0, 1), got values in [{float(t.min()):.4g}, {float(t.max()):.4g}]; "
            "c~ is a convex combination of the previous state and tanh, so a unit with threshold >= 1 never "
            "fires (clamp the parameter, or initialise it with beta_threshold_init)"
        )


def check_weights(x: torch.Tensor, weight_ih, weight_hh, bias_ih, bias_hh) -> int:
    """Shapes of the GRU weights against ``x [..., I]``; returns the hidden size ``H``."""
    for w, name in ((weight_ih, "weight_ih"), (weight_hh, "weight_hh")):
        check_floating(w, name)
        if w.dim() != 2:
            raise ShapeError(f"{name} must be 2-D, got shape {tuple(w.shape)}")
    three_h, i = weight_ih.shape
    if three_h % 3 or weight_hh.shape != (three_h, three_h // 3):
        raise ShapeError(
            f"weight_ih must be [3H, I] and weight_hh [3H, H] (gates r, z, n as in torch.nn.GRU); got "
            f"{tuple(weight_ih.shape)} and {tuple(weight_hh.shape)}"
        )
    if x.shape[-1] != i:
        raise ShapeError(f"x has {x.shape[-1]} features but weight_ih expects {i}")
    for b, name in ((bias_ih, "bias_ih"), (bias_hh, "bias_hh")):
        if b is not None and tuple(b.shape) != (three_h,):
            raise ShapeError(f"{name} must have shape [{three_h}], got {tuple(b.shape)}")
    return three_h // 3


def check_consistent(x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih, bias_hh,
                     threshold: torch.Tensor, state: EGRUState | None) -> None:
    """Every parameter and the state on ``x``'s device; weights and biases in one floating dtype, which is ``x``'s
    unless autocast is on; a given state in the compute dtype of ``x`` (:func:`compute_dtype`). A fast kernel reads
    raw memory, so a bias of another dtype would be read wrongly rather than converted."""
    wdt = weight_ih.dtype
    named = [("weight_hh", weight_hh), ("bias_ih", bias_ih), ("bias_hh", bias_hh)]
    for name, t in named:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise DTypeError(f"EGRU {name} must be a floating tensor, got "
                             f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
        if t.dtype != wdt:
            raise DTypeError(f"EGRU {name} is {t.dtype} but weight_ih is {wdt}: keep every parameter of a layer in "
                             "one dtype (module.to(dtype))")
    given = [] if state is None else [("state.c", state.c), ("state.y", state.y)]
    for name, t in [("weight_ih", weight_ih), *named, ("threshold", threshold), *given]:
        if isinstance(t, torch.Tensor) and t.device != x.device:
            raise DTypeError(f"EGRU {name} is on {t.device} but x is on {x.device}: move the module and the state "
                             f"to one device (module.to({str(x.device)!r}))")
    if x.dtype != wdt and not torch.is_autocast_enabled(x.device.type):
        raise DTypeError(f"EGRU input x is {x.dtype} but the weights are {wdt}: convert the input (x.to({wdt})) or "
                         f"the module (module.to({x.dtype})), or run under torch.autocast")
    cdt = compute_dtype(x.dtype)
    for name, t in given:
        if t.dtype != cdt:
            raise DTypeError(f"EGRU {name} is {t.dtype}, expected {cdt} for {x.dtype} input (the state is kept in "
                             "float32 for half-precision inputs); convert it, or pass state=None to start at rest")


def initial_state(state: EGRUState | None, batch: int, hidden: int, like: torch.Tensor) -> EGRUState:
    """``state`` checked against ``[B, H]``, or zeros in the compute dtype."""
    dt = compute_dtype(like.dtype)
    if state is None:
        z = torch.zeros(batch, hidden, device=like.device, dtype=dt)
        return EGRUState(z, z.clone())
    if not isinstance(state, tuple) or len(state) != 2:
        raise ShapeError("EGRU state must be an EGRUState(c, y) of [B, H] tensors; pass state=None to start at rest")
    for s, name in zip(state, ("c", "y"), strict=True):
        check_floating(s, f"state.{name}")
        check_state_shape(s, torch.Size((batch, hidden)), name)
    return EGRUState(*state)


def zoneout_mask(zoneout: float | torch.Tensor, shape: torch.Size, like: torch.Tensor, training: bool,
                 generator: torch.Generator | None = None) -> torch.Tensor | None:
    """The zoneout mask ``m`` ``[T, B, H]``: ``None`` for ``p = 0``, Bernoulli(p) in training, ``p`` in evaluation."""
    if isinstance(zoneout, torch.Tensor):
        if tuple(zoneout.shape) != tuple(shape):
            raise ShapeError(f"a zoneout mask must have shape {tuple(shape)}, got {tuple(zoneout.shape)}")
        m = zoneout.detach()
        if not bool(torch.isfinite(m).all()) or bool(((m < 0) | (m > 1)).any()):
            raise ParameterError("a zoneout mask holds the share of the previous state each unit keeps: its values "
                                 "must lie in [0, 1]")
        return zoneout.to(compute_dtype(like.dtype))
    if isinstance(zoneout, bool) or not isinstance(zoneout, int | float) or not (0.0 <= zoneout < 1.0):
        raise ParameterError(f"zoneout must be a probability in [0, 1) (or a mask tensor), got {zoneout!r}")
    if zoneout == 0.0:
        return None
    dt = compute_dtype(like.dtype)
    if training:
        return torch.bernoulli(torch.full(shape, zoneout, device=like.device, dtype=dt), generator=generator)
    return torch.full(shape, zoneout, device=like.device, dtype=dt)


def drop_connect(weight_hh: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """DropConnect on the recurrent weights (one mask per call; identity in evaluation or for ``p = 0``)."""
    if not (0.0 <= p < 1.0):
        raise ParameterError(f"dropconnect must be a probability in [0, 1), got {p}")
    return F.dropout(weight_hh, p, training=True) if (training and p > 0) else weight_hh


def egru_cell(a: torch.Tensor, y_prev: torch.Tensor, c_prev: torch.Tensor, weight_hh: torch.Tensor,
              bias_hh: torch.Tensor | None, threshold: torch.Tensor, m: torch.Tensor | None,
              surrogate: sg.Surrogate) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The step equations of the module docstring on the input pre-activation ``a = W x + b_i`` ``[B, 3H]``.

    Returns ``(y, e, c)``. No checks (shared by :func:`egru_step` and :func:`egru_scan`).
    """
    dt = c_prev.dtype
    h = F.linear(y_prev.to(weight_hh.dtype), weight_hh, bias_hh).to(dt)
    a = a.to(dt)
    a_r, a_z, a_n = a.chunk(3, dim=-1)
    h_r, h_z, h_n = h.chunk(3, dim=-1)
    r = torch.sigmoid(a_r + h_r)
    z = torch.sigmoid(a_z + h_z)
    n = torch.tanh(a_n + r * h_n)
    ct = z * c_prev + (1 - z) * n
    e = sg.spike(ct - threshold, surrogate)
    y = e * ct
    c = ct - e * threshold
    if m is not None:
        c = m * c_prev + (1 - m) * c
    return y, e, c


class EGRUCall(NamedTuple):
    """One checked EGRU call as :func:`prepare_egru` returns it (shared by the reference and every kernel)."""

    surrogate: sg.Surrogate
    state: EGRUState                    # the initial state (zeros in the compute dtype when none was given)
    weight_ih: torch.Tensor
    weight_hh: torch.Tensor             # the recurrent weight after DropConnect
    bias_ih: torch.Tensor | None
    bias_hh: torch.Tensor | None
    threshold: torch.Tensor             # in the compute dtype
    mask: torch.Tensor | None           # zoneout mask ``[T, B, H]`` (``[B, H]`` for a step), or None


def prepare_egru(x: torch.Tensor, state: EGRUState | None = None, *, weight_ih: torch.Tensor,
                 weight_hh: torch.Tensor, bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None,
                 threshold: torch.Tensor, eps: float = 1.0, dampening: float = DAMPENING,
                 zoneout: float | torch.Tensor = 0.0, dropconnect: float = 0.0, training: bool = False,
                 generator: torch.Generator | None = None, step: bool = False) -> EGRUCall:
    """Checks and preparation of :func:`egru_scan` (``x [T, B, I]``) or, with ``step``, :func:`egru_step`
    (``x [B, I]``), shared by the reference and every kernel; raises on bad shapes or out-of-range options."""
    if step:
        check_floating(x, "x")
        if x.dim() != 2:
            raise ShapeError(f"egru_step takes one step [B, I], got shape {tuple(x.shape)}; use egru_scan for "
                             "[T, B, I]")
    else:
        check_sequence(x)
        if x.dim() != 3:
            raise ShapeError(f"egru_scan takes [T, B, I], got shape {tuple(x.shape)}")
    hidden = check_weights(x, weight_ih, weight_hh, bias_ih, bias_hh)
    check_threshold(threshold, hidden)
    surrogate = pseudo_derivative(eps, dampening)
    st = initial_state(state, x.shape[-2], hidden, x)
    check_consistent(x, weight_ih, weight_hh, bias_ih, bias_hh, threshold, state)
    check_finite_inputs(x, state, {"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih,
                                   "bias_hh": bias_hh})
    w_hh = drop_connect(weight_hh, dropconnect, training)
    th = threshold.to(compute_dtype(x.dtype))
    steps = 1 if step else x.shape[0]
    if step and isinstance(zoneout, torch.Tensor) and zoneout.dim() == 2:
        zoneout = zoneout.unsqueeze(0)  # a step's mask [B, H]
    m = zoneout_mask(zoneout, torch.Size((steps, x.shape[-2], hidden)), x, training, generator)
    if step and m is not None:
        m = m[0]
    return EGRUCall(surrogate, st, weight_ih, w_hh, bias_ih, bias_hh, th, m)


def check_finite_inputs(x: torch.Tensor, state: EGRUState | None,
                        weights: dict[str, torch.Tensor | None] | None = None) -> None:
    """Raise :class:`~spikeseq.errors.NonFiniteError` when ``x``, a given state or a weight / bias holds a NaN or an
    inf. Checked up front, not only through the final state: a saturating gate (tanh of +inf), a pruned input column
    or an event-driven product that skips a non-firing unit's weights would hide it from the output, and the
    backends would then disagree (the dense reference multiplies every weight, the kernels only the active units')."""
    named = [(x, "x"), *(() if state is None else ((state.c, "state.c"), (state.y, "state.y")))]
    named += [(w, name) for name, w in (weights or {}).items() if w is not None]
    for t, name in named:
        if not all_finite(t):
            what = "the input (e.g. torch.nan_to_num)" if name.startswith(("x", "state")) else "the parameter"
            raise NonFiniteError(f"EGRU {name} contains NaN or Inf; clean {what} or find where it became "
                                 "non-finite")


def check_final_state(c: torch.Tensor) -> None:
    """Raise :class:`~spikeseq.errors.NonFiniteError` when the final EGRU state ``c`` holds a NaN or an inf."""
    if not bool(torch.isfinite(c.detach()).all()):
        raise NonFiniteError("non-finite values reached the final EGRU state: check x, the state and the weights")


def egru_step(x: torch.Tensor, state: EGRUState | None = None, *, weight_ih: torch.Tensor, weight_hh: torch.Tensor,
              bias_ih: torch.Tensor | None = None, bias_hh: torch.Tensor | None = None, threshold: torch.Tensor,
              eps: float = 1.0, dampening: float = DAMPENING, zoneout: float | torch.Tensor = 0.0,
              dropconnect: float = 0.0, training: bool = False,
              generator: torch.Generator | None = None) -> tuple[EGRUOutput, EGRUState]:
    """One EGRU step on ``x`` ``[B, I]`` with the keyword arguments of :func:`egru_scan` (the zoneout mask is
    ``[B, H]``); returns ``EGRUOutput(y, e)`` (``[B, H]``) and the new state."""
    p = prepare_egru(x, state, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih, bias_hh=bias_hh,
                     threshold=threshold, eps=eps, dampening=dampening, zoneout=zoneout, dropconnect=dropconnect,
                     training=training, generator=generator, step=True)
    y, e, c = egru_cell(F.linear(x, p.weight_ih, p.bias_ih), p.state.y, p.state.c, p.weight_hh, p.bias_hh,
                        p.threshold, p.mask, p.surrogate)
    return EGRUOutput(y, e), EGRUState(c, y)


def egru_scan(
    x: torch.Tensor,
    state: EGRUState | None = None,
    *,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None = None,
    bias_hh: torch.Tensor | None = None,
    threshold: torch.Tensor,
    eps: float = 1.0,
    dampening: float = DAMPENING,
    zoneout: float | torch.Tensor = 0.0,
    dropconnect: float = 0.0,
    training: bool = False,
    generator: torch.Generator | None = None,
    events_out: torch.Tensor | None = None,
) -> tuple[EGRUOutput, EGRUState]:
    """EGRU over a time-first sequence ``x`` ``[T, B, I]``; returns ``EGRUOutput(y, e)`` ``[T, B, H]`` and the final
    ``EGRUState(c, y)``.

    The reference every kernel is tested against: a plain loop of :func:`egru_cell` under autograd (dense
    products: the EvNN PyTorch fallback's way). ``events_out`` (inference only, no gradient): a ``[T, B, H]``
    tensor that receives ``e`` and is returned as it (a stack assembles its layers' events without a copy).
    """
    p = prepare_egru(x, state, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih, bias_hh=bias_hh,
                     threshold=threshold, eps=eps, dampening=dampening, zoneout=zoneout, dropconnect=dropconnect,
                     training=training, generator=generator)
    a = F.linear(x, weight_ih, bias_ih)
    y, c = p.state.y, p.state.c
    ys, es = [], []
    for t, a_t in enumerate(a.unbind(0)):
        y, e, c = egru_cell(a_t, y, c, p.weight_hh, bias_hh, p.threshold, None if p.mask is None else p.mask[t],
                            p.surrogate)
        ys.append(y)
        es.append(e)
    check_final_state(c)
    return EGRUOutput(torch.stack(ys), into_events_out(torch.stack(es), events_out)), EGRUState(c, y)


def check_events_out(events_out: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype, device) -> None:
    """``events_out`` of :func:`egru_scan` must be a contiguous ``shape`` tensor of ``dtype`` on ``device``, and only
    given when no gradient is recorded."""
    if torch.is_grad_enabled():
        raise ParameterError("events_out is for inference: call egru_scan under torch.no_grad() (the events of a "
                             "training pass carry the pseudo-derivative)")
    if not isinstance(events_out, torch.Tensor) or tuple(events_out.shape) != tuple(shape) or \
            events_out.dtype != dtype or events_out.device != torch.device(device) or not events_out.is_contiguous():
        got = (tuple(events_out.shape), events_out.dtype, events_out.device) if isinstance(events_out, torch.Tensor) \
            else type(events_out).__name__
        raise ShapeError(f"events_out must be a contiguous {tuple(shape)} {dtype} tensor on {device}, got {got}")


def into_events_out(e: torch.Tensor, events_out: torch.Tensor | None) -> torch.Tensor:
    """``e``, or ``events_out`` (checked by :func:`check_events_out`) holding a copy of it."""
    if events_out is None:
        return e
    check_events_out(events_out, tuple(e.shape), e.dtype, e.device)
    return events_out.copy_(e)


def egru_trace(y: torch.Tensor, tr: torch.Tensor | None = None, decay: float = TRACE_DECAY) -> tuple[
        torch.Tensor, torch.Tensor]:
    """Output trace ``tr[t] = decay * tr[t-1] + (1 - decay) * y[t]`` over ``[T, B, H]`` (EvNN: decay 0.9).

    Returns the trace sequence and its last value (the state to pass to the next call).
    """
    check_sequence(y, "y")
    tr = torch.zeros_like(y[0]) if tr is None else tr
    check_state_shape(tr, y.shape[1:], "tr")
    out = []
    for y_t in y.unbind(0):
        tr = decay * tr + (1 - decay) * y_t
        out.append(tr)
    return torch.stack(out), tr


def activity_loss(e: torch.Tensor, strength: float) -> torch.Tensor:
    """Activity regulariser ``strength * mean(e)``: the mean event rate, differentiable through the
    pseudo-derivative (EvNN's DVS recipe uses 0.01; specs/models.md §4)."""
    if not (strength >= 0 and math.isfinite(strength)):
        raise ParameterError(f"activity regularisation strength must be finite and >= 0, got {strength}")
    return strength * e.mean()


def beta_threshold_init(hidden: int, thr_mean: float = 0.3, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-unit thresholds drawn from ``Beta(alpha, 3)`` with mean ``thr_mean`` (``alpha = 3 m / (1 - m)``).

    EvNN ``EGRU(thr_mean=0.3)`` (specs/models.md §4); its language models use ``thr_mean = 0.01``.
    """
    if not (0.0 < thr_mean < 1.0):
        raise ParameterError(f"thr_mean must lie in (0, 1), got {thr_mean}")
    alpha = 3.0 * thr_mean / (1.0 - thr_mean)
    # Beta(a, b) = G_a / (G_a + G_b) with G ~ Gamma: drawn with torch's generator so that seeds reproduce.
    ga = torch._standard_gamma(torch.full((hidden,), alpha, dtype=torch.float64), generator=generator)
    gb = torch._standard_gamma(torch.full((hidden,), 3.0, dtype=torch.float64), generator=generator)
    thr = (ga / (ga + gb)).clamp(0.0, 1.0 - 1e-6)
    return thr.to(dtype)
