"""Class 4: every numeric option is range-checked before a run directory exists; the message names the option."""

from __future__ import annotations

import math

import pytest

from spikeseq.cli import main
from spikeseq.errors import ConfigError, ParameterError
from spikeseq.train.config import from_dict
from tests.faults.conftest import tree_digest, write_tiny_config


def _raw(**sections):
    raw = {"model": {"name": "snn_mlp", "n_in": 3, "n_out": 2, "hidden": 8, "dt": 0.01, "tau_mem": 0.02},
           "data": {"name": "tensor_file", "path": "d.pt"}, "train": {}}
    for key, value in sections.items():
        sec, name = key.split("__")
        raw.setdefault(sec, {})[name] = value
    return raw


BAD = [
    ("train__lr", math.nan, "train.lr must be > 0 and finite"),
    ("train__lr", math.inf, "train.lr must be > 0 and finite"),
    ("train__lr", 0.0, "train.lr must be > 0 and finite"),
    ("train__lr", -1e-3, "train.lr must be > 0 and finite"),
    ("train__threads", 0, "train.threads must be an integer >= 1"),
    ("train__threads", -4, "train.threads must be an integer >= 1"),
    ("train__epochs", 0, "train.epochs must be >= 1"),
    ("train__batch_size", 0, "train.batch_size must be >= 1"),
    ("train__weight_decay", -0.1, "train.weight_decay must be >= 0 and finite"),
    ("train__momentum", 1.5, "train.momentum must be in [0, 1)"),
    ("train__grad_clip", 0.0, "train.grad_clip must be > 0 and finite"),
    ("data__val_fraction", math.nan, "data.val_fraction must be"),
    ("export__dt", 0.0, "export.dt must be > 0 and finite"),
    ("export__samples", 0, "export.samples must be >= 1"),
    ("model__dt", 0.0, "model.dt must be > 0"),
    ("model__dt", -0.01, "model.dt must be > 0"),
    ("model__dt", math.nan, "model.dt must be a finite number"),
    ("model__v_th", 0.0, "model.v_th must be > 0"),
    ("model__v_th", -1.0, "model.v_th must be > 0"),
    ("model__tau_mem", 0.0, "model.tau_mem must be > 0"),
    ("data__dt", -1.0, "data.dt must be > 0"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_config_refuses_out_of_range_numbers_naming_the_option(key, value, message):
    with pytest.raises(ConfigError, match=rf"c\.toml: {message}".replace("[", r"\[").replace(")", r"\)")):
        from_dict(_raw(**{key: value}), "c.toml")


@pytest.mark.parametrize(("override", "option"), [
    ("train.lr=nan", "train.lr"), ("train.lr=inf", "train.lr"), ("train.lr=-1", "train.lr"),
    ("train.threads=0", "train.threads"), ("train.epochs=0", "train.epochs"), ("train.batch_size=0",
                                                                              "train.batch_size"),
    ("model.dt=0", "model.dt"), ("model.v_th=0", "model.v_th"), ("model.v_th=-0.5", "model.v_th"),
])
def test_refused_train_command_leaves_no_run_directory(tmp_path, capsys, monkeypatch, override, option):
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    cfg = write_tiny_config(tmp_path)
    before = tree_digest(tmp_path)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--set", override]) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert tree_digest(tmp_path) == before and not (tmp_path / "run").exists()


@pytest.mark.parametrize("v_th", [0.0, -1.0, math.nan, math.inf])
def test_neuron_threshold_must_be_positive(v_th):
    from spikeseq.nn import LIF, CubaLIF

    for make in (lambda: LIF(4, tau_mem=0.02, dt=1e-3, v_th=v_th),
                 lambda: CubaLIF(4, tau_mem=0.02, tau_syn=0.01, dt=1e-3, v_th=v_th)):
        with pytest.raises(ParameterError, match=r"v_th must be a finite number > 0"):
            make()


@pytest.mark.parametrize(("argv", "option"), [
    (["profile", "RUN", "--samples", "0"], "--samples"),
    (["profile", "RUN", "--samples", "-2"], "--samples"),
    (["export", "RUN", "--samples", "0"], "--samples"),
    (["bench", "sim", "--threads", "-1"], "--threads"),
    (["bench", "interp", "--rate", "1.5"], "--rate"),
    (["bench", "delays", "--steps", "0"], "--steps"),
])
def test_numeric_command_line_options_are_checked_while_parsing(tmp_path, capsys, argv, option):
    argv = [str(tmp_path / "run") if a == "RUN" else a for a in argv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"argument {option}: must be" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
