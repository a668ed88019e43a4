"""What the fast EGRU backends share: the per-call check of device, autocast and dtype."""

from __future__ import annotations

import torch

from spikeseq.functional.egru import compute_dtype

#: the dtypes the fast EGRU backends run (the reference keeps low-precision gates in float32 instead)
DTYPES = (torch.float32, torch.float64)


def call_problem(x, state, tensors, devices: tuple[str, ...], engine: str) -> str | None:
    """Why a backend running on ``devices`` (``engine`` names it in the message) cannot take an ``egru_scan`` call
    on ``x`` whose ``state`` and weight/threshold ``tensors`` must match its device and dtype, or ``None``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return None
    if x.device.type not in devices:
        return f"x is on {x.device.type}, this backend runs on {'/'.join(devices)}"
    if torch.is_autocast_enabled(x.device.type):
        return f"autocast is on ({engine} runs float32/float64 only; the reference keeps gates in float32)"
    if x.dtype not in DTYPES or compute_dtype(x.dtype) != x.dtype:
        return f"dtype {x.dtype} not supported (only float32/float64)"
    for w in (*tensors, *(state or ())):
        if isinstance(w, torch.Tensor) and (w.dtype != x.dtype or w.device != x.device):
            return f"a weight/state is {w.device}/{w.dtype}, x is {x.device}/{x.dtype}"
    return None
