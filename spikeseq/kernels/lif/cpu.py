"""CPU backend ``"cpu"`` of ``lif_scan``, ``cuba_lif_scan``, ``alif_scan`` and ``li_scan``: fused C++ time loops
(``scan.cpp``).

The loops run over time outside and over neurons inside (vectorised); large scans split the neurons over
``torch.get_num_threads()`` threads. What is saved for backward and how the surrogate enters: :mod:`._autograd`.
The library builds on first use (:mod:`spikeseq.kernels._native`); where it cannot, ``available()`` says why and
``backend="auto"`` falls back to the reference.
"""

from __future__ import annotations

import torch

from spikeseq.kernels import _native
from spikeseq.kernels.lif._autograd import make_ops
from spikeseq.kernels.lif._common import call_problem

_DTYPES = (torch.float32, torch.float64)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
#: T x N elements per extra thread. Measured on the 2-core dev machine (interleaved, 30 reps): the scans are memory
#: bound and one thread was as fast as two at [100, 8192] (0.40 vs 0.45 ms forward) and at [500, 8192] (4.8 vs
#: 5.0 ms), so threads start only for very large scans (machines with more memory bandwidth per core may gain).
_ELEMENTS_PER_THREAD = 8_000_000


def available() -> tuple[bool, str]:
    """``(True, "")`` when the C++ scan library is built and loaded, else ``(False, reason)``."""
    lib = _native.library()
    return (lib is not None), _native.unavailable_reason()


def _p(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _fn(name: str, dtype: torch.dtype):
    lib = _native.library()
    if lib is None:  # pragma: no cover - dispatch checks available() first
        raise RuntimeError(_native.unavailable_reason())
    return getattr(lib, f"{name}_{_SUFFIX[dtype]}")


def _threads(numel: int) -> int:
    return max(1, min(torch.get_num_threads(), numel // _ELEMENTS_PER_THREAD))


class _Launcher:
    """The C ABI of ``scan.cpp`` on tensors: ``[T, N]`` sequences and ``[N]`` per-element arrays, contiguous."""

    @staticmethod
    def lif_fwd(reset, x, v0, be, te, z, vpre, v):
        _fn("lif_fwd", x.dtype)(reset, x.shape[0], v.numel(), _p(x), _p(v0), _p(be), _p(te), _p(z), _p(vpre), _p(v),
                                _threads(x.numel()))

    @staticmethod
    def lif_bwd(reset, detach, gz, vpre, sg, v0, be, te, gvT, gx, gv, gb, gt):
        _fn("lif_bwd", vpre.dtype)(reset, int(detach), vpre.shape[0], gv.numel(), _p(gz), _p(vpre), _p(sg), _p(v0),
                                   _p(be), _p(te), _p(gvT), _p(gx), _p(gv), _p(gb), _p(gt), _threads(vpre.numel()))

    @staticmethod
    def cuba_fwd(reset, x, i0, v0, ae, be, te, z, vpre, isave, i, v):
        _fn("cuba_fwd", x.dtype)(reset, x.shape[0], v.numel(), _p(x), _p(i0), _p(v0), _p(ae), _p(be), _p(te), _p(z),
                                 _p(vpre), _p(isave), _p(i), _p(v), _threads(x.numel()))

    @staticmethod
    def cuba_bwd(reset, detach, gz, vpre, sg, isave, i0, v0, ae, be, te, giT, gvT, gx, gi, gv, ga, gb, gt):
        _fn("cuba_bwd", vpre.dtype)(reset, int(detach), vpre.shape[0], gv.numel(), _p(gz), _p(vpre), _p(sg),
                                    _p(isave), _p(i0), _p(v0), _p(ae), _p(be), _p(te), _p(giT), _p(gvT), _p(gx),
                                    _p(gi), _p(gv), _p(ga), _p(gb), _p(gt), _threads(vpre.numel()))

    @staticmethod
    def alif_fwd(reset, x, v0, a0, be, rh, te, ad, z, vpre, asave, v, a):
        _fn("alif_fwd", x.dtype)(reset, x.shape[0], v.numel(), _p(x), _p(v0), _p(a0), _p(be), _p(rh), _p(te), _p(ad),
                                 _p(z), _p(vpre), _p(asave), _p(v), _p(a), _threads(x.numel()))

    @staticmethod
    def alif_bwd(reset, detach, gz, vpre, sg, asave, v0, a0, be, rh, te, ad, gvT, gaT, gx, gv, ga, gb, gr, gt, gd):
        _fn("alif_bwd", vpre.dtype)(reset, int(detach), vpre.shape[0], gv.numel(), _p(gz), _p(vpre), _p(sg),
                                    _p(asave), _p(v0), _p(a0), _p(be), _p(rh), _p(te), _p(ad), _p(gvT), _p(gaT),
                                    _p(gx), _p(gv), _p(ga), _p(gb), _p(gr), _p(gt), _p(gd), _threads(vpre.numel()))

    @staticmethod
    def li_fwd(x, v0, be, y):
        _fn("li_fwd", x.dtype)(x.shape[0], be.numel(), _p(x), _p(v0), _p(be), _p(y), _threads(x.numel()))

    @staticmethod
    def li_bwd(gy, y, v0, be, gx, gv, gb):
        _fn("li_bwd", gy.dtype)(gy.shape[0], be.numel(), _p(gy), _p(y), _p(v0), _p(be), _p(gx), _p(gv), _p(gb),
                                _threads(gy.numel()))


_ops = make_ops(_Launcher, "C++")
lif_scan = _ops.lif_scan
cuba_lif_scan = _ops.cuba_lif_scan
li_scan = _ops.li_scan
alif_scan = _ops.alif_scan


def supports_lif(x, state=None, *, beta=None, v_th=1.0, **_: object) -> str | None:
    """Why the C++ ``lif_scan`` cannot take this call (not CPU, not float32/float64, parameter shape), or ``None``."""
    return call_problem(x, state, {"beta": beta, "v_th": v_th}, ("cpu",), _DTYPES)


def supports_cuba(x, state=None, *, alpha=None, beta=None, v_th=1.0, **_: object) -> str | None:
    """Why the C++ ``cuba_lif_scan`` cannot take this call, or ``None`` (same checks as :func:`supports_lif`)."""
    return call_problem(x, state, {"alpha": alpha, "beta": beta, "v_th": v_th}, ("cpu",), _DTYPES)


def supports_alif(x, state=None, *, beta=None, rho=None, v_th=1.0, adapt=1.8, **_: object) -> str | None:
    """Why the C++ ``alif_scan`` cannot take this call, or ``None`` (same checks as :func:`supports_lif`)."""
    return call_problem(x, state, {"beta": beta, "rho": rho, "v_th": v_th, "adapt": adapt}, ("cpu",), _DTYPES)


def supports_li(x, state=None, *, beta=None, **_: object) -> str | None:
    """Why the C++ ``li_scan`` cannot take this call, or ``None`` (same checks as :func:`supports_lif`)."""
    return call_problem(x, state, {"beta": beta}, ("cpu",), _DTYPES)
