"""Shared fixtures.

``data_root``: the real-data root from ``SPIKESEQ_DATA``. Tests that need real data skip when it is absent,
except when ``SPIKESEQ_REQUIRE_DATA=1`` (set by ``.ci/run``), where they fail.
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
