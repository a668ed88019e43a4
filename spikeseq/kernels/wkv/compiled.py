"""Backend ``"chunked_compiled"`` of ``wkv``: the chunked form (:func:`spikeseq.functional.wkv_chunked`'s maths) in
the phases of :mod:`.phases`, each compiled by ``torch.compile`` (inductor; on the CPU it generates C++ and builds
it with the system compiler).

Each phase is written step by step over a chunk on ``[chunks, B C]`` tensors, so that inductor fuses it into one
loop over ``(chunk, B C)`` that keeps the chunk's steps in registers; a sequence is six compiled calls (the two
scans over the chunks: one per :data:`~.phases.CARRY_BLOCK` chunks). A shorter last chunk runs the eager chunked
form after them, from their final state. The checks and the reference-loop fallback for too-wide keys are the
eager form's code (:func:`spikeseq.functional.wkv.chunked_wkv`).

Nothing compiles at import: a phase compiles on its first call (tens of seconds; again per shape, dtype and chunk
length, ``dynamic=False``) and inductor caches the result on disk. Where ``torch.compile`` is unavailable or fails
(no C++ compiler, an unsupported platform, a compile error), the same phase functions run eagerly instead, with
one warning; :func:`status` says which ran. Past dynamo's recompile limit (8 shapes per phase) dynamo itself runs
the phases uncompiled: correct, slower.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from spikeseq.functional.wkv import WKVState, chunked_wkv, eager_chunked
from spikeseq.kernels.wkv.phases import PhasedWKV, Phases

__all__ = ["chunked_wkv", "status", "supports", "wkv"]

_state: dict[str, Any] = {"phases": None, "failed": None, "ran": False}
#: The chunk length of this form by default. Measured (fwd+bwd timed as ``spikeseq bench wkv`` times it) at T 1024,
#: B 8, C 512, float32, one thread (Xeon, AVX-512): 33 ms at 4, 27-31 ms at 8, 41 ms at 16. A phase's loop reads
#: each of its ``[T, B, C]`` tensors at ``L`` rows 16 KB apart, and past 8 those streams cost more than the work they
#: carry.
DEFAULT_CHUNK = 8
#: Inductor's cap on the nodes of one fused loop (default 64) raised so that a phase's steps fuse into one loop.
_OPTIONS: dict[str, Any] = {"max_fusion_size": 4096}


def _compile(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=False, fullgraph=True, options=_OPTIONS)


class _Fallback:
    """Call the compiled phase; on the first failure warn once, remember why and run the plain function from
    then on (every phase: the plain functions are the same maths, run eagerly)."""

    def __init__(self, compiled: Callable, plain: Callable) -> None:
        self.compiled, self.plain = compiled, plain

    def __call__(self, *args: Any) -> Any:
        if _state["failed"] is None:
            try:
                out = self.compiled(*args)
                _state["ran"] = True
                return out
            except Exception as e:  # any compile failure means: run eagerly
                _state["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                warnings.warn(f"torch.compile of the WKV phases failed ({_state['failed']}); running them "
                              "eagerly", RuntimeWarning, stacklevel=2)
        return self.plain(*args)


def _phases() -> Phases:
    if _state["phases"] is None:
        plain = Phases()
        try:
            compiled = [_compile(fn) for fn in plain]
        except Exception as e:  # torch.compile itself unavailable
            _state["failed"] = f"{type(e).__name__}: {e}"
            compiled = list(plain)
        _state["phases"] = Phases(*(_Fallback(c, f) for c, f in zip(compiled, plain, strict=True)))
    return _state["phases"]


def _core(k, v, a, b, p, w, u, L):
    """:func:`spikeseq.functional.wkv.eager_chunked`'s arguments and results: the whole chunks through the compiled
    phases, a shorter last chunk (or a sequence shorter than one chunk) through the eager chunked form."""
    T = k.shape[0]
    main = T - T % L
    if main == 0:
        return eager_chunked(k, v, a, b, p, w, u, L)
    if main == T:  # (not sliced: the gradient of a slice would be copied into a zero-filled tensor)
        return PhasedWKV.apply(k, v, w, u, a, b, p, L, _phases())
    y, a, b, p, spread = PhasedWKV.apply(k[:main], v[:main], w, u, a, b, p, L, _phases())
    y_end, a, b, p, spread_end = eager_chunked(k[main:], v[main:], a, b, p, w, u, L)
    return torch.cat((y, y_end)), a, b, p, torch.maximum(spread, spread_end)


def status() -> str:
    """``"compiled"`` (a compiled phase has run), ``"not compiled yet"`` (no whole chunk has run: a sequence
    shorter than a chunk runs eagerly) or ``"eager fallback: <why>"``."""
    if _state["failed"] is not None:
        return f"eager fallback: {_state['failed']}"
    return "compiled" if _state["ran"] else "not compiled yet"


def wkv(k: torch.Tensor, v: torch.Tensor, state: WKVState | None = None, *, w: torch.Tensor, u: torch.Tensor,
        chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, WKVState]:
    """:func:`spikeseq.functional.wkv_chunked` through the compiled phases (same signature and results)."""
    return chunked_wkv(k, v, state, w=w, u=u, chunk=chunk, core=_core)


def supports(k, v=None, state=None, **_: object) -> str | None:
    """CPU tensors only (on a GPU inductor would generate Triton: not tested here)."""
    if isinstance(k, torch.Tensor) and k.device.type != "cpu":
        return f"the compiled chunked WKV runs CPU tensors, got {k.device}"
    return None
