"""CPU backend ``"cpu"`` of ``wkv``: the fused loops of ``wkv.cpp`` (built on first use by
:mod:`spikeseq.kernels._native`), autograd in :mod:`._autograd`."""

from __future__ import annotations

import torch

from spikeseq.kernels import _native
from spikeseq.kernels.wkv._autograd import make_wkv

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
#: Elements (T x N) per extra thread: below this one thread does the whole scan.
_ELEMENTS_PER_THREAD = 1_000_000


def available() -> tuple[bool, str]:
    """Whether the C++ library builds and loads here, and why not."""
    return (_native.library() is not None), _native.unavailable_reason()


def _p(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads(numel: int) -> int:
    return max(1, min(torch.get_num_threads(), numel // _ELEMENTS_PER_THREAD))


class _Launcher:
    """The C ABI of ``wkv.cpp`` on contiguous ``[T, N]`` / ``[N]`` tensors."""

    @staticmethod
    def fwd(k, v, w, u, a0, b0, p0, y, a1, b1, p1, sa, sb, sp):
        fn = getattr(_native.library(), f"wkv_fwd_{_SUFFIX[k.dtype]}")
        fn(k.shape[0], k.shape[1], *(_p(t) for t in (k, v, w, u, a0, b0, p0, y, a1, b1, p1, sa, sb, sp)),
           _threads(k.numel()))

    @staticmethod
    def bwd(gy, k, v, y, sa, sb, sp, w, u, a1, b1, p1, gaT, gbT, gpT, gk, gv, gw, gu, ga0, gb0, gp0):
        fn = getattr(_native.library(), f"wkv_bwd_{_SUFFIX[k.dtype]}")
        fn(k.shape[0], k.shape[1], *(_p(t) for t in (gy, k, v, y, sa, sb, sp, w, u, a1, b1, p1, gaT, gbT, gpT,
                                                       gk, gv, gw, gu, ga0, gb0, gp0)), _threads(k.numel()))


wkv = make_wkv(_Launcher, "C++")


def supports(k, v=None, state=None, **_: object) -> str | None:
    """The C++ loops run CPU tensors (any float dtype; half precision in float32)."""
    if isinstance(k, torch.Tensor) and k.device.type != "cpu":
        return f"the C++ WKV loops run CPU tensors, got {k.device}"
    return None


def step(k: torch.Tensor, v: torch.Tensor, a: torch.Tensor, b: torch.Tensor, p: torch.Tensor, w: torch.Tensor,
         u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """One WKV step (:func:`spikeseq.functional.wkv.wkv_update`'s equations) in the C++ loops, for generation: no
    checks and no autograd. ``k, v`` and the state ``a, b, p`` ``[B, C]``, ``w = e^{time_decay}`` and ``u`` ``[C]``,
    all CPU tensors of one dtype. Returns ``y`` and the new state, or ``None`` where the loops cannot run it (no
    library here, or a dtype they do not take): the caller then runs ``wkv_update``."""
    lib = _native.library()
    suffix = _SUFFIX.get(k.dtype)
    if lib is None or suffix is None or k.device.type != "cpu" or w.dtype != k.dtype or u.dtype != k.dtype:
        return None
    B, C = k.shape
    if B > 1:  # the loops take w and u per element
        w, u = w.expand(B, C).contiguous(), u.expand(B, C).contiguous()
    k, v, a, b, p = k.contiguous(), v.contiguous(), a.contiguous(), b.contiguous(), p.contiguous()
    out = torch.empty((4, B, C), dtype=k.dtype)  # y, a', b', p'
    y, a1, b1, p1 = out.unbind(0)
    getattr(lib, f"wkv_fwd_{suffix}")(1, B * C, k.data_ptr(), v.data_ptr(), w.data_ptr(), u.data_ptr(),
                                      a.data_ptr(), b.data_ptr(), p.data_ptr(), y.data_ptr(), a1.data_ptr(),
                                      b1.data_ptr(), p1.data_ptr(), None, None, None, 1)
    return y, a1, b1, p1
