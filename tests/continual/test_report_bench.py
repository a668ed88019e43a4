"""The report of a continual run (accuracy-matrix heat map) and `spikeseq bench hlop` at a tiny size."""

from __future__ import annotations

import argparse
import json

import pytest


def test_report_shows_accuracy_matrix(tmp_path):
    pytest.importorskip("matplotlib")
    from spikeseq.report.build import write_report

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "finished", "task": "continual"}))
    (run / "config.json").write_text(json.dumps({"name": "x", "model": {"name": "snn_mlp"}}))
    r = [[0.9, 0.1], [0.8, 0.95]]
    quality = [{"l1": {"k": 4, "captured": 0.9, "best": 0.95, "ratio": 0.9 / 0.95}},
               {"l1": {"k": 2, "captured": 0.5, "best": 0.8, "ratio": 0.625}}]
    (run / "continual.json").write_text(json.dumps({"R": r, "acc": 0.875, "bwt": -0.1, "method": "hlop",
                                                    "stream": "digits_split", "setting": "task",
                                                    "tasks": ["a", "b"],
                                                    "diagnostics": {"subspace_quality": quality}}))
    paths = write_report(run)
    md = paths["markdown"].read_text()
    png = (run / "report" / "accuracy_matrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy_matrix.png" in md and "87.50%" in md and "-10.00 %" in md
    assert "| after task 1 | 80.00% | 95.00% |" in md
    assert "| Hebbian subspace | l1 |" in md and "| task 1 | k 2: 0.500 / 0.800 |" in md


def test_bench_hlop_inference_unchanged(tmp_path, capsys):
    from spikeseq.bench import hlop

    p = argparse.ArgumentParser()
    hlop.register(p)
    out = tmp_path / "b.json"
    args = p.parse_args(["--steps", "3", "--batch", "4", "--inputs", "24", "--hidden", "12", "--reps", "1",
                         "--json", str(out)])
    assert hlop.run(args) == 0
    res = json.loads(out.read_text())
    assert res["inference_identical"] is True and res["inference_ops_identical"] is True
    assert res["ops"] and set(res["median_s"]) == {"plain step", "HLOP step"}


def test_bench_hlop_times_a_recipes_own_model(tmp_path):
    """``--recipe`` of a model other than snn_mlp (the EGRU stream): the registry builds it, HLOP protects the
    recipe's layers (the EGRU's weight_ih / weight_hh through its WeightInputs), inference stays identical."""
    from pathlib import Path

    from spikeseq.bench import hlop

    p = argparse.ArgumentParser()
    hlop.register(p)
    out = tmp_path / "b.json"
    recipe = Path(__file__).parents[2] / "examples/hlop/hapt_subjects_egru.toml"
    args = p.parse_args(["--recipe", str(recipe), "--steps", "3", "--batch", "4", "--reps", "1", "--json", str(out)])
    assert hlop.run(args) == 0
    res = json.loads(out.read_text())
    assert res["layers"] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "out"] and res["shape"] == [3, 4, 6]
    assert res["network"].startswith("egru_classifier") and res["input_mode"] == "step"
    assert res["inference_identical"] is True and res["inference_ops_identical"] is True
    assert res["ratio_wall"] > 0 and res["ops"]
