"""Autograd functions and checked entry points shared by the fast LIF-family backends.

A backend supplies a *launcher*: functions on tensors (``lif_fwd``, ``lif_bwd``, ``cuba_fwd``, ``cuba_bwd``,
``li_fwd``, ``li_bwd``, optionally ``alif_fwd``, ``alif_bwd``) that run the fused time loops (C++ on the CPU,
Triton on the GPU). Everything else is here, once: the reference's input checks, the parameter expansion, what
is saved for backward, the surrogate gradient and the reduction of per-element parameter gradients.

Saved for backward: ``v_pre`` ``[T, N]`` (float), the only sequence-sized tensor; spikes are recomputed from it as
``v_pre - v_th > 0`` with the forward's own operation, so they cost no saved bytes. CuBa-LIF adds the current trace
only when a decay needs a gradient, LI its output only when beta does, ALIF its adaptation trace (always: the
threshold of every step is rebuilt from it). In the backward,
``sg = surrogate.grad_(v_pre - v_th)`` is computed vectorised with the :class:`~spikeseq.surrogate.Surrogate` object's
own method (one definition of every formula; any subclass works) and fed to the reverse loop.
Double backward is not supported.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import torch
from torch.autograd.function import once_differentiable

from spikeseq import surrogate as sg
from spikeseq.checks import check_finite_result, check_sequence, check_unit_interval
from spikeseq.functional import ALIFState, CubaLIFState, LIFState, LIState
from spikeseq.functional.alif import check_alif_args
from spikeseq.functional.neuron_args import as_param, check_neuron_args, initial
from spikeseq.kernels.lif._common import RESET_CODES, expand_param, reduce_grad
from spikeseq.types import ParamLike, ResetMode


def _grad_or_zeros(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """The incoming gradient of a sequence output, contiguous (zeros when that output was unused)."""
    return torch.zeros_like(like) if g is None else g.contiguous()


def _contig(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.contiguous()


_SCRATCH = threading.local()


def _surrogate_grad(surrogate: sg.Surrogate, vpre: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``surrogate.grad_(v_pre - threshold)``, evaluated in a per-thread scratch buffer on the CPU.

    A fresh sequence-sized tensor per call costs page faults on the CPU (more than the arithmetic); the buffer is
    consumed by the backward loop before the call returns, so one per thread suffices. GPUs use torch's caching
    allocator instead.
    """
    if vpre.device.type != "cpu":
        return surrogate.grad_(vpre - threshold).contiguous()
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.numel() < vpre.numel() or buf.dtype != vpre.dtype:
        buf = torch.empty(vpre.numel(), dtype=vpre.dtype)
        _SCRATCH.buf = buf
    h = torch.sub(vpre, threshold, out=buf[: vpre.numel()].view(vpre.shape))
    return surrogate.grad_(h)


def _empty_step(like: torch.Tensor, step: torch.Size) -> torch.Tensor:
    return torch.empty(step, dtype=like.dtype, device=like.device)


class _LIFScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, beta, th, reset, detach_reset, surrogate, launcher):  # type: ignore[override]
        step = x.shape[1:]
        x, v0 = x.contiguous(), v0.contiguous()
        be, te = expand_param(beta, step), expand_param(th, step)
        z, vpre, v = torch.empty_like(x), torch.empty_like(x), _empty_step(x, step)
        launcher.lif_fwd(RESET_CODES[reset], x, v0, be, te, z, vpre, v)
        ctx.save_for_backward(vpre, be, te, v0 if ctx.needs_input_grad[2] else None)
        ctx.cfg = (reset, detach_reset, surrogate, launcher, beta.shape, th.shape)
        return z, v

    @staticmethod
    @once_differentiable
    def backward(ctx, gz, gvT):  # type: ignore[override]
        vpre, be, te, v0 = ctx.saved_tensors
        reset, detach_reset, surrogate, launcher, beta_shape, th_shape = ctx.cfg
        need = ctx.needs_input_grad
        step = vpre.shape[1:]
        sgr = _surrogate_grad(surrogate, vpre, te)
        gx, gv0, gth = torch.empty_like(vpre), _empty_step(vpre, step), _empty_step(vpre, step)
        gb = _empty_step(vpre, step) if need[2] else None
        launcher.lif_bwd(RESET_CODES[reset], bool(detach_reset), _grad_or_zeros(gz, vpre), vpre, sgr, v0, be, te,
                         _contig(gvT), gx, gv0, gb, gth)
        return (gx, gv0 if need[1] else None, reduce_grad(gb, beta_shape),
                reduce_grad(gth if need[3] else None, th_shape), None, None, None, None)


