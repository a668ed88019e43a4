"""The ``spikeseq`` command: help on every command, exit codes, one-line errors, --debug tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tomli_w
import torch

from spikeseq import cli
from spikeseq.cli import COMMANDS, main
from spikeseq.errors import ConfigError

MINE = ("train", "eval", "export", "profile", "report", "demo")


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("command", MINE)
def test_help_of_each_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"spikeseq {command}" in out and COMMANDS[command][1] in out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_missing_config_is_one_line_exit_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml")]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("spikeseq train: error: config file not found")


def test_malformed_config_and_unknown_names(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    assert main(["train", str(bad)]) == 2
    assert "not valid TOML" in _one_line_error(capsys)
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({"model": {"name": "no_such_model"}, "data": {"name": "tensor_file", "path": "x"}}))
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = _one_line_error(capsys)
    assert "unknown model 'no_such_model'; known models:" in err and "snn_mlp" in err and "rsnn" in err
    cfg.write_text(tomli_w.dumps({"model": {"name": "snn_mlp", "n_in": 4, "n_out": 3},
                                  "data": {"name": "no_such_data"}}))
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = _one_line_error(capsys)
    assert "unknown dataset 'no_such_data'" in err and "tensor_file" in err
    assert not (tmp_path / "r").exists()  # nothing is created before the config is known to be valid


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        main(["--debug", "train", str(tmp_path / "nope.toml")])


def test_not_a_run_directory(tmp_path, capsys):
    for command in ("eval", "profile", "export", "report"):
        assert main([command, str(tmp_path)]) == 2
        assert "is not a spikeseq run directory" in _one_line_error(capsys)


def test_train_eval_profile_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (40,), generator=g)
    x = torch.randn(40, 6, 3, generator=g) + 2.0 * y[:, None, None]
    torch.save({"train": {"x": x[:30], "y": y[:30]}, "test": {"x": x[30:], "y": y[30:]}}, tmp_path / "d.pt")
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "model": {"name": "snn_mlp", "n_in": 3, "n_out": 2, "hidden": 8, "backend": "torch"},
        "data": {"name": "tensor_file", "path": str(tmp_path / "d.pt"), "val_fraction": 0.2},
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.02}, "profile": {"tables": ["loihi"], "samples": 4}}))
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.seed=3"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 3
    ev = json.loads((out / "eval.json").read_text())
    assert ev["test"]["n"] == 10 and sum(map(sum, ev["test"]["confusion"])) == 10
    assert [r["epoch"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())] == [1, 2]
    # an occupied output directory is refused
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    assert "already holds a run" in _one_line_error(capsys)
    assert main(["eval", str(out)]) == 0
    assert "test acc" in capsys.readouterr().out
    assert main(["profile", str(out)]) == 0
    prof = json.loads((out / "profile.json").read_text())
    assert prof["samples"] == 4 and list(prof["energy"]) == ["loihi"]
    assert prof["energy"]["loihi"]["memory_on"]["total_pj"] > 0


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "spikeseq.cli", "eval", "/nonexistent/run"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "spikeseq eval: error: run directory not found: /nonexistent/run (create one with " \
                                  "`spikeseq train CONFIG`)"


def test_ctrl_c_exits_130_and_resume_finishes(tmp_path, capsys, monkeypatch):
    import functools
    import os
    import signal

    from spikeseq.train import loop

    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (40,), generator=g)
    x = torch.randn(40, 6, 3, generator=g) + 2.0 * y[:, None, None]
    torch.save({"train": {"x": x, "y": y}, "test": {"x": x[:8], "y": y[:8]}}, tmp_path / "d.pt")
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "model": {"name": "snn_mlp", "n_in": 3, "n_out": 2, "hidden": 8, "backend": "torch"},
        "data": {"name": "tensor_file", "path": str(tmp_path / "d.pt"), "val_fraction": 0.0},
        "train": {"epochs": 2, "batch_size": 8}}))
    out = tmp_path / "run"

    def sigint_at_3(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    real_fit = loop.fit
    monkeypatch.setattr(loop, "fit", functools.partial(real_fit, on_step=sigint_at_3))
    assert main(["train", str(cfg), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"interrupted; resume with: spikeseq train --resume --out {out}" in err
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(loop, "fit", real_fit)
    assert main(["train", "--resume", "--out", str(out)]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "finished" and meta["resumed"] == 1 and meta["step"] == 10
    assert (out / "eval.json").is_file()


def test_a_torchrun_worker_leaves_without_the_interpreter_teardown(monkeypatch):
    # under torchrun (WORLD_SIZE > 1) the worker exits through os._exit: gloo's threads racing static destructors
    # at interpreter exit aborted a finished rank; a plain process exits as usual
    exits = []

    class Left(Exception):
        pass

    def fake_exit(code):  # os._exit does not return
        exits.append(code)
        raise Left

    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Left):
        cli.leave(3)
    assert exits == [3]
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(SystemExit) as e:
        cli.leave(4)
    assert e.value.code == 4 and exits == [3]
