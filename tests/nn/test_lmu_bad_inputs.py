"""The LMU cell and memory refuse a state of the wrong kind, bool sizes and negative step counts."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional.lmu import lmu_impulse_response, lmu_matrices
from spikeseq.nn.lmu import LMU


def test_lmu_cell_state_must_be_its_named_tuple():
    cell = LMU(3, 4, 2, 4.0)
    x = torch.randn(5, 2, 3)
    _, st = cell(x)
    assert cell(x, st)[0].shape == (5, 2, 4)
    with pytest.raises(ShapeError, match="must be an LMUCellState"):
        cell(x, tuple(st))


def test_lmu_cell_refuses_bool_sizes():
    with pytest.raises(ParameterError, match="n_u must be an integer >= 1, got True"):
        LMU(3, 4, 2, 4.0, n_u=True)


def test_impulse_response_refuses_negative_steps():
    a, b = lmu_matrices(2, 4.0)
    assert lmu_impulse_response(a, b, 0).shape == (0, 2)
    with pytest.raises(ParameterError, match="steps >= 0"):
        lmu_impulse_response(a, b, -1)
