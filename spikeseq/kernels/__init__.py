"""Fast paths with the same signatures as :mod:`spikeseq.functional`, chosen by :mod:`.dispatch`.

``lif_scan(x, state, *, beta, ..., backend="auto")`` etc. Backends: ``"torch"`` (the reference) and whatever
fast backends are registered (see :func:`spikeseq.kernels.dispatch.backends`). Also ``spike_linear`` (a Linear on
spikes, event-driven on the CPU: :mod:`spikeseq.kernels.spike_linear`, :mod:`spikeseq.kernels.spmm`). The C++
code of both is one library built on first use (:mod:`spikeseq.kernels._native`).
"""

from __future__ import annotations

from typing import Any

from spikeseq import functional as F
from spikeseq.kernels import dispatch

for _op, _fn in {
    "lif_scan": F.lif_scan,
    "cuba_lif_scan": F.cuba_lif_scan,
    "li_scan": F.li_scan,
    "alif_scan": F.alif_scan,
    "egru_scan": F.egru_scan,
    "wkv": F.wkv_scan,
}.items():
    dispatch.register(_op, "torch", _fn, priority=-1)

# Fast backends register themselves here (import must stay cheap: nothing compiles at import).
from spikeseq.kernels import egru as _egru_backends  # noqa: E402,F401
from spikeseq.kernels import lif as _lif_backends  # noqa: E402,F401
from spikeseq.kernels import wkv as _wkv_backends  # noqa: E402,F401
from spikeseq.kernels.spike_linear import spike_linear  # noqa: E402


def lif_scan(x, state=None, *, backend: str = "auto", **params: Any):
    """Dispatching :func:`spikeseq.functional.lif_scan`."""
    return dispatch.call("lif_scan", x, state, backend=backend, **params)


def cuba_lif_scan(x, state=None, *, backend: str = "auto", **params: Any):
    """Dispatching :func:`spikeseq.functional.cuba_lif_scan`."""
    return dispatch.call("cuba_lif_scan", x, state, backend=backend, **params)


def li_scan(x, state=None, *, backend: str = "auto", **params: Any):
    """Dispatching :func:`spikeseq.functional.li_scan`."""
    return dispatch.call("li_scan", x, state, backend=backend, **params)


def alif_scan(x, state=None, *, backend: str = "auto", **params: Any):
    """Dispatching :func:`spikeseq.functional.alif_scan`."""
    return dispatch.call("alif_scan", x, state, backend=backend, **params)


def egru_scan(x, state=None, *, backend: str = "auto", **params: Any):
    """Dispatching :func:`spikeseq.functional.egru_scan` (``"cpu"``: activity-sparse C++ loop)."""
    return dispatch.call("egru_scan", x, state, backend=backend, **params)


def wkv(k, v, state=None, *, w, u, backend: str = "auto"):
    """Dispatching :func:`spikeseq.functional.wkv_scan` (backends: :mod:`spikeseq.kernels.wkv`)."""
    return dispatch.call("wkv", k, v, state, backend=backend, w=w, u=u)


__all__ = ["alif_scan", "cuba_lif_scan", "dispatch", "egru_scan", "li_scan", "lif_scan", "spike_linear", "wkv"]
