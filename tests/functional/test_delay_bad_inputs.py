"""The sigma schedule refuses non-finite sigmas and negative epochs (it returned NaN / a sigma above the start); the
delay paths refuse a non-finite input (they delivered it into the output or only into the state)."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import NonFiniteError, ParameterError
from spikeseq.functional.delay import delay_conv, delay_gaussian, delay_integer, delay_shift_reference, sigma_schedule


def test_sigma_schedule_checks_its_arguments():
    assert sigma_schedule(0, sigma_init=12.0, final_epoch=3) == 12.0
    with pytest.raises(ParameterError, match="finite numbers > 0, got nan"):
        sigma_schedule(0, sigma_init=math.nan, final_epoch=3)
    with pytest.raises(ParameterError, match="epoch must be an integer >= 0"):
        sigma_schedule(-1, sigma_init=12.0, final_epoch=3)


def test_the_functional_delay_paths_refuse_non_finite_inputs():
    w, d = torch.ones(3, 4), torch.tensor([[0.0, 1.0, 2.0, 3.0]] * 3)
    x = torch.zeros(5, 2, 4)
    x[0, 0, 0] = math.inf
    calls = [lambda: delay_conv(x, torch.ones(3, 4, 4)),
             lambda: delay_gaussian(x, weight=w, delay=d, sigma=1.0, max_delay=3),
             lambda: delay_integer(x, weight=w, delay=d, max_delay=3),
             lambda: delay_shift_reference(x, weight=w, delay=d, max_delay=3)]
    for call in calls:
        with pytest.raises(NonFiniteError, match=r"input x contains NaN or Inf \(first at time step 0, batch row 0\)"):
            call()
