"""The CPU backend behind dispatch: same errors as the reference, fallback and lazy build."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch

from spikeseq import kernels as K
from spikeseq.errors import BackendUnavailableError, DTypeError, NonFiniteError, ParameterError, ShapeError
from spikeseq.functional import CubaLIFState, LIFState
from spikeseq.kernels import _native, dispatch
from spikeseq.kernels.lif import cpu

needs_cpp = pytest.mark.native  # skips without a C++ build; fails under SPIKESEQ_REQUIRE_NATIVE=1

BAD = [
    (lambda: torch.ones(4, 2, 3, dtype=torch.int64), {}, DTypeError),
    (lambda: torch.ones(3), {}, ShapeError),
    (lambda: torch.ones(0, 2, 3), {}, ShapeError),
    (lambda: torch.full((4, 2, 3), float("nan")), {}, NonFiniteError),
    (lambda: torch.ones(4, 2, 3), {"reset": "bounce"}, ParameterError),
    (lambda: torch.ones(4, 2, 3), {"beta": 1.5}, ParameterError),
    (lambda: torch.ones(4, 2, 3), {"v_th": float("inf")}, NonFiniteError),
]


@needs_cpp
@pytest.mark.parametrize("make,kw,err", BAD)
@pytest.mark.parametrize("backend", ["torch", "cpu", "auto"])
def test_bad_input_raises_the_reference_errors(make, kw, err, backend):
    params = {"beta": 0.9, **kw}
    with pytest.raises(err):
        K.lif_scan(make(), backend=backend, **params)
    with pytest.raises(err):
        K.cuba_lif_scan(make(), backend=backend, alpha=0.5, **params)
    with pytest.raises(err):
        K.alif_scan(make(), backend=backend, rho=0.9, **params)


@needs_cpp
@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_state_shape_mismatch_raises(backend):
    x = torch.ones(4, 2, 3)
    with pytest.raises(ShapeError):
        K.lif_scan(x, LIFState(torch.zeros(2, 4)), beta=0.9, backend=backend)
    with pytest.raises(ShapeError):
        K.cuba_lif_scan(x, CubaLIFState(torch.zeros(2, 3), torch.zeros(3)), alpha=0.5, beta=0.9, backend=backend)
    with pytest.raises(ParameterError):
        K.cuba_lif_scan(x, alpha=-0.1, beta=0.9, backend=backend)


def test_unknown_backend_raises():
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        K.lif_scan(torch.ones(2, 1, 1), beta=0.9, backend="fpga")


@needs_cpp
def test_auto_picks_cpu_and_falls_back_for_half_once(monkeypatch):
    monkeypatch.setattr(dispatch, "_WARNED", set())
    x = torch.randn(5, 2, 3)
    assert dispatch.resolve("lif_scan", "auto", x, None, beta=0.9).name == "cpu"
    h = x.to(torch.float16)
    with pytest.warns(UserWarning, match="'cpu' not used .*float16"):
        z, _ = K.lif_scan(h, beta=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        K.lif_scan(h, beta=0.9)  # said once
    assert z.dtype == torch.float16
    with pytest.raises(BackendUnavailableError, match="float16"):
        K.lif_scan(h, beta=0.9, backend="cpu")
    # a parameter that would broadcast over time is not the kernel's business
    with pytest.raises(BackendUnavailableError, match="broadcast"):
        K.lif_scan(x, beta=torch.full((5, 2, 3), 0.9), backend="cpu")


def test_no_compiler_falls_back_and_named_backend_raises(monkeypatch):
    monkeypatch.setattr(dispatch, "_WARNED", set())
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setattr(_native, "find_compiler", lambda: None)
    assert cpu.available() == (False, "no C++ compiler found (set $CXX or install g++/clang++)")
    x = torch.randn(6, 2, 3)
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
        z, s = K.lif_scan(x, beta=0.9)
    ref_z, ref_s = K.lif_scan(x, beta=0.9, backend="torch")
    assert torch.equal(z, ref_z) and torch.equal(s.v, ref_s.v)
    with pytest.raises(BackendUnavailableError, match="no C\\+\\+ compiler"):
        K.lif_scan(x, beta=0.9, backend="cpu")


@needs_cpp
def test_nothing_builds_at_import_and_build_is_cached_atomically(tmp_path):
    env = {**os.environ, "SPIKESEQ_CACHE": str(tmp_path)}
    code = (
        "import spikeseq, spikeseq.nn, spikeseq.kernels, pathlib, sys;"
        "from spikeseq.kernels import _native;"
        "d = pathlib.Path(sys.argv[1]) / 'kernels';"
        "assert not _native._state and (sys.argv[2] == '1' or not d.exists()), 'built at import';"
        "import torch; from spikeseq import kernels as K;"
        "K.lif_scan(torch.ones(3, 1, 2), beta=0.5, backend='cpu');"
        "print(sorted(p.name for p in d.iterdir()))"
    )
    for second in ("0", "1"):  # the second process finds the cached library
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path), second], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        names = eval(out.stdout.strip())
        assert len(names) == 1 and names[0].startswith("scan-") and names[0].endswith(".so")


def test_target_flags_default_and_override(monkeypatch):
    monkeypatch.delenv("SPIKESEQ_TARGET_FLAGS", raising=False)
    assert _native.target_flags() == ["-march=native"]
    monkeypatch.setenv("SPIKESEQ_TARGET_FLAGS", "-march=x86-64-v3 -mtune=generic")
    assert _native.target_flags() == ["-march=x86-64-v3", "-mtune=generic"]
    monkeypatch.setenv("SPIKESEQ_TARGET_FLAGS", "")
    assert _native.target_flags() == []


@needs_cpp
def test_portable_build_gives_the_same_results(tmp_path):
    """The library built without -march flags (SSE2 vectors on x86) runs the scans and the event-driven products
    with the same results as the reference (a separate cache entry, in a fresh process)."""
    env = {**os.environ, "SPIKESEQ_CACHE": str(tmp_path), "SPIKESEQ_TARGET_FLAGS": ""}
    code = (
        "import torch, torch.nn.functional as F; from spikeseq import kernels as K;"
        "torch.manual_seed(0); x = torch.randn(20, 3, 37, dtype=torch.float64);"
        "a = K.lif_scan(x, beta=0.8, backend='cpu')[0]; b = K.lif_scan(x, beta=0.8, backend='torch')[0];"
        "assert torch.equal(a, b);"
        "z = (torch.rand(40, 8, 37) < 0.1).double(); w = torch.randn(77, 37, dtype=torch.float64);"
        "torch.testing.assert_close(K.spike_linear(z, w, mode='sparse'), F.linear(z, w), atol=1e-12, rtol=0);"
        "from spikeseq.kernels import spmm; from spikeseq.kernels.spike_linear import sparse_max_density;"
        "assert spmm.vector_bytes() == 16 and sparse_max_density() == 0.08, spmm.vector_bytes();"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
