"""CI runs the native code: under ``SPIKESEQ_REQUIRE_NATIVE=1`` (set by ``.ci/run``) a C++ build that fails makes the
tests that need it fail instead of skip (``@pytest.mark.native``, ``tests/conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spikeseq.kernels import _native
from spikeseq.kernels.lif import cpu

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import pytest

@pytest.mark.native
def test_needs_cpp():
    pass
"""


@pytest.mark.native
def test_native_library_builds_and_backs_the_cpu_backend():
    assert _native.library() is not None
    assert cpu.available() == (True, "")


@pytest.mark.parametrize("required,outcome", [("1", "1 error"), ("", "1 skipped")])
def test_a_missing_build_fails_only_when_required(tmp_path, required, outcome):
    """SPIKESEQ_NO_CPP=1 stands for a build that failed: the marked probe errors (fails the run) under
    SPIKESEQ_REQUIRE_NATIVE=1, naming the reason, and skips otherwise."""
    probe = ROOT / "tests" / f"test_probe_native_{os.getpid()}_{required or 0}.py"
    probe.write_text(PROBE)
    try:
        env = dict(os.environ, SPIKESEQ_NO_CPP="1", SPIKESEQ_REQUIRE_NATIVE=required, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", str(probe)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        probe.unlink()
    assert outcome in proc.stdout, proc.stdout + proc.stderr
    assert "C++ kernels unavailable" in proc.stdout
    if required:
        assert proc.returncode == 1 and "SPIKESEQ_REQUIRE_NATIVE=1" in proc.stdout
    else:
        assert proc.returncode == 0
