"""Config validation: precise errors for unknown / mistyped keys, overrides, round trip through config.json."""

from __future__ import annotations

import json
import tomllib

import pytest

from spikeseq.errors import ConfigError
from spikeseq.train.config import RunConfig, apply_overrides, from_dict, load_config, parse_override

BASE = {"model": {"name": "snn_mlp", "n_in": 4, "n_out": 3}, "data": {"name": "tensor_file", "path": "x.pt"}}


def test_defaults_and_kwargs_split():
    cfg = from_dict(BASE)
    assert cfg.model.name == "snn_mlp" and cfg.model.kwargs == {"n_in": 4, "n_out": 3}
    assert cfg.data.kwargs == {"path": "x.pt"} and cfg.data.val_fraction == 0.1
    assert cfg.train.epochs == 10 and cfg.train.lr == 1e-3 and cfg.train.optimizer == "adam"
    assert cfg.export.targets == ["nir", "loihi", "spinnaker2"]


def test_unknown_key_names_key_and_suggestion():
    with pytest.raises(ConfigError, match=r"unknown key train\.lrr; did you mean 'lr'\?"):
        from_dict({**BASE, "train": {"lrr": 0.1}}, "cfg.toml")


def test_unknown_section_is_refused():
    with pytest.raises(ConfigError, match=r"unknown section or key 'trian'; did you mean 'train'"):
        from_dict({**BASE, "trian": {}})


@pytest.mark.parametrize(("section", "key", "value", "msg"), [
    ("train", "epochs", "10", r"train\.epochs must be an integer, got str '10'"),
    ("train", "epochs", True, r"train\.epochs must be an integer, got bool True"),
    ("train", "lr", "fast", r"train\.lr must be a number, got str 'fast'"),
    ("export", "targets", "nir", r"export\.targets must be a list of str"),
    ("export", "targets", ["nir", 3], r"export\.targets\[1\] must be a string, got int 3"),
    ("data", "normalize", 1, r"data\.normalize must be true or false, got int 1"),
    ("train", "optimizer", "adagrad", r"train\.optimizer = 'adagrad' is not one of adam, adamw, sgd"),
    ("train", "batch_size", 0, r"train\.batch_size must be >= 1, got 0"),
    ("data", "val_fraction", 1.0, r"data\.val_fraction must be in \[0, 1\), got 1\.0"),
])
def test_type_and_range_errors(section, key, value, msg):
    raw = json.loads(json.dumps(BASE))
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=msg):
        from_dict(raw, "cfg.toml")


def test_int_accepted_for_float():
    cfg = from_dict({**BASE, "train": {"lr": 1}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


def test_missing_sections_and_name():
    with pytest.raises(ConfigError, match=r"missing section \[data\]"):
        from_dict({"model": {"name": "x"}})
    with pytest.raises(ConfigError, match=r"\[model\] needs 'name'"):
        from_dict({"model": {}, "data": {"name": "x"}})


def test_overrides_parse_toml_values_and_strings():
    assert parse_override("train.lr=0.5") == (["train", "lr"], 0.5)
    assert parse_override("model.hidden=[8, 8]") == (["model", "hidden"], [8, 8])
    assert parse_override("model.name=rsnn") == (["model", "name"], "rsnn")
    assert parse_override("data.normalize=true") == (["data", "normalize"], True)
    raw = apply_overrides(BASE, ["train.epochs=2", "model.hidden=32"])
    cfg = from_dict(raw)
    assert cfg.train.epochs == 2 and cfg.model.kwargs["hidden"] == 32
    assert "train" not in BASE  # the input is not modified
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("train.lr")


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nname = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)


def test_json_and_toml_round_trip(tmp_path):
    cfg = from_dict({**BASE, "name": "r", "train": {"epochs": 2, "max_steps": 5}, "profile": {"tables": ["loihi"]}})
    again = from_dict(json.loads(cfg.to_json()))
    assert isinstance(again, RunConfig) and again == cfg
    # TOML drops None (TOML has no null) but reads back to the same config
    assert from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_a_byte_order_mark_is_named_in_the_toml_error(tmp_path):
    from spikeseq.train.config import read_toml

    path = tmp_path / "r.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'name = "x"\n')
    with pytest.raises(ConfigError, match="starts with a UTF-8 byte-order mark"):  # was only "Invalid statement"
        read_toml(path)
