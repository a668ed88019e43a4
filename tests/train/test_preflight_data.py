"""spikeseq train checks the model against the data before the run directory exists (preflight_data)."""

from __future__ import annotations

import pytest
import tomli_w

from spikeseq.cli import main


def _write(tmp_path, raw: dict):
    path = tmp_path / "recipe.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def test_a_classifier_with_too_few_outputs_is_refused_before_the_run_directory(tmp_path, tiny_data, tiny_raw,
                                                                                capsys):
    raw = tiny_raw(tiny_data, epochs=1)
    raw["model"]["n_out"] = 2                      # the data has 3 classes
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, raw)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the model has 2 outputs but tensor_file has 3 classes" in err and "n_classes = 3" in err
    assert not out.exists()


def test_a_classifier_with_the_wrong_input_width_is_refused_before_the_run_directory(tmp_path, tiny_data, tiny_raw,
                                                                                      capsys):
    raw = tiny_raw(tiny_data, epochs=1)
    raw["model"]["n_in"] = 7                       # the data has 4 channels
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, raw)), "--out", str(out)]) == 2
    assert "does not fit the data (tensor_file, input (8, 4))" in capsys.readouterr().err
    assert not out.exists()


def test_more_outputs_than_classes_is_a_warning(tmp_path, tiny_data, tiny_raw):
    raw = tiny_raw(tiny_data, epochs=1, max_steps=1)
    raw["model"]["n_out"] = 5
    with pytest.warns(UserWarning, match="5 outputs but tensor_file has 3 classes"):
        assert main(["train", str(_write(tmp_path, raw)), "--out", str(tmp_path / "run"), "--no-eval"]) == 0


def _text(tmp_path):
    base = tmp_path / "text" / "tinyshakespeare"
    base.mkdir(parents=True)
    (base / "input.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40)
    return tmp_path


def _lm(tmp_path, **model) -> dict:
    return {"name": "lm", "task": "language_modelling",
            "model": {"name": "egru_lm", "vocab": 27, "embed": 4, "hidden": 8, **model},
            "data": {"name": "tinyshakespeare", "root": str(_text(tmp_path)), "seq_len": 20},
            "train": {"epochs": 1, "batch_size": 8, "lr": 0.01, "threads": 1, "max_steps": 2}}


def test_a_vocabulary_smaller_than_the_text_is_refused_before_the_run_directory(tmp_path, capsys):
    raw = _lm(tmp_path, vocab=10)                  # the fixture text has 27 distinct characters
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, raw)), "--out", str(out)]) == 2
    assert "the model's vocabulary needs at least 27 tokens" in capsys.readouterr().err
    assert not out.exists()


def test_a_model_whose_own_check_refuses_the_ids_still_gets_the_vocabulary_hint(tmp_path, capsys):
    raw = _lm(tmp_path)
    raw["model"] = {"name": "rwkv4", "size": "tiny", "vocab": 10, "n_layer": 1, "n_embd": 8}  # raises ConfigError
    out = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, raw)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "outside the vocabulary [0, 10)" in err and "the model's vocabulary needs at least 27 tokens" in err
    assert not out.exists()


def test_a_pruning_schedule_the_run_never_reaches_is_a_warning(tmp_path):
    raw = _lm(tmp_path, prune={"sparsity": 0.9, "start": 0, "end": 100, "every": 1})
    with pytest.warns(UserWarning, match=r"reaches sparsity 0.9 at optimizer step 100, but the run has 2 steps"):
        assert main(["train", str(_write(tmp_path, raw)), "--out", str(tmp_path / "run"), "--no-eval"]) == 0


def test_eval_and_profile_default_to_the_checkpoint_the_run_evaluates(tmp_path, tiny_data, tiny_raw):
    import json

    raw = tiny_raw(tiny_data, epochs=1, eval_checkpoint="last")
    run = tmp_path / "run"
    assert main(["train", str(_write(tmp_path, raw)), "--out", str(run)]) == 0
    assert json.loads((run / "eval.json").read_text())["checkpoint"] == "last"
    assert main(["eval", str(run)]) == 0               # rewrites eval.json with the same checkpoint
    assert json.loads((run / "eval.json").read_text())["checkpoint"] == "last"
    assert main(["profile", str(run), "--samples", "2"]) == 0
    assert json.loads((run / "profile.json").read_text())["checkpoint"] == "last"
    assert main(["profile", str(run), "--samples", "2", "--checkpoint", "best"]) == 0
    assert json.loads((run / "profile.json").read_text())["checkpoint"] == "best"
