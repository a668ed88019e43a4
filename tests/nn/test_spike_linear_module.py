"""nn.SpikeLinear: an nn.Linear (parameters, state dict, tracing) whose product is spike_linear."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.errors import ParameterError
from spikeseq.models.lifnet import SNNMLP
from spikeseq.nn import SpikeLinear


def test_is_a_linear_with_the_same_parameters_and_outputs():
    torch.manual_seed(0)
    lin = SpikeLinear(40, 48)
    plain = nn.Linear(40, 48)
    plain.load_state_dict(lin.state_dict())  # same keys and shapes
    assert isinstance(lin, nn.Linear) and "mode=auto" in repr(lin)
    z = (torch.rand(30, 4, 40) < 0.1).float()
    torch.testing.assert_close(lin(z), plain(z), atol=2e-6, rtol=1e-6)
    dense = SpikeLinear(40, 48, mode="dense")
    dense.load_state_dict(lin.state_dict())
    assert torch.equal(dense(z), F.linear(z, lin.weight, lin.bias))
    with pytest.raises(ParameterError, match="0s and 1s"):
        lin(z * 0.5)
    with pytest.raises(ParameterError, match="unknown SpikeLinear mode"):
        SpikeLinear(4, 4, mode="fast")  # type: ignore[arg-type]


def test_snn_mlp_uses_it_after_the_first_layer_and_trains():
    torch.manual_seed(0)
    model = SNNMLP(20, 5, hidden=[64, 64])
    kinds = [type(m).__name__ for m in model.modules() if isinstance(m, nn.Linear)]
    assert kinds == ["Linear", "SpikeLinear", "SpikeLinear"]
    x = (torch.rand(25, 3, 20) < 0.3).float() * 3.0  # the first layer takes graded input (event counts)
    y, _ = model(x)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
