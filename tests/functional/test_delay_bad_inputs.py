"""The sigma schedule refuses non-finite sigmas and negative epochs (it returned NaN / a sigma above the start)."""

from __future__ import annotations

import math

import pytest

from spikeseq.errors import ParameterError
from spikeseq.functional.delay import sigma_schedule


def test_sigma_schedule_checks_its_arguments():
    assert sigma_schedule(0, sigma_init=12.0, final_epoch=3) == 12.0
    with pytest.raises(ParameterError, match="finite numbers > 0, got nan"):
        sigma_schedule(0, sigma_init=math.nan, final_epoch=3)
    with pytest.raises(ParameterError, match="epoch must be an integer >= 0"):
        sigma_schedule(-1, sigma_init=12.0, final_epoch=3)
