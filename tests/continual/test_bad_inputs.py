"""Bad inputs to the continual plug-ins (HLOP, GPM, EWC), the metrics and the continual task: each ends in a clear
spikeseq error at the place it is made, or (empty batches, silent layers) in the correct no-op."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from spikeseq.continual import HLOP, HLOPConfig, metrics
from spikeseq.continual.capture import presynaptic
from spikeseq.continual.ewc import EWC, EWCConfig
from spikeseq.continual.gpm import GPM, GPMConfig
from spikeseq.continual.hlop import FINITE_CHECK_EVERY
from spikeseq.continual.plugin import TaskData
from spikeseq.data import streams
from spikeseq.errors import ConfigError, ContinualError, NonFiniteError, ParameterError, ShapeError
from spikeseq.models.lifnet import SNNMLP
from spikeseq.train.tasks import continual as C


def _mlp(hidden: int = 16) -> SNNMLP:
    torch.manual_seed(0)
    return SNNMLP(12, 4, hidden=[hidden], tau_mem=0.01, dt=1e-3, v_th=0.5)


def _plain() -> nn.Sequential:
    """A model without spiking layers: nothing in it stops NaN inputs or [B, n] inputs without a time axis."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))


def _hlop(model: nn.Module | None = None, **kw) -> HLOP:
    model = model if model is not None else _mlp()
    kw.setdefault("layers", ["layers.1"])
    kw.setdefault("k_init", 3)
    return HLOP(model, HLOPConfig(**kw))


def _no_batches(task: int = 0) -> TaskData:
    return TaskData(task, lambda size: iter(()), lambda x, y: x.sum())


# ---------------------------------------------------------------------------------------------- 1. non-finite
def test_nan_input_to_the_hebbian_update_is_named_before_the_merge():
    hlop = _hlop(_plain(), layers=["0"])
    hlop.begin_task(0)
    x = torch.rand(4, 2, 12)
    x[1, 0, 3] = math.nan
    hlop.model(x)
    with pytest.raises(NonFiniteError, match=r"HLOP layer '0': the subspace H became non-finite.*NaN/Inf input"):
        hlop.end_task()  # not the raw LinAlgError of an SVD of a poisoned subspace


def test_update_that_makes_h_non_finite_is_reported():
    hlop = _hlop()
    hlop.begin_task(0)
    hlop.update("layers.1", torch.full((4, 12), 3e38))  # finite, but y = H x overflows float32
    with pytest.raises(NonFiniteError, match=r"H became non-finite.*during task 0.*too large"):
        hlop.check_finite()
    with pytest.raises(NonFiniteError, match="H became non-finite"):
        hlop.end_task()                                  # checked before the merge's SVD
    hlop = _hlop()
    hlop.begin_task(0)
    with pytest.raises(NonFiniteError, match="H became non-finite"):  # found within FINITE_CHECK_EVERY updates
        for _ in range(FINITE_CHECK_EVERY):
            hlop.update("layers.1", torch.full((4, 12), float("nan")))


# ------------------------------------------------------------------------------ 2. silent layer, normalize
def test_all_zero_input_with_normalize_skips_the_step():
    model = _mlp()
    with torch.no_grad():
        model[1].bias.zero_()  # zero input current: the hidden LIF layer stays silent
    hlop = _hlop(model, layers=["layers.1", "layers.3"], normalize=True)
    hlop.begin_task(0)
    h0 = {k: sp.h.clone() for k, sp in hlop.spaces.items()}
    hlop.model(torch.zeros(4, 2, 12))  # zero input and a silent spiking layer: zero residual power in both
    hlop.update("layers.1", torch.zeros(5, 12))
    for k, sp in hlop.spaces.items():
        assert torch.equal(sp.h, h0[k])
    hlop.update("layers.1", torch.rand(5, 12))  # a non-zero residual still learns
    assert not torch.equal(hlop.spaces["layers.1"].h, h0["layers.1"])


