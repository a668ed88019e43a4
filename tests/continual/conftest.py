"""Continual-learning tests run single-threaded (tiny matrices: OpenMP threads only add waiting on a shared box)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
