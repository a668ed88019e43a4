"""Backend registry for the fast kernels.

Each op (``"lif_scan"``, ``"cuba_lif_scan"``, ...) has the pure reference from :mod:`spikeseq.functional`
registered as backend ``"torch"`` and any number of fast backends. A backend declares

- ``available()``: whether it can run in this process at all (package installed, GPU present), with a reason;
- ``supports(*args, **kwargs)``: a per-call check of the inputs (device, dtype, options), ``None`` if fine.

``backend="auto"`` takes the available backend with the highest priority that supports the call, except an
**opt-in** backend (``opt_in`` names an environment variable), which ``"auto"`` takes only when that variable is
``1``: the Triton kernels are opt-in (``SPIKESEQ_TRITON=1`` or ``backend="triton"``) until ``spikeseq bench gpu``
has validated them on a real GPU (they are tested only under ``TRITON_INTERPRET=1``); when none does
it falls back to ``"torch"`` and says so once per reason (a fast backend that runs silences the ones above it
that could not, e.g. Triton on a machine without a GPU). A named backend that cannot run raises
:class:`~spikeseq.errors.BackendUnavailableError`. Nothing is compiled here: backends build lazily on first call.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spikeseq.errors import BackendUnavailableError, ParameterError


@dataclass(frozen=True)
class Backend:
    """One registered implementation of a kernel op.

    ``op`` and ``name`` identify it, ``fn`` runs the op with the reference's signature, ``available()`` returns
    ``(ok, reason)`` for this process, ``supports(*args, **kwargs)`` returns why it cannot take one call (or ``None``),
    and ``backend="auto"`` prefers the highest ``priority``.
    """

    op: str
    name: str
    fn: Callable[..., Any]
    available: Callable[[], tuple[bool, str]]
    supports: Callable[..., str | None]
    priority: int = 0
    opt_in: str = ""     # environment variable that lets "auto" pick this backend ("" = always eligible)


#: the environment variable that lets ``backend="auto"`` pick the (not yet GPU-validated) Triton backends
TRITON_OPT_IN = "SPIKESEQ_TRITON"

_REGISTRY: dict[str, dict[str, Backend]] = {}
_WARNED: set[tuple[str, str]] = set()


def _always() -> tuple[bool, str]:
    return True, ""


def _anything(*args: Any, **kwargs: Any) -> str | None:
    return None


def register(
    op: str,
    name: str,
    fn: Callable[..., Any],
    *,
    available: Callable[[], tuple[bool, str]] = _always,
    supports: Callable[..., str | None] = _anything,
    priority: int = 0,
    opt_in: str = "",
) -> None:
    """Register ``fn`` as backend ``name`` of ``op`` (same call signature as the reference); with ``opt_in`` (an
    environment variable name) ``backend="auto"`` uses it only when that variable is ``1``."""
    _REGISTRY.setdefault(op, {})[name] = Backend(op, name, fn, available, supports, priority, opt_in)


def triton_interpreting() -> bool:
    """Whether Triton runs in interpreter mode (``TRITON_INTERPRET=1``), which lets its kernels take CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def triton_available() -> tuple[bool, str]:
    """``(True, "")`` when triton is installed and a CUDA device (or the interpreter) is present, else why not:
    the ``available()`` of every Triton backend."""
    if importlib.util.find_spec("triton") is None:
        return False, "triton is not installed (pip install 'spikeseq[gpu]')"
    import torch

    if not (torch.cuda.is_available() or triton_interpreting()):
        return False, "no CUDA device (and TRITON_INTERPRET is not 1)"
    return True, ""


def triton_devices() -> tuple[str, ...]:
    """The device types a Triton backend takes: CUDA, plus CPU under the interpreter."""
    return ("cuda", "cpu") if triton_interpreting() else ("cuda",)


def register_triton(op: str, fn: Callable[..., Any], supports: Callable[..., str | None], *, priority: int,
                    opt_in: str = TRITON_OPT_IN) -> None:
    """Register ``fn`` as backend ``"triton"`` of ``op`` with :func:`triton_available`; opt-in for
    ``backend="auto"`` through :data:`TRITON_OPT_IN` unless ``opt_in`` says otherwise (``""``: always eligible)."""
    register(op, "triton", fn, available=triton_available, supports=supports, priority=priority, opt_in=opt_in)


def opted_in(b: Backend) -> bool:
    """Whether ``backend="auto"`` may pick ``b`` (always, unless it is opt-in and its variable is not ``1``)."""
    return not b.opt_in or os.environ.get(b.opt_in, "") == "1"


def backends(op: str) -> dict[str, Backend]:
    """The backends registered for ``op`` by name (a copy); raises ``ParameterError`` for an unknown op."""
    if op not in _REGISTRY:
        raise ParameterError(f"unknown kernel op {op!r}; known: {', '.join(sorted(_REGISTRY))}")
    return dict(_REGISTRY[op])


def resolve(op: str, backend: str, *args: Any, **kwargs: Any) -> Backend:
    """Pick the backend that will run this call (see module docstring)."""
    table = backends(op)
    if backend == "auto":
        skipped: list[str] = []
        for b in sorted(table.values(), key=lambda b: -b.priority):
            if b.name == "torch":
                continue
            ok, why = b.available()
            reason = None if ok else why
            if reason is None:
                reason = b.supports(*args, **kwargs)
            if reason is None and not opted_in(b):
                reason = (f"opt-in until validated on a GPU by `spikeseq bench gpu`: pass backend={b.name!r} or set "
                          f"{b.opt_in}=1")
            if reason is None:
                return b  # a fast backend runs: nothing to say about the ones above it that could not
            skipped.append(f"{b.name!r} not used ({reason})")
        key = (op, "; ".join(skipped))
        if skipped and key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(
                f"spikeseq: {op}: {'; '.join(skipped)}; falling back to the reference 'torch' backend",
                stacklevel=4,
            )
        return table["torch"]
    if backend not in table:
        raise BackendUnavailableError(
            f"unknown backend {backend!r} for {op}; known: auto, {', '.join(sorted(table))}"
        )
    b = table[backend]
    ok, why = b.available()
    if not ok:
        raise BackendUnavailableError(f"backend {backend!r} for {op} is unavailable here: {why}")
    reason = b.supports(*args, **kwargs)
    if reason is not None:
        raise BackendUnavailableError(f"backend {backend!r} cannot run this {op} call: {reason}")
    return b


def call(op: str, *args: Any, backend: str = "auto", **kwargs: Any) -> Any:
    """Run ``op`` on the backend chosen by :func:`resolve`."""
    return resolve(op, backend, *args, **kwargs).fn(*args, **kwargs)