# ------------------------------------------------------------------------------------------- 3. HLOPConfig
@pytest.mark.parametrize("bad,match", [
    (dict(max_samples=0), "max_samples must be a whole number >= 1"),
    (dict(max_samples=-4), "max_samples must be a whole number >= 1"),
    (dict(iterations=2.5), "iterations must be a whole number >= 1"),
    (dict(iterations=True), "iterations must be a whole number >= 1"),
    (dict(spiking=(20,)), r"spiking must be None or \(S, T_l\)"),
    (dict(spiking="20,40"), r"spiking must be None or \(S, T_l\)"),
    (dict(spiking=(20, -1)), r"spiking must be None or \(S, T_l\)"),
    (dict(clamp=math.inf, lr=100), "clamp must be a finite number > 0"),
    (dict(momentum=math.nan), r"momentum must be a number in \[0, 1\)"),
    (dict(seed=1.5), "seed must be a whole number"),
])
def test_hlop_config_values_are_checked_at_config_time(bad, match):
    with pytest.raises(ConfigError, match=match):
        HLOPConfig(**bad).check()
    with pytest.raises(ConfigError, match=match):
        _hlop(**bad)


def test_recipe_settings_are_checked_when_the_recipe_is_read():
    raw = {"task": "continual", "model": {"name": "snn_mlp", "hidden": [8]}, "stream": {"name": "digits_split"},
           "continual": {"method": "hlop", "hlop": {"max_samples": 0}}, "train": {"optimizer": "sgd"}}
    with pytest.raises(ConfigError, match=r"continual.hlop: HLOP max_samples must be a whole number >= 1"):
        C.from_dict(raw, "r.toml")
    raw["continual"] = {"method": "ewc", "ewc": {"batch_size": 0}}
    with pytest.raises(ConfigError, match=r"continual.ewc: EWC batch_size must be a whole number >= 1"):
        C.from_dict(raw, "r.toml")


# ----------------------------------------------------------------------------------------- 4. empty batch
def test_empty_batch_is_a_no_op_for_the_hebbian_update():
    hlop = _hlop(layers=["layers.1", "layers.3"])
    hlop.begin_task(0)
    h0 = {k: sp.h.clone() for k, sp in hlop.spaces.items()}
    hlop.model(torch.rand(4, 0, 12))
    for k, sp in hlop.spaces.items():
        assert torch.equal(sp.h, h0[k])
    assert presynaptic(torch.zeros(0, 1, 12), (4, 0)).shape == (0, 12)


# ----------------------------------------------------------------------------------- 5. keyword, 2-D input
def test_keyword_input_updates_like_positional_input():
    x = torch.rand(4, 2, 12) * 2
    by_position, by_name = _hlop(), _hlop()
    for h in (by_position, by_name):
        h.begin_task(0)
    h0 = by_position.spaces["layers.1"].h.clone()
    by_position.model(x)
    by_name.model(x=x)
    assert not torch.equal(by_name.spaces["layers.1"].h, h0)
    assert torch.equal(by_name.spaces["layers.1"].h, by_position.spaces["layers.1"].h)


def test_input_without_time_axis_names_the_expected_shape():
    hlop = _hlop(_plain(), layers=["0"])
    hlop.begin_task(0)
    with pytest.raises(ShapeError, match=r"must be time-first \[T, B, \.\.\.\].*\[B, n\] input"):
        hlop.model(torch.rand(5, 12))


# ----------------------------------------------------------------------------------------- 6. layer lists
@pytest.mark.parametrize("make", [lambda m, **kw: HLOP(m, HLOPConfig(k_init=3, **kw)),
                                  lambda m, **kw: GPM(m, GPMConfig(k_init=3, **kw))], ids=["hlop", "gpm"])
