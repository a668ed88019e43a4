"""The real toolchains as oracles (issue 14): Lava / lava-dl netx run spikeseq's exported files, and a py-spinnaker2
stand-in runs the generated SpiNNaker2 script.

``lava_python``: the Python of the Lava environment, from ``SPIKESEQ_LAVA_PYTHON`` (``make lava-env`` builds it,
``make oracle-test`` sets it). Missing or broken, the tests that need it skip, except under
``SPIKESEQ_REQUIRE_ORACLES=1`` or ``SPIKESEQ_REQUIRE_DATA=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.export.conftest import nmnist_frames, trained_delay_snn, trained_mlp  # noqa: F401  (shared fixtures)

HERE = Path(__file__).resolve().parent


def _required() -> bool:
    return "1" in (os.environ.get("SPIKESEQ_REQUIRE_ORACLES", ""), os.environ.get("SPIKESEQ_REQUIRE_DATA", ""))


@pytest.fixture(scope="session")
def lava_python() -> str:
    py = os.environ.get("SPIKESEQ_LAVA_PYTHON", "")
    problem = None
    if not py:
        problem = "SPIKESEQ_LAVA_PYTHON is not set (build the environment with `make lava-env`)"
    elif not Path(py).is_file():
        problem = f"SPIKESEQ_LAVA_PYTHON={py!r} is not a file (rebuild it with `make lava-env`)"
    else:
        proc = subprocess.run([py, "-c", "import lava.magma, lava.lib.dl.netx"], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            problem = f"{py} cannot import lava.lib.dl.netx: {proc.stderr.strip()[-500:]}"
    if problem:
        if _required():
            pytest.fail(problem + " (SPIKESEQ_REQUIRE_ORACLES=1 / SPIKESEQ_REQUIRE_DATA=1: the oracles must run)",
                        pytrace=False)
        pytest.skip(problem)
    return py


def run_lava(py: str, *args: str, timeout: int = 600) -> str:
    """Run ``py args...`` (Lava's Python), fail with its output when it fails; returns stdout."""
    proc = subprocess.run([py, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed in Lava's Python:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout
