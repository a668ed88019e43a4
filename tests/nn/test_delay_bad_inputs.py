"""DelayLinear refuses a sigma or sigma_offset that would silently change the kernel, non-integer sizes, a state of
the wrong kind and a non-finite input or state."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import NonFiniteError, ParameterError, ShapeError
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


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("path", ["gaussian", "eval", "eval_grad", "integer"])
def test_non_finite_input_is_refused_on_every_path(path, value):
    """Before: every path returned y with NaN rows (or, for an input of the last steps whose delays reach past the
    end, only a NaN state that poisoned the next call), where the neurons and the EGRU raise NonFiniteError."""
    layer = DelayLinear(4, 3, 3, generator=torch.Generator().manual_seed(0))
    layer.train(path == "gaussian")
    x = torch.rand(6, 2, 4)
    x[5, 1, 2] = value  # the last step: with delays > 0 it would reach no output of this call, only the state
    call = layer.round_delays().forward_integer if path == "integer" else layer
    with torch.set_grad_enabled(path != "eval"), \
            pytest.raises(NonFiniteError, match=r"input x contains NaN or Inf \(first at time step 5, batch row 1\)"
                                                 r".*nan_to_num"):
        call(x)


def test_non_finite_state_is_refused_naming_the_state():
    layer = DelayLinear(4, 3, 3).eval()
    st = layer.initial_state(2)
    st.x[2, 1, 0] = math.nan
    with pytest.raises(NonFiniteError, match=r"delay state \(DelayState\.x.*time step 2, batch row 1\).*state=None"):
        layer(torch.rand(1, 2, 4), st)
    # a finite state still streams
    y, st2 = layer(torch.rand(1, 2, 4), layer.initial_state(2))
    assert y.shape == (1, 2, 3) and bool(torch.isfinite(st2.x).all())
