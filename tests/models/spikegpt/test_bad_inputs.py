"""SpikeGPT and generation refuse malformed input with a spikeseq error naming it (never a raw torch error or a
silently wrong result)."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import ConfigError, NonFiniteError, ShapeError
from spikeseq.models.spikegpt.modules import SpikeGPTState, build_rwkv4, build_spikegpt
from spikeseq.train.cmd_generate import stream


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_spikegpt("tiny", vocab=10, n_layer=1, n_embd=8).eval()


def _resized(state: SpikeGPTState, b: int, c: int) -> SpikeGPTState:
    return SpikeGPTState(tuple(type(s)(*(torch.zeros(b, c) for _ in s)) for s in state.blocks))


def test_state_of_the_wrong_batch_or_width_is_a_shape_error(model):
    _, st = model(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"att_x of RWKV block 0 has shape \(2, 8\).*\[3, 8\]"):
        model(torch.zeros(3, 3, dtype=torch.long), st)
    with pytest.raises(ShapeError, match=r"has shape \(2, 5\).*\[2, 8\]"):
        model(torch.zeros(3, 2, dtype=torch.long), _resized(st, 2, 5))
    with pytest.raises(ShapeError, match=r"has shape \(2, 8\).*\[3, 8\]"):
        model.step(torch.zeros(3, dtype=torch.long), st)
    with pytest.raises(ShapeError, match="must be a SpikeGPTState"):
        model(torch.zeros(3, 2, dtype=torch.long), (1, 2))
    # the right state still runs, in both forms
    assert model.step(torch.zeros(2, dtype=torch.long), st)[0].shape == (2, 10)


def test_step_takes_one_id_per_sequence_and_ids_must_be_integers(model):
    with pytest.raises(ShapeError, match=r"ids \[B\], got \(2, 2\)"):
        model.step(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"torch\.bool"):
        model(torch.ones(2, 1, dtype=torch.bool))


@pytest.mark.parametrize("kw", [{"vocab": True}, {"hidden": 0}, {"hidden": -3}])
def test_config_refuses_bools_and_non_positive_hidden(kw):
    with pytest.raises(ConfigError, match=f"{next(iter(kw))} must be a positive integer"):
        build_spikegpt("tiny", **kw)


@pytest.mark.parametrize("kw,msg", [({"temperature": math.nan}, "temperature >= 0"),
                                     ({"n": -3}, "integer >= 0, got -3"),
                                     ({"n": 2.5}, "integer >= 0, got 2.5")])
def test_generation_arguments_are_checked_at_the_call(model, kw, msg):
    kw = {"n": 3, **kw}
    with pytest.raises(ConfigError, match=msg):
        stream(model.step, [1, 2], kw.pop("n"), **kw)  # raised before iterating: nothing fed, nothing printed


def test_generation_refuses_non_finite_logits():
    torch.manual_seed(0)
    m = build_rwkv4("tiny", vocab=10, n_layer=1, n_embd=8).eval()
    with torch.no_grad():
        m.head.weight[0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="logits hold NaN"):
        list(stream(m.step, [1], 2))
