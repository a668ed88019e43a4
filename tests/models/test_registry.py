"""The family registry and the task registry: every bad input raises a specific error naming what exists."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeseq.errors import ConfigError, ExportError, PluginError, ProfileError
from spikeseq.graph import register_lowering, trace
from spikeseq.models import registry
from spikeseq.models.registry import Family, build, families, family_of, names, register_family, unregister_family
from spikeseq.nn import LIF
from spikeseq.profile import CounterSpec, register_counter
from spikeseq.train.config import from_dict
from spikeseq.train.tasks import Task, get_task, register_task, task_for, tasks


class TinyNet(nn.Module):
    """A module type defined in this (test) package: the test family owns it."""

    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(n, n)

    def forward(self, x, state=None):
        return self.fc(x), None


def _lower_tiny(m, b, prev, shape, prefix):
    return b.lower(m.fc, prev, shape, prefix + "fc_")


def _count_tiny(m, args, kwargs, out, ctx):
    return {}


@pytest.fixture
def tiny_family():
    fam = register_family(Family(name="tinytest", tasks=("classification",), builders={"tiny_net": TinyNet},
                                 lowerings={TinyNet: _lower_tiny},
                                 counters={TinyNet: CounterSpec(_count_tiny, "composite", descend=True)}))
    yield fam
    unregister_family("tinytest")


def test_in_tree_families_are_listed_once_and_build():
    fams = families()
    assert {"lifnet", "delay_snn", "l2mu", "lmuformer", "baselines"} <= set(fams)
    assert {"snn_mlp", "rsnn", "delay_snn", "l2mu", "lmuformer", "spiking_lmuformer", "gru_baseline",
            "lmu_baseline"} <= set(names())
    assert family_of("rsnn").name == "lifnet" and family_of("rsnn").module == "spikeseq.models.lifnet"
    assert all(f.module == m for f, m in zip(fams.values(), [fams[n].module for n in fams]))
    assert len(registry.IN_TREE) == len(set(registry.IN_TREE))
    y, _ = build("rsnn", n_in=2, n_out=3, hidden=4)(torch.zeros(5, 1, 2))
    assert y.shape == (5, 1, 3)


def test_register_family_defaults_module_to_the_caller_and_lowers(tiny_family):
    assert tiny_family.module == __name__.rpartition(".")[0]
    assert family_of("tiny_net") is families()["tinytest"]
    g = trace(build("tiny_net", n=3), dt=1e-3, input_shape=(3,))
    assert [n for n in g.nodes if n not in ("input", "output")] == ["fc_affine"]


def test_unknown_model_and_family_name_what_exists():
    with pytest.raises(ConfigError, match=r"unknown model 'nope'.*known models: .*l2mu.*rsnn"):
        build("nope")
    with pytest.raises(ConfigError, match=r"unknown family 'nope'.*registered families: .*lifnet"):
        registry.get_family("nope")


def test_registering_twice_is_an_error(tiny_family):
    with pytest.raises(PluginError, match=r"family 'tinytest' is already registered.*registered families: .*l2mu"):
        register_family(Family(name="tinytest", tasks=("classification",), builders={"other": TinyNet}))
    with pytest.raises(PluginError, match=r"model name 'tiny_net' is already registered by family 'tinytest'"):
        register_family(Family(name="tinytest2", tasks=("classification",), builders={"tiny_net": TinyNet}))
    with pytest.raises(PluginError, match=r"model name 'rsnn' is already registered by family 'lifnet'"):
        register_family(Family(name="tinytest2", tasks=("classification",), builders={"rsnn": TinyNet}))
    assert "tinytest2" not in families()


def test_lowering_or_counter_for_a_type_not_owned_is_an_error():
    for kw, what in (({"lowerings": {LIF: _lower_tiny}}, "lowering"),
                     ({"counters": {nn.Linear: CounterSpec(_count_tiny, "connection")}}, "counter")):
        with pytest.raises(PluginError, match=rf"registers a {what} for .*(LIF|Linear), a type it does not own"):
            register_family(Family(name="thief", tasks=("classification",), builders={"thief_net": TinyNet}, **kw))
        assert "thief" not in families() and "thief_net" not in names()


def test_unknown_task_and_bad_family_shapes_are_errors():
    with pytest.raises(PluginError, match=r"unknown task\(s\) 'regression'.*known tasks: classification"):
        register_family(Family(name="t3", tasks=("regression",), builders={"t3_net": TinyNet}))
    with pytest.raises(PluginError, match="registers no builders"):
        register_family(Family(name="t3", tasks=("classification",), builders={}))
    with pytest.raises(PluginError, match=r"model_tasks names 'other_net', which it does not build"):
        register_family(Family(name="t3", tasks=("classification",), builders={"t3_net": TinyNet},
                               model_tasks={"other_net": ("classification",)}))
    with pytest.raises(PluginError, match=r"the tasks of model 't3_net' must be a non-empty tuple of the family's"):
        register_family(Family(name="t3", tasks=("classification",), builders={"t3_net": TinyNet},
                               model_tasks={"t3_net": ("language_modelling",)}))
    with pytest.raises(PluginError, match="must be an identifier"):
        register_family(Family(name="bad name", tasks=("classification",), builders={"x": TinyNet}))
    with pytest.raises(PluginError, match=r"expects a spikeseq\.models\.registry\.Family"):
        register_family("lifnet")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="is not registered; registered families"):
        unregister_family("t3")


def test_graph_and_profile_refuse_second_registrations():
    with pytest.raises(ExportError, match=r"LIF already has a lowering \(from spikeseq.graph"):
        register_lowering(LIF, _lower_tiny)
    with pytest.raises(ProfileError, match=r"Linear already has a counter"):
        register_counter(nn.Linear, _count_tiny, kind="connection")
    with pytest.raises(ProfileError, match="kind must be one of"):
        CounterSpec(_count_tiny, "weird")


def test_tasks_registry_and_recipe_task_key():
    assert "classification" in tasks() and get_task("classification").metric == "acc"
    with pytest.raises(ConfigError, match=r"unknown task 'regression'; registered tasks: classification"):
        get_task("regression")
    with pytest.raises(PluginError, match="already registered"):
        register_task(get_task("classification"))
    with pytest.raises(PluginError, match="not one of the known tasks"):
        register_task(Task("regression", batch=lambda *a: None, evaluate=lambda *a: {}))
    base = {"model": {"name": "rsnn", "n_in": 2, "n_out": 2}, "data": {"name": "hapt"}}
    assert task_for(from_dict(base)).name == "classification"          # default: the family's first task
    assert task_for(from_dict({**base, "task": "classification"})).name == "classification"
    assert task_for(from_dict({**base, "task": "continual"})).name == "continual"  # lifnet also solves it
    l2mu = {"model": {"name": "l2mu", "n_in": 2, "n_out": 2}, "data": {"name": "hapt"}}
    with pytest.raises(ConfigError, match=r"task 'continual' is not solved by model 'l2mu' \(family 'l2mu'\); "
                                          r"the model's tasks: classification"):
        task_for(from_dict({**l2mu, "task": "continual"}))
    with pytest.raises(ConfigError, match=r"task 'language_modelling' is not solved by model 'rsnn' \(family "
                                          r"'lifnet'\); the model's tasks: classification, continual"):
        task_for(from_dict({**base, "task": "language_modelling"}))
    # a family of several tasks whose models each solve one (EGRU: language models and classifiers)
    egru = {"model": {"name": "egru_classifier", "input_size": 2, "n_classes": 2}, "data": {"name": "hapt"}}
    assert task_for(from_dict(egru)).name == "classification"          # the model's default, not the family's
    with pytest.raises(ConfigError, match=r"task 'language_modelling' is not solved by model 'egru_classifier' "
                                          r"\(family 'egru'\); the model's tasks: classification"):
        task_for(from_dict({**egru, "task": "language_modelling"}))
    with pytest.raises(ConfigError, match=r"task must be a string"):
        from_dict({**base, "task": 3})
