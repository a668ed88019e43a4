"""``examples/egru/cv_results.py``: the paired gap of a (repeated) cross-validation, counted by hand."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).parents[3] / "examples/egru/cv_results.py"


def _module():
    spec = importlib.util.spec_from_file_location("_cv_results", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(fold: int, seed: int, correct: list[int]) -> dict:
    return {"folds": 2, "fold": fold, "seed": seed, "correct": correct, "test_acc": sum(correct) / len(correct),
            "activity_sparsity": 0.5}


def test_gap_standard_errors_and_discordant_counts():
    cv = _module()
    # 2 folds x 2 seeds (repeats 0 and 10), 2 recordings per fold
    egru = [_run(0, 0, [1, 0]), _run(1, 1, [1, 1]), _run(0, 10, [1, 1]), _run(1, 11, [0, 1])]
    gru = [_run(0, 0, [1, 1]), _run(1, 1, [1, 1]), _run(0, 10, [1, 1]), _run(1, 11, [1, 0])]
    s = cv.summarise(egru, gru)
    # per recording, GRU - EGRU averaged over the repeats: (f0,0) 0, (f0,1) 0.5, (f1,0) 0.5, (f1,1) -0.5
    rec = [0.0, 50.0, 50.0, -50.0]
    mean = sum(rec) / 4
    se = math.sqrt(sum((r - mean) ** 2 for r in rec) / 3 / 4)
    assert s["gru_minus_egru_points"] == pytest.approx(12.5) and s["se_over_recordings"] == pytest.approx(se)
    # per (fold, seed) run: 50, 0, 0, 0 points
    assert s["gru_minus_egru_points_pair_mean"] == pytest.approx(12.5)
    assert s["se_over_pairs"] == pytest.approx(math.sqrt(sum((g - 12.5) ** 2 for g in (50, 0, 0, 0)) / 3 / 4))
    assert s["gap_per_repeat"] == {"0": pytest.approx(25.0), "10": pytest.approx(0.0)}
    assert (s["only_gru_right"], s["only_egru_right"], s["tests"], s["recordings"]) == (2, 1, 8, 4)
    assert s["egru_acc"] == pytest.approx(6 / 8) and s["gru_acc"] == pytest.approx(7 / 8)


def test_unpaired_runs_are_refused():
    cv = _module()
    with pytest.raises(SystemExit, match="one run per"):
        cv.summarise([_run(0, 0, [1])], [_run(1, 1, [1])])
