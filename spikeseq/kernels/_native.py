"""Lazy build of the C++ kernels (``lif/scan.cpp``: fused LIF-family scans; ``spmm.cpp``: event-driven spike
products; ``egru/egru.cpp``: the activity-sparse EGRU; ``egru/egru_fixed.cpp``: the fixed-point EGRU cell step of
target mode; ``wkv/wkv.cpp``: the RWKV-4 WKV loops; ``wkv/block_step.cpp``: one token through an RWKV-4 block) into
one shared library loaded with :mod:`ctypes`.

Nothing happens at import. The first call of :func:`library` compiles the sources with the system C++ compiler
(``$CXX`` or ``c++``/``g++``/``clang++``; a few seconds: they use no torch headers) into a per-user cache,

    ``$SPIKESEQ_CACHE`` or ``$XDG_CACHE_HOME/spikeseq`` or ``~/.cache/spikeseq``, then ``kernels/scan-<hash>.so``,

keyed by a hash of the sources, the flags, the compiler, the platform and the CPU, written to a temporary name and
renamed (several processes may build at once). The build targets the CPU it runs on (``-march=native``: AVX-512 where
there is one; ``-ffp-contract=off`` keeps every result rounded as torch's separate operations) and is retried
without ``-march=native`` where the compiler refuses it. When no compiler is found or the build fails,
:func:`library` returns ``None`` and :func:`unavailable_reason` says why; the dispatcher then falls back to the
torch reference (and ``spike_linear`` to dense matmuls).
``SPIKESEQ_NO_CPP=1`` disables the library (to compare with the reference, or where loading native code is unwanted).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

_HERE = Path(__file__).parent
SOURCES = (_HERE / "lif" / "scan.cpp", _HERE / "spmm.cpp", _HERE / "egru" / "egru.cpp",
           _HERE / "egru" / "egru_fixed.cpp", _HERE / "wkv" / "wkv.cpp", _HERE / "wkv" / "block_step.cpp")
HEADERS = (_HERE / "parallel.h", _HERE / "simd.h", _HERE / "egru" / "gates.h", _HERE / "egru" / "csr.h")
#: -ffp-contract=off: no fused multiply-add, so results round exactly like torch's separate ops.
FLAGS = [
    "-O2", "-ftree-vectorize", "-fvect-cost-model=dynamic", "-std=c++17", "-shared", "-fPIC", "-pthread",
    "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math",
]
#: Tried first; dropped when the compiler rejects it. ``$SPIKESEQ_TARGET_FLAGS`` replaces them (for a cache shared
#: by different machines: e.g. ``-march=x86-64-v3``, or an empty string for the compiler's portable default).
DEFAULT_TARGET_FLAGS = ["-march=native"]
ABI_VERSION = 11

_lock = threading.Lock()
_state: dict[str, object] = {}


def target_flags() -> list[str]:
    env = os.environ.get("SPIKESEQ_TARGET_FLAGS")
    return DEFAULT_TARGET_FLAGS if env is None else env.split()


def cache_dir() -> Path:
    root = os.environ.get("SPIKESEQ_CACHE")
    if root:
        return Path(root) / "kernels"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "spikeseq" / "kernels"


def find_compiler() -> str | None:
    for cand in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def _cpu_identity() -> bytes:
    """What ``-march=native`` depends on: the CPU model and feature flags (Linux), else the processor name."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        wanted = [ln for ln in lines if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "\n".join(sorted(set(wanted))).encode()
    except OSError:
        return (platform.processor() or platform.machine()).encode()