def test_layer_and_keep_trainable_lists(make):
    with pytest.raises(ConfigError, match="no layers to protect"):
        make(_mlp(), layers=[])
    with pytest.raises(ConfigError, match=r"layers must be a list of names, got '02'; write \['02'\]"):
        make(_plain(), layers="02")
    with pytest.raises(ConfigError, match="keep_trainable must be a list of names, got 'head'"):
        make(_mlp(), layers=["layers.1"], keep_trainable="head")
    with pytest.raises(ConfigError, match=r"prefix 'head' matches no parameter of SNNMLP; its parameters: "
                                          r"layers.1.weight, layers.1.bias"):
        make(_mlp(), layers=["layers.1"], keep_trainable=["head"])
    model = _mlp()
    plugin = make(model, layers=["layers.1"], keep_trainable=["layers.3"])
    plugin.begin_task(0)
    x = torch.rand(4, 3, 12)
    plugin.end_task(TaskData(0, lambda size: iter([(x, torch.zeros(3, dtype=torch.long))]), lambda a, b: a.sum()))
    assert model[3].bias.requires_grad and not model[1].bias.requires_grad


# -------------------------------------------------------------------------------- 7. begin_task atomicity
def test_begin_task_checks_every_layer_before_growing_any():
    hlop = _hlop(layers=["layers.1", "layers.3"], k_inc={"layers.1": 2, "layers.3": 14})
    hlop.begin_task(0)
    hlop.end_task()
    with pytest.raises(ParameterError, match=r"'layers.3'.*would get 17 subspace neurons"):
        hlop.begin_task(1)
    assert hlop.spaces["layers.1"].k == 3 and hlop.task == 0 and not hlop.in_task
    hlop.config.k_inc = {"layers.1": 2, "layers.3": 4}
    hlop.begin_task(1)  # the retry grows every layer once
    assert hlop.spaces["layers.1"].k == 5 and hlop.spaces["layers.3"].k == 7 and hlop.task == 1


# ------------------------------------------------------------------------------- 8. tasks without batches
def test_end_task_on_data_without_batches():
    ewc = EWC(_mlp())
    ewc.begin_task(0)
    with pytest.raises(ContinualError, match=r"EWC.end_task: task 0's data gave no batches"):
        ewc.end_task(_no_batches())
    assert ewc.anchors == []
    gpm = GPM(_mlp(), GPMConfig(layers=["layers.1"], k_init=3))
    gpm.begin_task(0)
    with pytest.raises(ContinualError, match=r"GPM.end_task: task 0's data gave no batches"):
        gpm.end_task(_no_batches())
    assert gpm.bases["layers.1"].shape == (0, 12)


# ------------------------------------------------------------------------------------------- 9. EWCConfig
@pytest.mark.parametrize("bad,match", [
    (dict(mode="online", gamma=math.nan), r"gamma must be a number in \[0, 1\]"),
    (dict(gamma=-1.0), r"gamma must be a number in \[0, 1\]"),
    (dict(lam=math.inf), "lam must be a finite number >= 0"),
    (dict(lam=-1.0), "lam must be a finite number >= 0"),
    (dict(batch_size=0), "batch_size must be a whole number >= 1"),
    (dict(samples=0), "samples must be a whole number >= 1"),
    (dict(mode="offline"), "mode must be one of"),
])
def test_ewc_config_values(bad, match):
    with pytest.raises(ConfigError, match=match):
        EWC(_mlp(), EWCConfig(**bad))


# ---------------------------------------------------------------------------------------------- 10. metrics
def test_metrics_need_fractions_and_a_square_matrix():
    with pytest.raises(ContinualError, match="fractions, not percentages"):
        metrics.acc([[90, 0], [80, 95]])
    with pytest.raises(ContinualError, match="fractions, not percentages"):
        metrics.bwt([[0.9, 0.0], [-0.1, 0.9]])
    for bad in ([[0.9], [0.8, 0.9]], None):
        with pytest.raises(ContinualError, match="square T x T array of numbers"):
            metrics.acc(bad)
    assert metrics.acc([[0.9, 7.0], [0.8, 1.0]]) == pytest.approx(0.9)  # above the diagonal: unused


