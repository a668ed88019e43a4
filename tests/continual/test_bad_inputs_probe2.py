"""Bad input to the continual plug-ins found by a second probe (issue 18): a second HLOP / GPM on a layer another
already projects (the two projections undid each other's protection, silently), frozen and lazy layers (raw torch
errors), unbatched conv inputs (a raw IndexError from unfold), corrupt checkpoint counters, and recipes whose
stream options have the wrong type or whose layers the model lacks (a raw TypeError, or a half-made run directory
that made the corrected command ask for --force). Plus the conv layouts HLOP reads (stride, padding, dilation)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from spikeseq import cli
from spikeseq.continual import HLOP, HLOPConfig
from spikeseq.continual.gpm import GPM, GPMConfig
from spikeseq.continual.layers import resolve
from spikeseq.continual.plugin import TaskData
from spikeseq.errors import ConfigError, ContinualError, ShapeError
from spikeseq.models.lifnet import SNNMLP
from spikeseq.train import stream as S
from spikeseq.train.tasks import continual as C

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "hlop" / "digits_split.toml"


def _mlp() -> SNNMLP:
    torch.manual_seed(0)
    return SNNMLP(12, 4, hidden=[16], tau_mem=0.01, dt=1e-3, v_th=0.5)


def _out(o):
    return o[0] if isinstance(o, tuple) else o


# ------------------------------------------------------------------------------ 1. two projections of one layer
def test_a_second_plug_in_on_a_projected_layer_is_refused_and_the_first_keeps_its_protection():
    model = _mlp()
    first = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3, k_inc=3))
    second = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3, k_inc=3, seed=5))
    first.begin_task(0)
    with pytest.raises(ConfigError, match=r"layer 'layers.1' already has its gradient projected by another "
                                          r"continual plug-in \(HLOP or GPM\).*detach\(\) the other plug-in"):
        second.begin_task(0)
    assert second.task == -1 and not second.in_task and second.spaces["layers.1"].k == 0  # nothing changed
    with pytest.raises(ConfigError, match="already has its gradient projected"):
        GPM(model, GPMConfig(layers=["layers.1"], k_init=3, k_inc=3)).begin_task(0)
    for _ in range(5):
        model(torch.rand(4, 8, 12))
    first.end_task()
    first.begin_task(1)
    model.zero_grad()
    _out(model(torch.rand(4, 8, 12))).sum().backward()
    q = first.spaces["layers.1"].basis
    # with the second projection the gradient had 4.5 along the first plug-in's subspace
    assert float((model[1].weight.grad @ q.t()).abs().max()) < 1e-5
    first.detach()
    second.begin_task(0)  # once the first is detached the layer is free
    assert second.in_task


def test_other_layers_can_be_protected_by_another_plug_in():
    model = _mlp()
    HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3)).begin_task(0)
    gpm = GPM(model, GPMConfig(layers=["layers.3"], k_init=3, k_inc=3))
    gpm.begin_task(0)
    assert gpm.in_task


@pytest.mark.parametrize("make", [lambda m, **kw: HLOP(m, HLOPConfig(**kw)), lambda m, **kw: GPM(m, GPMConfig(**kw))],
                         ids=["hlop", "gpm"])
def test_a_per_layer_value_for_an_unprotected_layer_is_refused(make):
    with pytest.raises(ConfigError, match=r"k_init gives values for \['layers.3'\], which are not protected layers "
                                          r"\(protected: layers.1\)"):
        make(_mlp(), layers=["layers.1"], k_init={"layers.1": 3, "layers.3": 5}, k_inc=2)  # was ignored silently
    with pytest.raises(ConfigError, match=r"k_inc gives values for \['layer.3'\]"):
        make(_mlp(), layers=["layers.1", "layers.3"], k_init=3, k_inc={"layers.1": 2, "layers.3": 2, "layer.3": 4})


# --------------------------------------------------------------------------------------- 2. frozen layers
@pytest.mark.parametrize("make", [lambda m, **kw: HLOP(m, HLOPConfig(k_init=3, **kw)),
                                  lambda m, **kw: GPM(m, GPMConfig(k_init=3, k_inc=3, **kw))], ids=["hlop", "gpm"])
def test_frozen_layers(make):
    model = _mlp()
    model[1].weight.requires_grad_(False)
    with pytest.raises(ConfigError, match=r"layer 'layers.1': its weight is frozen \(requires_grad=False\)"):
        make(model, layers=["layers.1"])
    assert [t.name for t in make(model).targets] == ["layers.3"]  # every weighted layer: the trainable ones
    model[3].weight.requires_grad_(False)
    with pytest.raises(ConfigError, match=r"no trainable weighted layer.*frozen \(requires_grad=False\): layers.1, "
                                          "layers.3"):
        make(model)
    model = _mlp()
    plugin = make(model, layers=["layers.1"])
    model[1].weight.requires_grad_(False)  # frozen after the plug-in was made: refused at begin_task, not by torch
    with pytest.raises(ConfigError, match=r"layer 'layers.1': its weight is frozen"):
        plugin.begin_task(0)
    assert plugin.task == -1 and not plugin.in_task


# --------------------------------------------------------------------------------- 3. lazy layers, conv input
def test_a_lazy_layer_is_refused_until_initialised():
    model = nn.Sequential(nn.LazyLinear(4))
    with pytest.raises(ConfigError, match=r"layer '0' is a lazy LazyLinear whose weight is not initialised yet"):
        HLOP(model, HLOPConfig(k_init=2))
    model(torch.rand(3, 5))
    assert HLOP(model, HLOPConfig(k_init=2)).targets[0].n == 5


@pytest.mark.parametrize("conv, shape", [(nn.Conv2d(2, 4, 3), (2, 6, 6)), (nn.Conv1d(2, 4, 3), (2, 9))])
def test_an_unbatched_conv_input_is_named(conv, shape):
    hlop = HLOP(nn.Sequential(conv), HLOPConfig(layers=["0"], k_init=2))
    hlop.begin_task(0)
    with pytest.raises(ShapeError, match=rf"layer '0': a protected {type(conv).__name__} reads batched inputs"):
        hlop.model(torch.randn(*shape))


@pytest.mark.parametrize("conv, shape", [
    (nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=2), (5, 2, 9, 9)),
    (nn.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=(0, 1), dilation=(2, 1)), (5, 2, 8, 9)),
    (nn.Conv1d(2, 3, 3, stride=2, padding=2, dilation=3), (5, 2, 17)),
])
def test_conv_rows_are_the_patches_the_convolution_multiplies(conv, shape):
    torch.manual_seed(0)
    t = resolve(nn.Sequential(conv), ["0"])[0]
    x = torch.randn(*shape)
    rows = t.rows(x)                                                     # [N, P, n]
    y = (rows @ conv.weight.flatten(1).t() + conv.bias).transpose(1, 2)  # [N, out, P]
    torch.testing.assert_close(y.reshape(conv(x).shape), conv(x), rtol=1e-5, atol=1e-5)


def test_dilated_conv_gradient_is_orthogonal_to_the_old_subspace():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=2, dilation=2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x):  # x [T, B, C, H, W], time folded into the conv's batch
            return self.conv(x.flatten(0, 1)).view(x.shape[0], x.shape[1], -1)

    net = Net()
    hlop = HLOP(net, HLOPConfig(layers=["conv"], k_init=6, k_inc=4, input="step"))
    hlop.begin_task(0)
    for _ in range(10):
        net(torch.randn(2, 4, 2, 5, 5))
    hlop.end_task()
    hlop.begin_task(1)
    net(torch.randn(2, 4, 2, 5, 5)).square().sum().backward()
    q = hlop.spaces["conv"].basis
    assert q.shape == (6, 18)
    assert float((conv.weight.grad.flatten(1) @ q.t()).abs().max()) < 1e-5


def test_grouped_conv_is_refused():
    with pytest.raises(ConfigError, match=r"grouped convolutions \(groups=2\) are not supported"):
        HLOP(nn.Sequential(nn.Conv2d(2, 4, 3, groups=2)), HLOPConfig(layers=["0"], k_init=2))


@pytest.mark.parametrize("kw", [dict(), dict(hebbian_passes=2)], ids=["measure", "hebbian_passes"])
@pytest.mark.parametrize("batches", [[], [(torch.rand(4, 0, 12), torch.zeros(0, dtype=torch.long))]],
                         ids=["no batch", "empty batch"])
def test_hlop_end_task_on_data_without_samples_is_refused_like_gpm_and_ewc(kw, batches):
    """It recorded a subspace ratio of 0 (as if the neurons had learned nothing) and skipped the passes silently."""
    hlop = HLOP(_mlp(), HLOPConfig(layers=["layers.1"], k_init=3, **kw))
    hlop.begin_task(0)
    h0 = hlop.spaces["layers.1"].h.clone()
    with pytest.raises(ContinualError, match=r"HLOP.end_task: task 0's data gave no batches \(or only empty ones\)"):
        hlop.end_task(TaskData(0, lambda size: iter(batches), lambda x, y: x.sum()))
    assert hlop.in_task and hlop.quality == [] and hlop.spaces["layers.1"].n_old == 0
    assert torch.equal(hlop.spaces["layers.1"].h, h0)
    if not kw:
        hlop.end_task()  # without data: no measurement, the merge as before
        assert hlop.spaces["layers.1"].n_old == 3 and not hlop.in_task


# ---------------------------------------------------------------------------------------- 4. checkpoints
@pytest.mark.parametrize("task, in_task", [("x", False), (-2, False), (True, False), (0, "yes")])
def test_corrupt_task_counters_in_a_checkpoint_are_refused(task, in_task):
    hlop = HLOP(_mlp(), HLOPConfig(layers=["layers.1"], k_init=3))
    st = hlop.state_dict()
    st["task"], st["in_task"] = task, in_task
    with pytest.raises(ConfigError, match=r"checkpoint HLOP task = .* the task must be a whole number >= -1"):
        hlop.load_state_dict(st)
    assert hlop.task == -1


def test_resume_mid_task_refuses_a_layer_another_plug_in_projects():
    donor = HLOP(_mlp(), HLOPConfig(layers=["layers.1"], k_init=3))
    donor.begin_task(0)
    model = _mlp()
    HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3)).begin_task(0)
    late = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3))
    with pytest.raises(ConfigError, match="already has its gradient projected"):
        late.load_state_dict(donor.state_dict())
    assert late.task == -1 and late.spaces["layers.1"].k == 0


# --------------------------------------------------------------------------------------------- 5. recipes
def _raw(**stream) -> dict:
    return {"task": "continual", "name": "probe", "model": {"name": "snn_mlp", "hidden": [8]},
            "stream": {"name": "digits_split", "steps": 2, **stream},
            "continual": {"method": "hlop", "hlop": {"k_init": 4, "k_inc": 2}},
            "train": {"optimizer": "sgd", "epochs": 1}}


@pytest.mark.parametrize("key, value, want", [("steps", "abc", "a whole number"), ("steps", 2.5, "a whole number"),
                                              ("n_tasks", 2.5, "a whole number"),
                                              ("test_fraction", "0.3", "a number")])
def test_stream_options_of_the_wrong_type_are_named(key, value, want):
    cfg = C.from_dict(_raw(**{key: value}))
    with pytest.raises(ConfigError, match=rf"stream.{key} of stream 'digits_split' must be {want} \(its default is "):
        S.run(cfg)


@pytest.mark.parametrize("sets, match", [
    (["stream.steps=abc"], "stream.steps of stream 'digits_split' must be a whole number"),
    (['continual.hlop.layers=["layers.9"]'], "no layer named 'layers.9' in SNNMLP"),
    (["continual.hlop.k_init=1000"], "k_init = 1000 subspace neurons must lie in"),
    (["stream.n_tasks=0"], r"n_tasks must lie in \[1, 5\], got 0"),
])
def test_a_recipe_that_cannot_run_writes_no_run_directory(tmp_path, capsys, sets, match):
    out = tmp_path / "run"
    argv = ["train", str(RECIPE), "--out", str(out)]
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not out.exists()  # the corrected command then starts without --force


def test_force_with_a_recipe_that_cannot_run_keeps_the_old_run(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "continual.json").write_text("{}")
    argv = ["train", str(RECIPE), "--out", str(out), "--force", "--set", 'continual.hlop.layers=["layers.9"]']
    assert cli.main(argv) == 2
    assert "no layer named 'layers.9'" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["continual.json"]
