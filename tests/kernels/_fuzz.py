"""What the seeded differential (fuzz) tests of the C++ kernels share: tolerances and the comparison that names the
first difference."""

from __future__ import annotations

import torch

#: absolute tolerance per dtype (scaled by the reference's magnitude where asked)
ATOL = {torch.float64: 1e-10, torch.float32: 5e-5}


def scale(a: torch.Tensor) -> float:
    """``max(1, max |a|)``: tolerances of values that grow with the data (gradients) are relative to it."""
    return max(1.0, float(a.detach().abs().max())) if a.numel() else 1.0


def first_difference(name: str, a: torch.Tensor | None, b: torch.Tensor | None, tol: float, *, scaled: bool = True,
                     equal_nan: bool = False) -> str | None:
    """``None`` when ``b`` equals the reference ``a`` within ``tol`` (times :func:`scale` of ``a`` when ``scaled``),
    else what differs: a missing tensor, the shape / dtype, or the largest difference."""
    if (a is None) != (b is None):
        return f"{name}: one gradient is None"
    if a is None:
        return None
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{name}: {tuple(b.shape)}/{b.dtype} != {tuple(a.shape)}/{a.dtype}"
    t = tol * scale(a) if scaled else tol
    if not torch.allclose(b, a, atol=t, rtol=0.0, equal_nan=equal_nan):
        return f"{name}: max |diff| {float((b - a).abs().max()):.3g} > {t:.3g}"
    return None
