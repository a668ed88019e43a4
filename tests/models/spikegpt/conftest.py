"""One torch thread for the SpikeGPT tests: they run many small ops (token by token), where a second intra-op
thread only adds synchronisation (and stalls badly on a loaded machine)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
