"""Every examples/**/*.toml validates and builds its model; the demo's HAPT recipe is examples/har_l2mu.toml."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from spikeseq.train.cmd_demo import demo_recipes
from spikeseq.train.config import ModelConfig, from_dict, load_config, read_toml
from spikeseq.train.loop import build_model
from spikeseq.train.tasks import continual

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.toml"))


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"har_l2mu.toml", "har_rsnn.toml", "nmnist_snn_mlp.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_builds(path):
    if continual.is_continual(read_toml(path)):  # a task stream: its own schema ([stream], [continual])
        cfg = continual.load(path)
        sizes = {} if {"input_size", "n_classes"} & cfg.model.kwargs.keys() else {"n_in": 6, "n_out": 4}
        model = build_model(ModelConfig(cfg.model.name, {**sizes, **cfg.model.kwargs}))
    else:
        cfg = load_config(path)
        model = build_model(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert cfg.name == path.stem


@pytest.mark.parametrize("recipe", demo_recipes(), ids=lambda r: r["name"])
def test_demo_configs_validate(recipe):
    cfg = from_dict(copy.deepcopy(recipe))
    build_model(cfg.model)


def test_demo_recipe_is_the_example():
    example = load_config(Path(__file__).resolve().parents[2] / "examples" / "har_l2mu.toml")
    demo = from_dict({**copy.deepcopy(demo_recipes()[0]), "name": "har_l2mu"})
    assert demo == example
