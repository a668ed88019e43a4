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


def _poisoned(state: SpikeGPTState, block: int, field: str, value: float) -> SpikeGPTState:
    blocks = list(state.blocks)
    t = getattr(blocks[block], field).clone()
    t[1, 3] = value
    blocks[block] = blocks[block]._replace(**{field: t})
    return SpikeGPTState(tuple(blocks))


@pytest.mark.parametrize("build", [build_spikegpt, build_rwkv4])
@pytest.mark.parametrize("path", ["fused", "torch"])
@pytest.mark.parametrize("field", ["att_x", "wkv_a", "wkv_b", "wkv_p", "ffn_x", "v_att", "v_ffn"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_state_is_refused_naming_the_field_on_every_path(build, path, field, value, monkeypatch):
    """Before: the fused C++ step and the torch step ran on (the spiking model returned finite logits from a NaN
    membrane, which never spikes, and carried the NaN on; the non-spiking one returned NaN logits), while the
    parallel form's LIF raised an error that named no state field."""
    from spikeseq.kernels.wkv import block_step

    torch.manual_seed(0)
    m = build("tiny", vocab=10, n_layer=2, n_embd=8).eval()
    if path == "torch":
        monkeypatch.setattr(block_step, "pays", lambda packed: False)
    elif m.blocks[0].step_weights().packed is None:
        pytest.skip("the C++ step library is not built here")
    ids = torch.tensor([1, 2])
    _, st = m.step(ids)
    bad = _poisoned(st, 1, field, value)
    msg = rf"state\.blocks\[1\]\.{field} contains NaN or Inf \(batch rows \[1\]\).*state=None"
    with pytest.raises(NonFiniteError, match=msg):
        m.step(ids, bad)
    with pytest.raises(NonFiniteError, match=msg):
        m(ids[None], bad)
    # the clean state still runs, and the same on both forms
    y_step, _ = m.step(ids, st)
    y_fwd, _ = m(ids[None], st)
    torch.testing.assert_close(y_step, y_fwd[0], rtol=1e-5, atol=1e-5)


def test_minus_infinity_in_wkv_p_is_an_empty_history_not_an_error(model):
    """``p = -inf`` (an empty WKV history, like the initial ``-1e38``) is accepted and computes what -1e38 does."""
    ids = torch.tensor([3])
    st = model.initial_state(1)
    st_inf = SpikeGPTState(tuple(b._replace(wkv_p=torch.full_like(b.wkv_p, -math.inf)) for b in st.blocks))
    y, _ = model.step(ids, st)
    y_inf, s_inf = model.step(ids, st_inf)
    torch.testing.assert_close(y_inf, y)
    assert all(bool(torch.isfinite(t).all()) for b in s_inf.blocks for t in b)
