"""Shared fixtures.

``data_root``: the real-data root from ``SPIKESEQ_DATA``. Tests that need real data skip when it is absent,
except when ``SPIKESEQ_REQUIRE_DATA=1`` (set by ``.ci/run``), where they fail.

``@pytest.mark.native``: the test needs the C++ kernels (:mod:`spikeseq.kernels._native`). When they cannot be built
it skips, except when ``SPIKESEQ_REQUIRE_NATIVE=1`` (set by ``.ci/run``), where it fails with the build's reason.
:func:`expected_backends` is the list a test looping over kernel backends uses: never empty, and under
``SPIKESEQ_REQUIRE_NATIVE=1`` it must hold the C++ backend ``"cpu"``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def _require_data() -> bool:
    return os.environ.get("SPIKESEQ_REQUIRE_DATA", "") == "1"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = os.environ.get("SPIKESEQ_DATA")
    if not root or not Path(root).is_dir():
        msg = f"real data not found: SPIKESEQ_DATA={root!r} is not a directory"
        if _require_data():
            pytest.fail(msg + " (SPIKESEQ_REQUIRE_DATA=1)")
        pytest.skip(msg)
    return Path(root)


def require_native() -> bool:
    """Whether the C++ kernels must be available (CI: ``SPIKESEQ_REQUIRE_NATIVE=1``)."""
    return os.environ.get("SPIKESEQ_REQUIRE_NATIVE", "") == "1"


def native_problem() -> str | None:
    """Why the C++ kernels cannot run here (``None`` when they can); builds them on first call."""
    from spikeseq.kernels import _native

    if _native.library() is not None:
        return None
    return f"C++ kernels unavailable: {_native.unavailable_reason() or 'unknown reason'}"


def need_native() -> None:
    """Skip the running test when the C++ kernels cannot be built; fail it under ``SPIKESEQ_REQUIRE_NATIVE=1``."""
    why = native_problem()
    if why is not None:
        if require_native():
            pytest.fail(why + " (SPIKESEQ_REQUIRE_NATIVE=1: a failed C++ build fails the run)", pytrace=False)
        pytest.skip(why)


def pytest_runtest_setup(item):
    if item.get_closest_marker("native") is not None:
        need_native()


def expected_backends(op: str, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The available backends of kernel ``op`` (minus ``exclude``) for a test that loops over them. Asserts the
    list is not empty and, under ``SPIKESEQ_REQUIRE_NATIVE=1``, that it holds the C++ backend ``"cpu"``."""
    from spikeseq.kernels import dispatch

    names = [b for b, be in dispatch.backends(op).items() if b not in exclude and be.available()[0]]
    assert names, f"no available backend for {op} (excluding {exclude}): the loop would test nothing"
    if require_native():
        assert "cpu" in names, (f"{op}: the C++ backend 'cpu' is not available ({native_problem()}); "
                                "SPIKESEQ_REQUIRE_NATIVE=1 expects it")
    return names


def require_path(path: Path) -> Path:
    """Fail (with SPIKESEQ_REQUIRE_DATA=1) or skip when a real-data path is missing."""
    if not path.exists():
        msg = f"real data file missing: {path}"
        if _require_data():
            pytest.fail(msg + " (SPIKESEQ_REQUIRE_DATA=1)")
        pytest.skip(msg)
    return path


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def wkv_triton_interpreter(monkeypatch):
    """The WKV Triton backend module (``spikeseq.kernels.wkv.gpu``) run by Triton's CPU interpreter
    (``TRITON_INTERPRET=1``, kernels reloaded before and after); skips without triton."""
    import importlib
    import sys

    pytest.importorskip("triton", reason="triton not installed (pip install 'spikeseq[gpu]')")
    from spikeseq.kernels.wkv import gpu

    mod = "spikeseq.kernels.wkv._triton_kernels"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    if mod in sys.modules:
        importlib.reload(sys.modules[mod])
    gpu._fn = None
    yield gpu
    monkeypatch.undo()
    if mod in sys.modules:
        importlib.reload(sys.modules[mod])
    gpu._fn = None
