"""Triton backend ``"triton"`` of ``lif_scan``, ``cuba_lif_scan``, ``alif_scan`` and ``li_scan``
(kernels: :mod:`._triton_kernels`).

Available when triton is installed and either a CUDA device exists (CUDA tensors) or ``TRITON_INTERPRET=1`` is set
(CPU tensors through Triton's interpreter: slow, for tests only; set it before the first call). Nothing is imported
or compiled until the first call. Same checks, saved tensors and gradients as every fast backend
(:mod:`._autograd`).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from spikeseq.kernels.dispatch import triton_available, triton_devices
from spikeseq.kernels.lif._common import call_problem

#: this backend's ``available()`` (the one :func:`~spikeseq.kernels.dispatch.register_triton` registers)
available = triton_available

_DTYPES = (torch.float32, torch.float64)
_ops: SimpleNamespace | None = None


def ops() -> SimpleNamespace:
    """The Triton-backed scans, built on first use."""
    global _ops
    if _ops is None:
        from spikeseq.kernels.lif._autograd import make_ops
        from spikeseq.kernels.lif._triton_kernels import Launcher

        _ops = make_ops(Launcher, "Triton")
    return _ops


def lif_scan(x, state=None, **params):
    """:func:`spikeseq.functional.lif_scan` as one fused Triton kernel per direction."""
    return ops().lif_scan(x, state, **params)


def cuba_lif_scan(x, state=None, **params):
    """:func:`spikeseq.functional.cuba_lif_scan` as one fused Triton kernel per direction."""
    return ops().cuba_lif_scan(x, state, **params)


def alif_scan(x, state=None, **params):
    """:func:`spikeseq.functional.alif_scan` as one fused Triton kernel per direction."""
    return ops().alif_scan(x, state, **params)


def li_scan(x, state=None, **params):
    """:func:`spikeseq.functional.li_scan` as one fused Triton kernel per direction."""
    return ops().li_scan(x, state, **params)


def supports_lif(x, state=None, *, beta=None, v_th=1.0, **_: object) -> str | None:
    """Why the Triton ``lif_scan`` cannot take this call (device, dtype, parameter shape), or ``None``."""
    return call_problem(x, state, {"beta": beta, "v_th": v_th}, triton_devices(), _DTYPES)


def supports_cuba(x, state=None, *, alpha=None, beta=None, v_th=1.0, **_: object) -> str | None:
    """Why the Triton ``cuba_lif_scan`` cannot take this call, or ``None`` (same checks as :func:`supports_lif`)."""
    return call_problem(x, state, {"alpha": alpha, "beta": beta, "v_th": v_th}, triton_devices(), _DTYPES)


def supports_alif(x, state=None, *, beta=None, rho=None, v_th=1.0, adapt=1.8, **_: object) -> str | None:
    """Why the Triton ``alif_scan`` cannot take this call, or ``None`` (same checks as :func:`supports_lif`)."""
    return call_problem(x, state, {"beta": beta, "rho": rho, "v_th": v_th, "adapt": adapt}, triton_devices(), _DTYPES)


def supports_li(x, state=None, *, beta=None, **_: object) -> str | None:
    """Why the Triton ``li_scan`` cannot take this call, or ``None`` (same checks as :func:`supports_lif`)."""
    return call_problem(x, state, {"beta": beta}, triton_devices(), _DTYPES)