class _CubaScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, i0, v0, alpha, beta, th, reset, detach_reset, surrogate, launcher):  # type: ignore[override]
        step = x.shape[1:]
        x, i0, v0 = x.contiguous(), i0.contiguous(), v0.contiguous()
        ae, be, te = (expand_param(p, step) for p in (alpha, beta, th))
        decays = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]  # both decay gradients or neither
        z, vpre = torch.empty_like(x), torch.empty_like(x)
        isave = torch.empty_like(x) if decays else None
        i, v = _empty_step(x, step), _empty_step(x, step)
        launcher.cuba_fwd(RESET_CODES[reset], x, i0, v0, ae, be, te, z, vpre, isave, i, v)
        ctx.save_for_backward(vpre, isave, ae, be, te, i0 if decays else None, v0 if decays else None)
        ctx.cfg = (reset, detach_reset, surrogate, launcher, alpha.shape, beta.shape, th.shape)
        return z, i, v

    @staticmethod
    @once_differentiable
    def backward(ctx, gz, giT, gvT):  # type: ignore[override]
        vpre, isave, ae, be, te, i0, v0 = ctx.saved_tensors
        reset, detach_reset, surrogate, launcher, a_shape, b_shape, th_shape = ctx.cfg
        need = ctx.needs_input_grad
        step = vpre.shape[1:]
        sgr = _surrogate_grad(surrogate, vpre, te)
        gx = torch.empty_like(vpre)
        gi0, gv0, gth = (_empty_step(vpre, step) for _ in range(3))
        decays = isave is not None
        ga = _empty_step(vpre, step) if decays else None
        gb = _empty_step(vpre, step) if decays else None
        launcher.cuba_bwd(RESET_CODES[reset], bool(detach_reset), _grad_or_zeros(gz, vpre), vpre, sgr, isave, i0,
                          v0, ae, be, te, _contig(giT), _contig(gvT), gx, gi0, gv0, ga, gb, gth)
        return (gx, gi0 if need[1] else None, gv0 if need[2] else None,
                reduce_grad(ga if need[3] else None, a_shape), reduce_grad(gb if need[4] else None, b_shape),
                reduce_grad(gth if need[5] else None, th_shape), None, None, None, None)


class _ALIFScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, a0, beta, rho, th, adapt, reset, detach_reset, surrogate, launcher):  # type: ignore[override]
        step = x.shape[1:]
        x, v0, a0 = x.contiguous(), v0.contiguous(), a0.contiguous()
        be, rh, te, ad = (expand_param(p, step) for p in (beta, rho, th, adapt))
        z, vpre, asave = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
        v, a = _empty_step(x, step), _empty_step(x, step)
        launcher.alif_fwd(RESET_CODES[reset], x, v0, a0, be, rh, te, ad, z, vpre, asave, v, a)
        ctx.save_for_backward(vpre, asave, a0, be, rh, te, ad, v0 if ctx.needs_input_grad[3] else None)
        ctx.cfg = (reset, detach_reset, surrogate, launcher, beta.shape, rho.shape, th.shape, adapt.shape)
        return z, v, a

    @staticmethod
    @once_differentiable
    def backward(ctx, gz, gvT, gaT):  # type: ignore[override]
        vpre, asave, a0, be, rh, te, ad, v0 = ctx.saved_tensors
        reset, detach_reset, surrogate, launcher, *shapes = ctx.cfg
        need = ctx.needs_input_grad
        step = vpre.shape[1:]
        a_prev = torch.cat([a0.unsqueeze(0), asave[:-1]])
        sgr = _surrogate_grad(surrogate, vpre, te + ad * a_prev)
        del a_prev
        gx = torch.empty_like(vpre)
        gv0, ga0, gr, gth, gd = (_empty_step(vpre, step) for _ in range(5))
        gb = _empty_step(vpre, step) if need[3] else None
        launcher.alif_bwd(RESET_CODES[reset], bool(detach_reset), _grad_or_zeros(gz, vpre), vpre, sgr, asave, v0, a0,
                          be, rh, te, ad, _contig(gvT), _contig(gaT), gx, gv0, ga0, gb, gr, gth, gd)
        params = [reduce_grad(g if need[k] else None, shape)
                  for k, g, shape in zip((3, 4, 5, 6), (gb, gr, gth, gd), shapes, strict=True)]
        return (gx, gv0 if need[1] else None, ga0 if need[2] else None, *params, None, None, None, None)


