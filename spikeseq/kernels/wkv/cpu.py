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
