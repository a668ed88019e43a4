"""CPU backend ``"cpu"`` of ``lif_scan``, ``cuba_lif_scan`` and ``li_scan``: fused C++ time loops (``scan.cpp``).

Forward: one pass over ``[T, N]`` writing the spikes and ``v_pre`` (the only ``[T, N]`` tensor saved for the
backward: spikes are recomputed from it as ``v_pre - v_th > 0``, so they cost no saved bytes at all; CuBa-LIF adds
the current trace only when ``alpha`` needs a gradient). Backward: ``sg = surrogate.grad(v_pre - v_th)`` vectorised
in torch with the :class:`~spikeseq.surrogate.Surrogate` object's own method (one definition of every formula, any
subclass works), then one reverse pass that yields the gradients of the input, the initial state, the decays and
the threshold. Neurons are split over ``torch.get_num_threads()`` threads.

The library builds on first use (:mod:`._build`); where it cannot, ``available()`` says why and ``backend="auto"``
falls back to the reference. Double backward is not supported.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from spikeseq import surrogate as sg
from spikeseq.checks import check_finite_result, check_sequence, check_unit_interval
from spikeseq.functional import CubaLIFState, LIFState, LIState
from spikeseq.functional._common import as_param, check_neuron_args, initial
from spikeseq.kernels.lif import _build
from spikeseq.kernels.lif._common import RESET_CODES, call_problem, expand_param, reduce_grad
from spikeseq.types import ParamLike, ResetMode

_DTYPES = (torch.float32, torch.float64)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
#: T x N elements per extra thread (measured on 2 cores: below ~2M elements one thread is as fast).
_ELEMENTS_PER_THREAD = 2_000_000


def available() -> tuple[bool, str]:
    lib = _build.library()
    return (lib is not None), _build.unavailable_reason()


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _fn(name: str, dtype: torch.dtype):
    lib = _build.library()
    if lib is None:  # pragma: no cover - dispatch checks available() first
        raise RuntimeError(_build.unavailable_reason())
    return getattr(lib, f"{name}_{_SUFFIX[dtype]}")


def _threads(numel: int) -> int:
    """Threads for one scan: splitting neurons pays only for large scans (each call starts its own threads)."""
    return max(1, min(torch.get_num_threads(), numel // _ELEMENTS_PER_THREAD))


def _contig(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.contiguous()


def _grad_or_zeros(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """The incoming gradient of a sequence output as a contiguous tensor (zeros when that output was unused)."""
    return torch.zeros_like(like) if g is None else g.contiguous()


class _LIFScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, beta, th, reset, detach_reset, surrogate):  # type: ignore[override]
        step, T = x.shape[1:], x.shape[0]
        x, v0 = x.contiguous(), v0.contiguous()
        be, te = expand_param(beta, step), expand_param(th, step)
        z, vpre = torch.empty_like(x), torch.empty_like(x)
        v = torch.empty(step, dtype=x.dtype, device=x.device)
        _fn("lif_fwd", x.dtype)(RESET_CODES[reset], T, step.numel(), _ptr(x), _ptr(v0), _ptr(be), _ptr(te),
                                _ptr(z), _ptr(vpre), _ptr(v), _threads(x.numel()))
        ctx.save_for_backward(vpre, be, te, v0 if ctx.needs_input_grad[2] else None)
        ctx.cfg = (reset, detach_reset, surrogate, beta.shape, th.shape)
        return z, v

    @staticmethod
    @once_differentiable
    def backward(ctx, gz, gvT):  # type: ignore[override]
        vpre, be, te, v0 = ctx.saved_tensors
        reset, detach_reset, surrogate, beta_shape, th_shape = ctx.cfg
        step, T = vpre.shape[1:], vpre.shape[0]
        need = ctx.needs_input_grad
        sgr = surrogate.grad(vpre - te).contiguous()
        gx = torch.empty_like(vpre)
        gv0 = torch.empty(step, dtype=vpre.dtype)
        gb = torch.empty(step, dtype=vpre.dtype) if need[2] else None
        gth = torch.empty(step, dtype=vpre.dtype)  # always accumulated (one add per element)
        gz, gvT = _grad_or_zeros(gz, vpre), _contig(gvT)
        _fn("lif_bwd", vpre.dtype)(RESET_CODES[reset], int(detach_reset), T, step.numel(), _ptr(gz), _ptr(vpre),
                                   _ptr(sgr), _ptr(v0), _ptr(be), _ptr(te), _ptr(gvT), _ptr(gx), _ptr(gv0),
                                   _ptr(gb), _ptr(gth), _threads(vpre.numel()))
        return (gx, gv0 if need[1] else None, reduce_grad(gb, beta_shape),
                reduce_grad(gth if need[3] else None, th_shape), None, None, None)


class _CubaScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, i0, v0, alpha, beta, th, reset, detach_reset, surrogate):  # type: ignore[override]
        step, T = x.shape[1:], x.shape[0]
        x, i0, v0 = x.contiguous(), i0.contiguous(), v0.contiguous()
        ae, be, te = (expand_param(p, step) for p in (alpha, beta, th))
        need_a = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]
        z, vpre = torch.empty_like(x), torch.empty_like(x)
        isave = torch.empty_like(x) if need_a else None
        i = torch.empty(step, dtype=x.dtype, device=x.device)
        v = torch.empty_like(i)
        _fn("cuba_fwd", x.dtype)(RESET_CODES[reset], T, step.numel(), _ptr(x), _ptr(i0), _ptr(v0), _ptr(ae),
                                 _ptr(be), _ptr(te), _ptr(z), _ptr(vpre), _ptr(isave), _ptr(i), _ptr(v),
                                 _threads(x.numel()))
        ctx.save_for_backward(vpre, isave, ae, be, te, i0 if need_a else None, v0 if need_a else None)
        ctx.cfg = (reset, detach_reset, surrogate, alpha.shape, beta.shape, th.shape)
        return z, i, v

    @staticmethod
    @once_differentiable
    def backward(ctx, gz, giT, gvT):  # type: ignore[override]
        vpre, isave, ae, be, te, i0, v0 = ctx.saved_tensors
        reset, detach_reset, surrogate, a_shape, b_shape, th_shape = ctx.cfg
        step, T = vpre.shape[1:], vpre.shape[0]
        need = ctx.needs_input_grad
        sgr = surrogate.grad(vpre - te).contiguous()
        gx = torch.empty_like(vpre)
        gi0, gv0 = (torch.empty(step, dtype=vpre.dtype) for _ in range(2))
        decays = need[3] or need[4]  # the kernel computes both decay gradients or neither
        ga = torch.empty(step, dtype=vpre.dtype) if decays else None
        gb = torch.empty(step, dtype=vpre.dtype) if decays else None
        gth = torch.empty(step, dtype=vpre.dtype)
        gz, giT, gvT = _grad_or_zeros(gz, vpre), _contig(giT), _contig(gvT)
        _fn("cuba_bwd", vpre.dtype)(RESET_CODES[reset], int(detach_reset), T, step.numel(), _ptr(gz), _ptr(vpre),
                                    _ptr(sgr), _ptr(isave), _ptr(i0), _ptr(v0), _ptr(ae), _ptr(be), _ptr(te),
                                    _ptr(giT), _ptr(gvT), _ptr(gx), _ptr(gi0), _ptr(gv0), _ptr(ga), _ptr(gb),
                                    _ptr(gth), _threads(vpre.numel()))
        return (gx, gi0 if need[1] else None, gv0 if need[2] else None, reduce_grad(ga if need[3] else None, a_shape),
                reduce_grad(gb if need[4] else None, b_shape), reduce_grad(gth if need[5] else None, th_shape),
                None, None, None)


class _LIScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, beta):  # type: ignore[override]
        step, T = x.shape[1:], x.shape[0]
        x, v0 = x.contiguous(), v0.contiguous()
        be = expand_param(beta, step)
        y = torch.empty_like(x)
        _fn("li_fwd", x.dtype)(T, step.numel(), _ptr(x), _ptr(v0), _ptr(be), _ptr(y), _threads(x.numel()))
        need_b = ctx.needs_input_grad[2]
        ctx.save_for_backward(be, y if need_b else None, v0 if need_b else None)
        ctx.cfg = (beta.shape, T)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):  # type: ignore[override]
        be, y, v0 = ctx.saved_tensors
        beta_shape, T = ctx.cfg
        step = be.shape
        need = ctx.needs_input_grad
        gy = _grad_or_zeros(gy, torch.empty((T, *step), dtype=be.dtype))
        gx = torch.empty_like(gy)
        gv0 = torch.empty(step, dtype=gy.dtype)
        gb = torch.empty(step, dtype=gy.dtype) if need[2] else None
        _fn("li_bwd", gy.dtype)(T, step.numel(), _ptr(gy), _ptr(y), _ptr(v0), _ptr(be), _ptr(gx),
                                _ptr(gv0), _ptr(gb), _threads(gy.numel()))
        return gx, gv0 if need[1] else None, reduce_grad(gb, beta_shape)


def lif_scan(
    x: torch.Tensor,
    state: LIFState | None = None,
    *,
    beta: ParamLike,
    v_th: ParamLike = 1.0,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, LIFState]:
    """:func:`spikeseq.functional.lif_scan` as one fused C++ loop (same checks, results and gradients)."""
    check_sequence(x)
    check_neuron_args(beta, v_th, reset)
    v0 = initial(None if state is None else state.v, x.shape[1:], x, "v")
    z, v = _LIFScan.apply(x, v0, as_param(beta, x), as_param(v_th, x), reset, bool(detach_reset), surrogate)
    check_finite_result(v, "the final LIF membrane")
    return z, LIFState(v)


def cuba_lif_scan(
    x: torch.Tensor,
    state: CubaLIFState | None = None,
    *,
    alpha: ParamLike,
    beta: ParamLike,
    v_th: ParamLike = 1.0,
    reset: ResetMode = "subtract",
    detach_reset: bool = False,
    surrogate: sg.Surrogate = sg.DEFAULT,
) -> tuple[torch.Tensor, CubaLIFState]:
    """:func:`spikeseq.functional.cuba_lif_scan` as one fused C++ loop."""
    check_sequence(x)
    check_unit_interval(alpha, "alpha")
    check_neuron_args(beta, v_th, reset)
    i0 = initial(None if state is None else state.i, x.shape[1:], x, "i")
    v0 = initial(None if state is None else state.v, x.shape[1:], x, "v")
    z, i, v = _CubaScan.apply(x, i0, v0, as_param(alpha, x), as_param(beta, x), as_param(v_th, x), reset,
                              bool(detach_reset), surrogate)
    check_finite_result(v, "the final CuBa-LIF membrane")
    return z, CubaLIFState(i, v)


def li_scan(x: torch.Tensor, state: LIState | None = None, *, beta: ParamLike) -> tuple[torch.Tensor, LIState]:
    """:func:`spikeseq.functional.li_scan` as one fused C++ loop."""
    check_sequence(x)
    check_unit_interval(beta, "beta")
    v0 = initial(None if state is None else state.v, x.shape[1:], x, "v")
    y = _LIScan.apply(x, v0, as_param(beta, x))
    check_finite_result(y[-1], "the final LI membrane")
    return y, LIState(y[-1])


def supports_lif(x, state=None, *, beta=None, v_th=1.0, **_: object) -> str | None:
    return call_problem(x, state, {"beta": beta, "v_th": v_th}, ("cpu",), _DTYPES)


def supports_cuba(x, state=None, *, alpha=None, beta=None, v_th=1.0, **_: object) -> str | None:
    return call_problem(x, state, {"alpha": alpha, "beta": beta, "v_th": v_th}, ("cpu",), _DTYPES)


def supports_li(x, state=None, *, beta=None, **_: object) -> str | None:
    return call_problem(x, state, {"beta": beta}, ("cpu",), _DTYPES)