class _LIScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, beta, launcher):  # type: ignore[override]
        step = x.shape[1:]
        x, v0 = x.contiguous(), v0.contiguous()
        be = expand_param(beta, step)
        y = torch.empty_like(x)
        launcher.li_fwd(x, v0, be, y)
        need_b = ctx.needs_input_grad[2]
        ctx.save_for_backward(be, y if need_b else None, v0 if need_b else None)
        ctx.cfg = (launcher, beta.shape, x.shape)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):  # type: ignore[override]
        be, y, v0 = ctx.saved_tensors
        launcher, beta_shape, x_shape = ctx.cfg
        need = ctx.needs_input_grad
        gy = _grad_or_zeros(gy, torch.empty(x_shape, dtype=be.dtype, device=be.device))
        gx, gv0 = torch.empty_like(gy), _empty_step(be, be.shape)
        gb = _empty_step(be, be.shape) if need[2] else None
        launcher.li_bwd(gy, y, v0, be, gx, gv0, gb)
        return gx, gv0 if need[1] else None, reduce_grad(gb, beta_shape), None


def make_ops(launcher: object, what: str) -> SimpleNamespace:
    """``lif_scan``, ``cuba_lif_scan`` and ``li_scan`` running on ``launcher`` (``what`` names it in docstrings)."""

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
        check_sequence(x)
        check_neuron_args(beta, v_th, reset)
        v0 = initial(None if state is None else state.v, x.shape[1:], x, "v")
        b, th = as_param(beta, x, "beta"), as_param(v_th, x, "v_th")
        z, v = _LIFScan.apply(x, v0, b, th, reset, bool(detach_reset), surrogate, launcher)
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
        check_sequence(x)
        check_unit_interval(alpha, "alpha")
        check_neuron_args(beta, v_th, reset)
        i0 = initial(None if state is None else state.i, x.shape[1:], x, "i")
        v0 = initial(None if state is None else state.v, x.shape[1:], x, "v")
        a, b, th = as_param(alpha, x, "alpha"), as_param(beta, x, "beta"), as_param(v_th, x, "v_th")
        z, i, v = _CubaScan.apply(x, i0, v0, a, b, th, reset, bool(detach_reset), surrogate, launcher)
        check_finite_result(v, "the final CuBa-LIF membrane")
        return z, CubaLIFState(i, v)

    def li_scan(x: torch.Tensor, state: LIState | None = None, *, beta: ParamLike) -> tuple[torch.Tensor, LIState]:
        check_sequence(x)
        check_unit_interval(beta, "beta")
        v0 = initial(None if state is None else state.v, x.shape[1:], x, "v")
        y = _LIScan.apply(x, v0, as_param(beta, x, "beta"), launcher)
        check_finite_result(y[-1], "the final LI membrane")
        return y, LIState(y[-1])

    def alif_scan(
        x: torch.Tensor,
        state: ALIFState | None = None,
        *,
        beta: ParamLike,
        rho: ParamLike,
        v_th: ParamLike = 1.0,
        adapt: ParamLike = 1.8,
        reset: ResetMode = "subtract",
        detach_reset: bool = False,
        surrogate: sg.Surrogate = sg.DEFAULT,
    ) -> tuple[torch.Tensor, ALIFState]:
        check_sequence(x)
        check_alif_args(beta, rho, v_th, adapt, reset)
        v0 = initial(None if state is None else state.v, x.shape[1:], x, "v")
        a0 = initial(None if state is None else state.a, x.shape[1:], x, "a")
        p = [as_param(q, x) for q in (beta, rho, v_th, adapt)]
        z, v, a = _ALIFScan.apply(x, v0, a0, *p, reset, bool(detach_reset), surrogate, launcher)
        check_finite_result(v, "the final ALIF membrane")
        return z, ALIFState(v, a)

    lif_scan.__doc__ = f":func:`spikeseq.functional.lif_scan` as one fused {what} loop (same checks and results)."
    alif_scan.__doc__ = f":func:`spikeseq.functional.alif_scan` as one fused {what} loop."
    cuba_lif_scan.__doc__ = f":func:`spikeseq.functional.cuba_lif_scan` as one fused {what} loop."
    li_scan.__doc__ = f":func:`spikeseq.functional.li_scan` as one fused {what} loop."
    ops = SimpleNamespace(lif_scan=lif_scan, cuba_lif_scan=cuba_lif_scan, li_scan=li_scan)
    if hasattr(launcher, "alif_fwd"):
        ops.alif_scan = alif_scan
    return ops