# ------------------------------------------------------------------------------------------ 11. load_state
def test_hlop_load_state_is_checked():
    hlop = _hlop()
    with pytest.raises(ConfigError, match=r"not an HLOP state: missing \['task', 'in_task', 'generator', 'spaces'\]"):
        hlop.load_state_dict({})
    gpm = GPM(_mlp(), GPMConfig(layers=["layers.1"], k_init=3))
    with pytest.raises(ConfigError, match=r"not an HLOP state: missing \['spaces'\]"):
        hlop.load_state_dict(gpm.state_dict())
    good = _hlop()
    good.begin_task(0)
    good.end_task()
    for key, value, match in (("n_old", 9, r"n_old = 9 old rows must be a whole number in \[0, k = 3\]"),
                              ("basis", torch.zeros(2, 5), r"projection basis \(2, 5\) must be \[r <= n_old = 3, 12\]"),
                              ("h", torch.zeros(3, 20), r"has shape \(3, 20\), the layer takes \[k <= 12, 12\]")):
        st = good.state_dict()
        st["spaces"]["layers.1"][key] = value
        with pytest.raises(ConfigError, match=f"layer 'layers.1'.*{match}"):
            hlop.load_state_dict(st)
        assert hlop.task == -1 and hlop.spaces["layers.1"].k == 0  # nothing changed
    hlop.load_state_dict(good.state_dict())
    assert hlop.task == 0 and torch.equal(hlop.spaces["layers.1"].h, good.spaces["layers.1"].h)


def test_gpm_and_ewc_load_states_of_other_sizes_are_refused():
    small = GPM(_mlp(16), GPMConfig(layers=["layers.3"], k_init=3))
    big = GPM(_mlp(20), GPMConfig(layers=["layers.3"], k_init=3))
    with pytest.raises(ConfigError, match=r"basis of layer 'layers.3' has shape \(0, 16\), the layer takes "
                                          r"\[r <= 20, 20\]"):
        big.load_state_dict(small.state_dict())
    with pytest.raises(ConfigError, match="not a GPM state"):
        big.load_state_dict(_hlop().state_dict())
    a, b = EWC(_mlp(16)), EWC(_mlp(20))
    a.anchors = [({n: torch.ones_like(p) for n, p in a.params.items()},
                  {n: p.detach().clone() for n, p in a.params.items()})]
    with pytest.raises(ConfigError, match=r"Fisher of parameter 'layers.1.weight' has shape \(16, 12\), the "
                                          r"model's parameter has \(20, 12\)"):
        b.load_state_dict(a.state_dict())
    assert b.anchors == []
    with pytest.raises(ConfigError, match="not an EWC state"):
        b.load_state_dict({"bases": {}})


# ------------------------------------------------------------------------------------ 12. continual task
def test_task_ids_labels_and_values_of_the_continual_task():
    s = streams.digits_split(steps=1, n_tasks=2)
    with pytest.raises(ContinualError, match=r"task id 5 is out of range: stream 'digits_split' has tasks 0...1"):
        C.task_split(s, 5)
    with pytest.raises(ContinualError, match="task id 5 is out of range"):
        C.global_labels(s, 5, torch.tensor([0]))
    with pytest.raises(ContinualError, match=r"labels must lie in \[0, 2\).*got \[-1, -1\]"):
        C.global_labels(s, 0, torch.tensor([-1]))
    with pytest.raises(ContinualError, match="task id True is not an integer task index"):
        C.task_mask(s, True)
    assert torch.equal(C.task_mask(s, np.int64(1)), C.task_mask(s, 1))
    assert torch.equal(C.global_labels(s, torch.tensor(1), torch.tensor([0, 1])), torch.tensor([2, 3]))
    task = s.tasks[1]
    task.train_y = task.train_y.float() * 0.5
    with pytest.raises(ContinualError, match=r"task 'split1:2/3' train labels must be an integer tensor"):
        C.task_split(s, 1, "train")
    task.train_y = (task.train_y * 2).long()
    task.test_x = task.test_x.clone()
    task.test_x[3, 0, 5] = math.nan
    with pytest.raises(ContinualError, match="task 'split1:2/3' test inputs hold NaN/Inf values"):
        C.task_split(s, 1)
    assert len(C.task_split(s, 1, "train")) == task.train_x.shape[0]
