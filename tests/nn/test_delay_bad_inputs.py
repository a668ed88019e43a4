"""DelayLinear refuses a sigma or sigma_offset that would silently change the kernel, non-integer sizes and a
state of the wrong kind."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import ParameterError, ShapeError
from spikeseq.nn import DelayLinear


@pytest.mark.parametrize("kw", [{"sigma": -1.0}, {"sigma": math.inf}, {"sigma": math.nan},
                                {"sigma_offset": -1.0}, {"in_features": 2.5}, {"in_features": True}])
def test_constructor_refuses(kw):
    args = {"in_features": 4, "out_features": 3, "max_delay": 3, **kw}
    with pytest.raises(ParameterError, match=next(iter(kw))):
        DelayLinear(**args)


def test_set_sigma_refuses_infinity():
    layer = DelayLinear(4, 3, 3)
    layer.set_sigma(0.23)
    with pytest.raises(ParameterError, match="finite number >= 0"):
        layer.set_sigma(math.inf)
    assert float(layer.sigma) == pytest.approx(0.23)


def test_state_of_the_wrong_kind_and_nan_delays_in_training():
    layer = DelayLinear(4, 3, 3).train()
    x = torch.rand(6, 2, 4)
    _, st = layer(x)
    with pytest.raises(ShapeError, match=r"must be a DelayState.*got Tensor"):
        layer(x, st.x)
    with torch.no_grad():
        layer.delay[0, 0] = math.nan
    with pytest.raises(ParameterError, match="delays contain NaN"):
        layer(x)  # the Gaussian path refuses NaN positions as the integer (eval) path does
