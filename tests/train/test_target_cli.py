"""``spikeseq train`` with ``[train] target`` on bad input: refused with a spikeseq error before the run directory is
written (``--nproc`` on the command line, a node the target cannot run, NaN in the data)."""

from __future__ import annotations

import sys

import pytest
import tomli_w
import torch

from spikeseq.errors import ConfigError
from tests.train.test_resume_families import LM, TINY


def _train(tmp_path, raw, monkeypatch, *extra) -> int:
    from spikeseq.cli import main

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(tomli_w.dumps(raw))
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    argv = ["train", str(recipe), "--out", str(tmp_path / "run"), *extra]
    monkeypatch.setattr(sys, "argv", ["spikeseq", *argv])
    return main(argv)


@pytest.mark.parametrize("target", ["loihi", "spinnaker2"])
def test_nproc_on_the_command_line_is_refused_for_a_target_run(tmp_path, tiny_raw, tiny_data, monkeypatch, capsys,
                                                               target):
    """Regression: ``--nproc 2`` overrode ``train.nproc`` after the config checks and started torchrun workers."""
    assert _train(tmp_path, tiny_raw(tiny_data, target=target), monkeypatch, "--nproc", "2") == 2
    assert f"train.target = '{target}' runs in one process; drop --nproc 2" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_node_the_target_cannot_run_leaves_no_run_directory(tmp_path, tiny_raw, tiny_data, monkeypatch, capsys):
    raw = tiny_raw(tiny_data, target="loihi")
    raw["model"] = {"name": "l2mu", "input_size": 4, "n_classes": 3, "hidden_size": 8, "memory_size": 4,
                    "input_module": "direct", "readout": "membrane"}   # subtractive reset, no reset_policy
    assert _train(tmp_path, raw, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "target mode 'loihi'" in err and "reset='subtract'" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("target", ["loihi", "spinnaker2"])
def test_nan_in_the_training_data_is_refused(tmp_path, tiny_raw, tiny_data, monkeypatch, capsys, target):
    blob = torch.load(tiny_data)
    blob["train"]["x"][3, 2, 1] = float("nan")
    torch.save(blob, tiny_data)
    assert _train(tmp_path, tiny_raw(tiny_data, target=target), monkeypatch) == 2
    err = capsys.readouterr().err
    assert "sample 3 holds NaN or Inf" in err, err
    assert not (tmp_path / "run").exists()


def test_shape_dependent_refusal_comes_before_the_run_directory(tmp_path, tiny_raw, tiny_data, monkeypatch, capsys):
    """Regression: a model whose input shape cannot be inferred (EGRU classifier) passed the preflight
    and was refused on Loihi only inside fit, after the run directory was written; ``[export] dt`` is the time step
    target mode uses (the model has none), as ``spikeseq export`` does."""
    from spikeseq.train.config import from_dict
    from spikeseq.train.datasets import prepare
    from spikeseq.train.loop import preflight, preflight_target

    raw = tiny_raw(tiny_data, target="loihi")
    raw["model"] = {"name": "egru_classifier", "input_size": 4, "n_classes": 3, "hidden": 8}
    raw["export"] = {"dt": 1e-3}
    assert _train(tmp_path, raw, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "target mode 'loihi'" in err and "cannot run on loihi" in err and "EGRUCell" in err, err
    assert not (tmp_path / "run").exists()
    raw["train"]["target"] = "spinnaker2"
    cfg = from_dict(raw)
    preflight(cfg)
    preflight_target(cfg, prepare(cfg.data, cfg.train.seed))   # the EGRU cell trains for SpiNNaker2
    assert _train(tmp_path, raw, monkeypatch) == 0


@pytest.mark.parametrize("target", ["loihi", "spinnaker2"])
@pytest.mark.parametrize("name", sorted(set(TINY) - LM))
def test_every_model_the_check_accepts_runs_in_target_mode(name, target):
    """For every registered classification model: :func:`check_target` with the data's shape refuses it with a
    ConfigError naming the target, or target mode runs a forward and backward pass on it (no failure mid-run)."""
    from spikeseq.models.registry import build
    from spikeseq.train.target import TargetMode, TargetSettings, check_target

    torch.manual_seed(0)
    model = build(name, **TINY[name])
    settings = TargetSettings(target, reset_policy="zero") if target == "loihi" else TargetSettings(target)
    x = (torch.rand(6, 2, 4) < 0.5).float()
    try:
        check_target(model, settings, dt=1e-3 if not _has_dt(model) else None, input_shape=(4,))
    except ConfigError as e:
        assert f"target mode '{target}'" in str(e) and f"cannot run on {target}" in str(e)
        return
    tm = TargetMode(model, settings, dt=None if _has_dt(model) else 1e-3)
    y, _ = tm(x)
    y.float().sum().backward()
    assert torch.isfinite(y).all()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def _has_dt(model) -> bool:
    return any(isinstance(getattr(m, "dt", None), float) for m in model.modules())


def test_out_of_range_export_setting_is_refused_before_the_run_directory(tmp_path, tiny_raw, tiny_data, monkeypatch,
                                                                         capsys):
    raw = tiny_raw(tiny_data, target="loihi")
    raw["export"] = {"loihi": {"input_bits": 40}}
    assert _train(tmp_path, raw, monkeypatch) == 2
    assert "input_bits must be in 2..24" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_classification_data_under_the_language_modelling_task_is_named():
    """Class labels under the language-modelling task (a model that solves both, given the wrong data) get an error
    that says so, not an IndexError from the loss."""
    from spikeseq.errors import ShapeError
    from spikeseq.train.tasks.language_modelling import token_logits

    with pytest.raises(ShapeError, match=r'targets \[B, T\].*\(3,\).*task = "classification"'):
        token_logits(torch.zeros(5, 3, 4), torch.zeros(3, dtype=torch.long))
