"""Backend ``"chunked_compiled"`` of ``wkv``: :func:`spikeseq.functional.wkv_chunked` with its per-chunk forward and
backward bodies (:func:`~spikeseq.functional.wkv.chunk_forward`, :func:`~spikeseq.functional.wkv.chunk_backward`)
handed to ``torch.compile`` (inductor; on the CPU it generates and builds C++ with the system compiler), so that the
elementwise work of a chunk runs as a few fused loops instead of one torch call per operation.

Nothing compiles at import: a body compiles on its first call (seconds to minutes; once per shape, dtype and
chunk length, ``dynamic=False``) and inductor caches the result on disk. Where ``torch.compile`` is unavailable or
fails (no C++ compiler, an unsupported platform, a compile error), the bodies fall back to the eager ones with one
warning; :func:`status` says which ran. Same results as ``wkv_chunked`` to rounding (tested in float64 against the
reference, gradients included).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from spikeseq.functional.wkv import EAGER_BODIES, WKVState, chunked_wkv

__all__ = ["EAGER_BODIES", "chunked_wkv", "status", "supports", "wkv"]

_state: dict[str, Any] = {"bodies": None, "failed": None, "ran": False}
_OPTIONS: dict[str, Any] = {}


def _compile(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=False, fullgraph=True, options=_OPTIONS)


class _Fallback:
    """Call the compiled body; on the first failure warn once, remember why and use the eager body from then on."""

    def __init__(self, compiled: Callable, eager: Callable) -> None:
        self.compiled, self.eager = compiled, eager

    def __call__(self, *args: Any) -> Any:
        if _state["failed"] is None:
            try:
                out = self.compiled(*args)
                _state["ran"] = True
                return out
            except Exception as e:  # any compile failure means: run eager
                _state["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                warnings.warn(f"torch.compile of the WKV chunk bodies failed ({_state['failed']}); running them "
                              "eagerly", RuntimeWarning, stacklevel=2)
        return self.eager(*args)


def _bodies() -> tuple[Callable, Callable]:
    if _state["bodies"] is None:
        try:
            compiled = [_compile(fn) for fn in EAGER_BODIES]
        except Exception as e:  # torch.compile itself unavailable
            _state["failed"] = f"{type(e).__name__}: {e}"
            compiled = list(EAGER_BODIES)
        _state["bodies"] = tuple(_Fallback(c, e) for c, e in zip(compiled, EAGER_BODIES, strict=True))
    return _state["bodies"]


def status() -> str:
    """``"compiled"`` (a compiled body has run), ``"not compiled yet"`` (no full chunk has run: shorter last
    chunks always run eagerly) or ``"eager fallback: <why>"``."""
    if _state["failed"] is not None:
        return f"eager fallback: {_state['failed']}"
    return "compiled" if _state["ran"] else "not compiled yet"


def wkv(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor, u: torch.Tensor,
        chunk: int = 32) -> tuple[torch.Tensor, WKVState]:
    """:func:`spikeseq.functional.wkv_chunked` with compiled chunk bodies (same signature and results)."""
    return chunked_wkv(k, v, state, w=w, u=u, chunk=chunk, bodies=_bodies())


def supports(k, v=None, state=None, **_: object) -> str | None:
    """CPU tensors only (on a GPU inductor would generate Triton: not tested here)."""
    if isinstance(k, torch.Tensor) and k.device.type != "cpu":
        return f"the compiled chunked WKV runs CPU tensors, got {k.device}"
    return None
