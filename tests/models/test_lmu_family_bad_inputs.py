"""L2MU and LMUFormer refuse a state of the wrong kind or size, and bools for sizes, with a spikeseq error (never
a raw torch error or a silently accepted True == 1)."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ParameterError, ShapeError
from spikeseq.models.l2mu.modules import L2MU
from spikeseq.models.lmuformer.modules import CausalConv1d, build_lmuformer

X = torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(0))


def test_lmuformer_state_of_another_batch_is_a_shape_error():
    m = build_lmuformer(3, 2, dim=4, order=2, theta=4.0).eval()
    _, st = m(X)
    assert m(X, st)[0].shape == (6, 2, 2)  # the right state streams on
    with pytest.raises(ShapeError, match=r"ctx has shape \(2, 2, 3\).*\[2, 3, 3\]"):
        m(torch.randn(6, 3, 3), st)
    with pytest.raises(ShapeError, match="must be an LMUFormerState"):
        m(X, (None,) * 5)


def test_causal_conv_state_is_checked():
    conv = CausalConv1d(3, 4, 3)
    _, st = conv(X)
    with pytest.raises(ShapeError, match="ctx has shape"):
        conv(X[:, :1], st)
    with pytest.raises(ShapeError, match="must be a ConvState"):
        conv(X, st.ctx)


def test_l2mu_state_must_be_its_named_tuple():
    m = L2MU(3, 2, hidden_size=4, memory_size=2, input_pop_size=3)
    with pytest.raises(ShapeError, match="must be an L2MUState"):
        m(X, (1, 2))


@pytest.mark.parametrize("build", [lambda: L2MU(3, 2, hidden_size=True),
                                   lambda: build_lmuformer(3, 2, dim=4, order=2, theta=4.0, mlp_ratio=True)])
def test_bool_sizes_are_refused(build):
    with pytest.raises(ParameterError, match="must be an integer >= 1, got True"):
        build()
