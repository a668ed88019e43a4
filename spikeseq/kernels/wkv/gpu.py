"""Triton backend ``"triton"`` of ``wkv`` (kernels: :mod:`._triton_kernels`; autograd: :mod:`._autograd`).

Available when triton is installed and either a CUDA device exists or ``TRITON_INTERPRET=1`` is set (CPU tensors
through Triton's interpreter: slow, for tests only). Registered with a priority below the ``"chunked"`` form, so
``backend="auto"`` never picks it: it has been tested under the interpreter only, not yet run on a GPU. Name it
(``backend="triton"``) to use it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from spikeseq.kernels.dispatch import triton_available, triton_devices

#: this backend's ``available()`` (the one :func:`~spikeseq.kernels.dispatch.register_triton` registers)
available = triton_available

_DTYPES = (torch.float32, torch.float64)
_fn: Callable | None = None


def wkv(k, v, state=None, *, w, u):
    """:func:`spikeseq.functional.wkv_scan` as Triton kernels (forward and backward)."""
    global _fn
    if _fn is None:
        from spikeseq.kernels.wkv._autograd import make_wkv
        from spikeseq.kernels.wkv._triton_kernels import Launcher

        _fn = make_wkv(Launcher, "Triton")
    return _fn(k, v, state, w=w, u=u)


def supports(k, v=None, state=None, **_: object) -> str | None:
    """``None`` when the kernels can run this call, else the reason (device)."""
    devices = triton_devices()
    if isinstance(k, torch.Tensor) and k.device.type not in devices:
        return f"the Triton WKV kernels run {' or '.join(devices)} tensors, got {k.device}"
    return None
