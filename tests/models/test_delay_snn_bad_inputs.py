"""DelaySNN config and state checks name the bad value (max_delay < 1 was reported as a negative pad_end)."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ConfigError, ParameterError, ShapeError
from spikeseq.models.delay_snn.modules import DelaySNN, DelaySNNConfig


@pytest.mark.parametrize("kw,err,msg", [
    ({"max_delay": -1}, ParameterError, r"max_delay must be an integer >= 1 .*got -1"),  # was "pad_end >= 0, got -3"
    ({"n_layers": 2.5}, ConfigError, "n_layers must be an integer >= 1, got 2.5"),
    ({"pad_end": 1.5}, ConfigError, "pad_end must be an integer >= 0"),
])
def test_config_names_the_bad_value(kw, err, msg):
    with pytest.raises(err, match=msg):
        DelaySNNConfig(**kw)
    DelaySNNConfig(delays="none", max_delay=0)  # no delays: max_delay is unused


def test_state_of_the_wrong_structure_is_a_shape_error():
    m = DelaySNN(n_inputs=4, n_outputs=2, n_hidden=5, n_layers=1, max_delay=2).eval()
    x = torch.rand(6, 2, 4)
    _, s = m(x)
    assert m(x, s)[0].shape == (6, 2, 2)
    with pytest.raises(ShapeError, match="DelaySNNState with 2 synapse and 1 neuron"):
        m(x, type(s)(s.synapses[:1], s.neurons, s.readout))
    with pytest.raises(ShapeError, match="got tuple"):
        m(x, (1, 2, 3))
