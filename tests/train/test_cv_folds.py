"""k-fold cross-validation inside the training split (``data.cv_folds`` / ``data.cv_fold``): the folds partition the
training split, are class-stratified, do not depend on the run seed, and bad settings are refused by name."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ConfigError, DataError
from spikeseq.train.config import from_dict
from spikeseq.train.datasets import Split, cv_folds_of, cv_split, prepare


def _labels(counts: list[int]) -> torch.Tensor:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(3))]


@pytest.mark.parametrize("folds", [2, 3, 10])
def test_folds_partition_and_stratify(folds):
    counts = [37, 12, 50, 3]
    y = _labels(counts)
    of = cv_folds_of(y, folds)
    sizes = torch.bincount(of, minlength=folds)
    assert int(sizes.sum()) == len(y) and int(sizes.max() - sizes.min()) <= 1
    for c, n in enumerate(counts):   # each class dealt out in turn: its share per fold differs by at most one
        per_fold = torch.bincount(of[y == c], minlength=folds)
        assert int(per_fold.max() - per_fold.min()) <= 1 and int(per_fold.sum()) == n


def test_cv_split_is_the_fold_and_its_complement():
    y = _labels([20, 20, 20])
    train = Split(torch.arange(len(y), dtype=torch.float32)[:, None, None], y)
    seen = []
    for k in range(4):
        rest, fold = cv_split(train, 4, k)
        ids_rest, ids_fold = set(rest.x.flatten().tolist()), set(fold.x.flatten().tolist())
        assert not ids_rest & ids_fold and len(ids_rest | ids_fold) == len(y)
        assert torch.equal(fold.y, y[fold.x.flatten().long()])
        seen += sorted(ids_fold)
    assert sorted(seen) == list(range(len(y)))   # every sample is tested exactly once over the folds


def test_prepare_tests_on_a_fold_whatever_the_seed(tiny_raw, tiny_data):
    raw = tiny_raw(tiny_data)
    raw["data"].update(cv_folds=5, cv_fold=2)
    cfg = from_dict(raw)
    a, b = prepare(cfg.data, 0), prepare(cfg.data, 11)
    assert torch.equal(a.test.x, b.test.x) and len(a.test) == 24   # 120 training samples / 5
    assert len(a.train) + len(a.val) == 96 and a.info["cv"]["fold"] == 2
    assert not torch.equal(a.val.x, b.val.x)       # the validation split still follows the seed
    own_test = torch.load(tiny_data)["test"]["x"]
    assert not any(torch.equal(own_test[0], s) for s in a.test.x)


@pytest.mark.parametrize("data, msg", [
    ({"cv_folds": 5}, "needs both data.cv_folds"),
    ({"cv_fold": 0}, "needs both data.cv_folds"),
    ({"cv_folds": 1, "cv_fold": 0}, "cv_folds must be >= 2"),
    ({"cv_folds": 5, "cv_fold": 5}, r"cv_fold must be in 0\.\.4"),
    ({"cv_folds": 5, "cv_fold": -1}, r"cv_fold must be in 0\.\.4"),
])
def test_bad_fold_settings_are_refused(tiny_raw, tiny_data, data, msg):
    raw = tiny_raw(tiny_data)
    raw["data"].update(data)
    with pytest.raises(ConfigError, match=msg):
        from_dict(raw, "cfg.toml")


def test_more_folds_than_samples_is_a_data_error():
    with pytest.raises(DataError, match="at least 8 training samples"):
        cv_split(Split(torch.zeros(5, 1, 1), torch.zeros(5, dtype=torch.int64)), 8, 0)
