"""Triton backend ``"triton"`` of ``wkv`` (kernels: :mod:`._triton_kernels`; autograd: :mod:`._autograd`).

Available when triton is installed and either a CUDA device exists or ``TRITON_INTERPRET=1`` is set (CPU tensors
through Triton's interpreter: slow, for tests only). Registered with a priority below the ``"chunked"`` form, so
``backend="auto"`` never picks it: it has been tested under the interpreter only, not yet run on a GPU. Name it
(``backend="triton"``) to use it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import torch

_DTYPES = (torch.float32, torch.float64)
_fn: Callable | None = None


def interpreting() -> bool:
    """Whether Triton's interpreter is on (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def available() -> tuple[bool, str]:
    """Whether triton is installed and a CUDA device (or the interpreter) is there, and why not."""
    if importlib.util.find_spec("triton") is None:
        return False, "triton is not installed (pip install 'spikeseq[gpu]')"
    if not (torch.cuda.is_available() or interpreting()):
        return False, "no CUDA device (and TRITON_INTERPRET is not 1)"
    return True, ""


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
    devices = ("cuda", "cpu") if interpreting() else ("cuda",)
    if isinstance(k, torch.Tensor) and k.device.type not in devices:
        return f"the Triton WKV kernels run {' or '.join(devices)} tensors, got {k.device}"
    return None