def _build(cxx: str) -> Path:
    text = b"".join(p.read_bytes() for p in (*SOURCES, *HEADERS))
    arch = target_flags()
    key = hashlib.sha256(
        text + " ".join(FLAGS + arch).encode() + cxx.encode() + platform.platform().encode()
        + sys.version.encode() + _cpu_identity()
    ).hexdigest()[:16]
    out_dir = cache_dir()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        out_dir = Path(tempfile.gettempdir()) / f"spikeseq-{os.getuid() if hasattr(os, 'getuid') else 'u'}"
        out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"scan-{key}.so"
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(prefix=".scan-", suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        sources = [str(p) for p in SOURCES]
        proc = subprocess.run(
            [cxx, *FLAGS, *arch, *sources, "-o", tmp], capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0 and arch:  # a compiler or target without -march=native
            proc = subprocess.run([cxx, *FLAGS, *sources, "-o", tmp], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{cxx} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _load() -> ctypes.CDLL | None:
    if os.environ.get("SPIKESEQ_NO_CPP", "") == "1":
        _state["reason"] = "disabled by SPIKESEQ_NO_CPP=1"
        return None
    cxx = find_compiler()
    if cxx is None:
        _state["reason"] = "no C++ compiler found (set $CXX or install g++/clang++)"
        return None
    try:
        lib = ctypes.CDLL(str(_build(cxx)))
        if lib.spikeseq_abi_version() != ABI_VERSION:
            raise RuntimeError("stale library (ABI version mismatch)")
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        _state["reason"] = f"building the C++ kernels failed: {err}"
        return None
    _declare(lib)
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    i, i64, p, d = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p, ctypes.c_double
    for suf in ("f32", "f64"):
        getattr(lib, f"lif_fwd_{suf}").argtypes = [i, i64, i64, p, p, p, p, p, p, p, i]
        getattr(lib, f"lif_bwd_{suf}").argtypes = [i, i, i64, i64] + [p] * 11 + [i]
        getattr(lib, f"cuba_fwd_{suf}").argtypes = [i, i64, i64] + [p] * 11 + [i]
        getattr(lib, f"cuba_bwd_{suf}").argtypes = [i, i, i64, i64] + [p] * 17 + [i]
        getattr(lib, f"li_fwd_{suf}").argtypes = [i64, i64, p, p, p, p, i]
        getattr(lib, f"li_bwd_{suf}").argtypes = [i64, i64] + [p] * 7 + [i]
        getattr(lib, f"alif_fwd_{suf}").argtypes = [i, i64, i64] + [p] * 12 + [i]
        getattr(lib, f"alif_bwd_{suf}").argtypes = [i, i, i64, i64] + [p] * 19 + [i]
        getattr(lib, f"spike_rows_compress_{suf}").argtypes = [p, i64, i64, p, p]
        getattr(lib, f"spike_rows_compress_{suf}").restype = i64
        getattr(lib, f"spike_gather_{suf}").argtypes = [i64, i64, p, p, p, p, p, i]
        getattr(lib, f"spike_weight_grad_{suf}").argtypes = [i64, i64, i64, p, p, p, p, i64, i]
        getattr(lib, f"egru_fwd_{suf}").argtypes = [i64, i64, i64] + [p] * 21 + [i]
        getattr(lib, f"egru_fwd_infer_{suf}").argtypes = [i64, i64, i64, i64] + [p] * 20 + [i]
        getattr(lib, f"egru_bwd_{suf}").argtypes = [i64, i64, i64] + [p] * 20 + [d, d, d] + [p] * 7 + [i]
        getattr(lib, f"egru_gather_mm_{suf}").argtypes = [i64, i64, i64] + [p] * 4 + [i]
        getattr(lib, f"egru_gather_outer_{suf}").argtypes = [i64, i64, i64] + [p] * 3 + [i]
        getattr(lib, f"egru_csr_mm_{suf}").argtypes = [i64, i64, i64] + [p] * 6 + [i]
        getattr(lib, f"egru_csr_fill_{suf}").argtypes = [i64, i64, p, i64, i64, p, p, p]
        getattr(lib, f"egru_csr_count_{suf}").argtypes = [i64, i64, p, i64, p]
        getattr(lib, f"egru_csr_count_{suf}").restype = i64
        getattr(lib, f"egru_csr_fill_rows_{suf}").argtypes = [i64, i64, p, i64, p, p, p]
        getattr(lib, f"egru_csr_transpose_{suf}").argtypes = [i64, i64] + [p] * 6
        getattr(lib, f"egru_gather_csr_mm_{suf}").argtypes = [i64, i64, i64] + [p] * 6 + [i]
        getattr(lib, f"wkv_fwd_{suf}").argtypes = [i64, i64] + [p] * 14 + [i]
        getattr(lib, f"wkv_bwd_{suf}").argtypes = [i64, i64] + [p] * 22 + [i]
        getattr(lib, f"rwkv_block_step_{suf}").argtypes = [i64, i64, i64, p, p, i, p, p, p]
    lib.egru_fixed_fwd.argtypes = [i64, i64] + [p] * 8 + [i] + [p] * 8
    lib.egru_fixed_bwd.argtypes = [i64, i64, p, p, ctypes.c_float] + [p] * 12
    lib.spike_rows_transpose.argtypes = [i64, i64, p, p, p, p]
    lib.spike_vector_bytes.argtypes = []


def library() -> ctypes.CDLL | None:
    """The loaded library, building it on first call; ``None`` if it cannot be built here."""
    if "lib" not in _state:
        with _lock:
            if "lib" not in _state:
                _state["lib"] = _load()
    return _state["lib"]  # type: ignore[return-value]


def unavailable_reason() -> str:
    return str(_state.get("reason", ""))
