"""Probe of k-fold cross-validation (data.cv_folds / data.cv_fold) and examples/egru/cv_results.py: settings that
only the TOML loader checked, and repeats told apart by the seeds the runs actually used."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeseq.errors import ConfigError
from spikeseq.train.config import DataConfig
from spikeseq.train.datasets import Split, cv_folds_of, cv_split, prepare

_CV = Path(__file__).parents[2] / "examples/egru/cv_results.py"


def _tensor_file(tmp_path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([5, 5, 5, 2, 2, 2, 2, 9, 9, 9] * 2)   # labels with gaps, not starting at 0
    path = tmp_path / "d.pt"
    torch.save({"train": {"x": torch.rand(20, 4, 3, generator=g), "y": y},
                "test": {"x": torch.rand(4, 4, 3, generator=g), "y": torch.tensor([2, 5, 9, 9])}}, path)
    return path


def test_folds_partition_the_training_split_for_gapped_labels_and_k_equal_n():
    y = torch.tensor([7, 7, 7, 3, 3, 9, 9, 9, 9, 9, 3, 7])
    for k in (2, 5, 12):   # 5 > the count of class 3; 12 = number of samples
        f = cv_folds_of(y, k)
        assert sorted(torch.bincount(f, minlength=k).tolist()) in ([len(y) // k] * (k - len(y) % k)
                                                                    + [len(y) // k + 1] * (len(y) % k),)
        for c in (3, 7, 9):   # each class's share per fold differs by at most one
            counts = torch.bincount(f[y == c], minlength=k)
            assert int(counts.max() - counts.min()) <= 1
    x = torch.arange(12.0)[:, None, None]
    seen = torch.cat([cv_split(Split(x, y), 12, i)[1].x.flatten() for i in range(12)])
    assert sorted(seen.tolist()) == list(range(12))   # every sample tested exactly once
    assert cv_split(Split(x, y), np.int64(3), np.int64(1))[1].x.shape[0] == 4   # numpy integers accepted


def test_python_data_config_is_checked_like_the_toml(tmp_path):
    path = str(_tensor_file(tmp_path))
    # previously: cv_fold left out was silently fold 0, cv_folds = 1 an empty training split, 2.5 a RuntimeError
    for bad, match in ((dict(cv_folds=5), "needs both"), (dict(cv_folds=1, cv_fold=0), ">= 2"),
                       (dict(cv_folds=2.5, cv_fold=0), "integer"), (dict(cv_folds=True, cv_fold=0), "integer"),
                       (dict(cv_fold=1), "needs both"), (dict(cv_folds=3, cv_fold=3), r"0\.\.2")):
        with pytest.raises(ConfigError, match=match):
            prepare(DataConfig(name="tensor_file", kwargs={"path": path}, **bad), 0)
    with pytest.raises(ConfigError, match="integers"):
        cv_split(Split(torch.zeros(4, 1, 1), torch.zeros(4, dtype=torch.int64)), 2.0, 0)
    d = prepare(DataConfig(name="tensor_file", kwargs={"path": path}, cv_folds=4, cv_fold=3, val_fraction=0.0,
                           normalize=True, max_test=3), 0)
    assert (d.info["n_train"], d.info["n_test"], d.n_classes) == (15, 3, 10)
    assert d.info["cv"]["fold"] == 3


def _cv():
    spec = importlib.util.spec_from_file_location("_cv_results_probe", _CV)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(fold: int, seed: int, correct: list[int], folds: int = 2) -> dict:
    return {"folds": folds, "fold": fold, "seed": seed, "correct": correct, "test_acc": sum(correct) / len(correct)}


def test_repeats_with_the_same_seed_for_every_fold():
    cv = _cv()
    # two repeats, seeds 0 and 1 on both folds: previously grouped by seed - fold into three "repeats" -1, 0, 1
    egru = [_run(0, 0, [1, 0]), _run(1, 0, [1, 1]), _run(0, 1, [1, 1]), _run(1, 1, [0, 1])]
    gru = [_run(0, 0, [1, 1]), _run(1, 0, [1, 1]), _run(0, 1, [1, 1]), _run(1, 1, [1, 1])]
    s = cv.summarise(egru, gru)
    assert s["gap_per_repeat"] == {"0": pytest.approx(25.0), "1": pytest.approx(25.0)}
    # seed = repeat + fold keeps its grouping (the committed record's convention)
    egru2 = [_run(0, 0, [1, 0]), _run(1, 1, [1, 1]), _run(0, 10, [1, 1]), _run(1, 11, [0, 1])]
    gru2 = [_run(0, 0, [1, 1]), _run(1, 1, [1, 1]), _run(0, 10, [1, 1]), _run(1, 11, [1, 0])]
    assert cv.summarise(egru2, gru2)["gap_per_repeat"] == {"0": pytest.approx(25.0), "10": pytest.approx(0.0)}


def test_unmatched_repeats_duplicates_and_fold_counts_are_refused():
    cv = _cv()
    mixed = [_run(0, 0, [1]), _run(1, 5, [1]), _run(0, 3, [1])]
    with pytest.raises(SystemExit, match="repeats"):
        cv.summarise(mixed, [dict(r) for r in mixed])
    with pytest.raises(SystemExit, match="one run per"):   # a duplicate run
        cv.summarise([_run(0, 0, [1]), _run(0, 0, [1])], [_run(0, 0, [1]), _run(0, 0, [1])])
    with pytest.raises(SystemExit, match=r"same data\.cv_folds"):
        cv.summarise([_run(0, 0, [1], folds=2)], [_run(0, 0, [1], folds=3)])


def test_runs_of_other_recordings_or_in_both_lists_are_refused():
    cv = _cv()
    a, b = _run(0, 0, [1, 1]), _run(0, 0, [1, 0])
    a["test_labels"], b["test_labels"] = "aaaa", "bbbb"   # e.g. the GRU run with data.max_test (same length here)
    with pytest.raises(SystemExit, match="different recordings"):
        cv.summarise([a], [b])
    a["run"] = b["run"] = "runs/cv/f0"
    b["test_labels"] = "aaaa"
    with pytest.raises(SystemExit, match="both --egru and --gru"):
        cv.summarise([a], [b])


def test_a_run_without_eval_or_checkpoint_is_named(tmp_path):
    cv = _cv()
    run = tmp_path / "egru-f0"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"egru-f0: cannot be collected \(FileNotFoundError"):   # no eval.json
        cv.fold_run(run)
