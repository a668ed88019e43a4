"""What the fast EGRU backends share: the per-call check of device, autocast and dtype."""

from __future__ import annotations

import torch

from spikeseq.functional.egru import compute_dtype

#: the dtypes the fast EGRU backends run (the reference keeps low-precision gates in float32 instead)
DTYPES = (torch.float32, torch.float64)


def call_problem(x, state, tensors, devices: tuple[str, ...], engine: str) -> str | None:
    """Why a backend running on ``devices`` (``engine`` names it in the message) cannot take an ``egru_scan`` call
    on ``x`` whose ``state`` and weight/threshold ``tensors`` must match its device and dtype, or ``None``.

    ``None`` too for calls the reference refuses by their form: a non-float ``x``, or a ``state`` that is not a
    ``(c, y)`` pair (e.g. a bare tensor, which the loop below would unpack with a raw RuntimeError). The backend
    then takes the call and :func:`~spikeseq.functional.egru.prepare_egru` raises the reference's own error (a
    :class:`~spikeseq.errors.ShapeError` naming ``EGRUState(c, y)``), the same on every backend."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return None
    if state is not None and not (isinstance(state, tuple) and len(state) == 2):
        return None
    if x.device.type not in devices:
        return f"x is on {x.device.type}, this backend runs on {'/'.join(devices)}"
    if torch.is_autocast_enabled(x.device.type):
        return f"autocast is on ({engine} runs float32/float64 only; the reference keeps gates in float32)"
    if x.dtype not in DTYPES or compute_dtype(x.dtype) != x.dtype:
        return f"dtype {x.dtype} not supported (only float32/float64)"
    for w in (*tensors, *(() if state is None else state)):
        if isinstance(w, torch.Tensor) and (w.dtype != x.dtype or w.device != x.device):
            return f"a weight/state is {w.device}/{w.dtype}, x is {x.device}/{x.dtype}"
    return None
