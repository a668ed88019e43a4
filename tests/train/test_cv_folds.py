"""k-fold cross-validation inside the training split (``data.cv_folds`` / ``data.cv_fold``): the folds partition the
training split, are class-stratified, do not depend on the run seed, and bad settings are refused by name."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ConfigError, DataError
from spikeseq.train.config import from_dict
from spikeseq.train.datasets import Split, cv_folds_of, cv_split, groups_of, holdout_groups, prepare


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


def test_grouped_folds_keep_each_group_in_one_fold():
    # 9 groups of sizes 1..9 (45 samples), labels unrelated to groups
    groups = torch.cat([torch.full((n,), 100 + n) for n in range(1, 10)])
    y = torch.arange(len(groups)) % 3
    of = cv_folds_of(y, 3, groups)
    for gid in torch.unique(groups):
        assert len(torch.unique(of[groups == gid])) == 1
    # largest first to the emptiest fold: 9 -> 0, 8 -> 1, 7 -> 2, 6 -> 2 (13), 5 -> 1 (13), 4 -> 0 (13),
    # 3 -> 0 (16), 2 -> 1 (15), 1 -> 2 (14)
    assert torch.bincount(of, minlength=3).tolist() == [16, 15, 14]
    assert of[groups == 109].unique().tolist() == [0] and of[groups == 106].unique().tolist() == [2]
    assert torch.equal(of, cv_folds_of(y, 3, groups))      # fixed by CV_SPLIT_SEED


def test_cv_split_by_subject_and_too_few_groups():
    groups = torch.tensor([1, 1, 2, 2, 3, 3, 4])
    train = Split(torch.arange(7, dtype=torch.float32)[:, None, None], torch.zeros(7, dtype=torch.int64), groups,
                  "subject")
    tested = []
    for k in range(4):
        rest, fold = cv_split(train, 4, k)
        assert not set(rest.groups.tolist()) & set(fold.groups.tolist())
        assert fold.group_kind == "subject"
        tested += fold.groups.tolist()
    assert sorted(tested) == groups.tolist()
    with pytest.raises(DataError, match=r"keeps each subject in one fold.*has 4 subjects: use at most 4 folds"):
        cv_split(train, 5, 0)


def test_groups_are_read_from_the_dataset(data_root, tiny_raw, tiny_data):
    """HAPT windows (50 % overlap) carry their subject: a run's folds are by subject, no test subject's windows
    are in its training part, and the run's data info names them."""
    from spikeseq.data import har

    from ..conftest import require_path

    root = require_path(data_root / "har" / "hapt")
    raw = tiny_raw(tiny_data)
    raw["data"] = {"name": "hapt", "root": str(root), "cv_folds": 5, "cv_fold": 1, "val_fraction": 0.0}
    prep = prepare(from_dict(raw).data, 0)
    windows = har.hapt_windows(root, "train")
    test_subjects = prep.info["cv"]["test_groups"]
    assert prep.info["cv"]["grouped_by"] == "subject" and len(prep.train) + len(prep.test) == len(windows)
    in_fold = torch.isin(windows.subject, torch.tensor(test_subjects))
    assert int(in_fold.sum()) == len(prep.test) and 0 < len(test_subjects) < len(torch.unique(windows.subject))
    # the fold's windows are exactly the test subjects' windows (matched by content)
    assert torch.equal(torch.sort(prep.test.x.sum((1, 2)))[0], torch.sort(windows.x[in_fold].sum((1, 2)))[0])
    # an object whose sources are partly unknown (negative, as HARWindows marks them) is not grouped
    part = type("Windows", (), {"subject": torch.tensor([1, -1, 2, 2])})()
    whole = type("Windows", (), {"subject": torch.tensor([1, 1, 2, 2])})()
    assert groups_of(part, 4) == (None, None) and groups_of(whole, 3) == (None, None)   # unknown; wrong length
    groups, kind = groups_of(whole, 4)
    assert kind == "subject" and groups.tolist() == [1, 1, 2, 2]


def test_validation_takes_whole_groups():
    groups = torch.tensor([5] * 6 + [7] * 3 + [9] * 1)
    for seed in range(6):
        taken = holdout_groups(groups, 2, torch.Generator().manual_seed(seed))
        held = set(groups[taken].tolist())
        assert held and held != {5, 7, 9}                          # at least one group, never all
        assert not held & set(groups[~taken].tolist())             # a group is held out whole
        assert int(taken.sum()) >= 2
    # asking for everything still leaves one group to train on; a single group gives no validation split
    assert set(groups[holdout_groups(groups, 10, torch.Generator().manual_seed(0))].tolist()) != {5, 7, 9}
    assert not holdout_groups(torch.zeros(4, dtype=torch.int64), 2, torch.Generator().manual_seed(0)).any()


def test_prepare_validates_on_held_out_subjects(data_root, tiny_raw, tiny_data):
    from ..conftest import require_path

    root = require_path(data_root / "har" / "hapt")
    raw = tiny_raw(tiny_data)
    raw["data"] = {"name": "hapt", "root": str(root), "val_fraction": 0.1}
    a, b = prepare(from_dict(raw).data, 0), prepare(from_dict(raw).data, 1)
    for prep in (a, b):
        val_subjects = prep.info["val_groups"]
        assert prep.info["val_grouped_by"] == "subject" and 1 <= len(val_subjects) < 21
        assert not set(prep.train.groups.tolist()) & set(val_subjects)
        assert set(prep.val.groups.tolist()) == set(val_subjects)
        assert len(prep.val) >= round(0.1 * (len(prep.train) + len(prep.val)))
    assert a.info["val_groups"] != b.info["val_groups"]            # the run's seed picks them


@pytest.mark.parametrize("n_groups", [12, 30])
def test_cv_split_refuses_groups_of_another_length(n_groups):
    """A Split whose groups are not one per sample: 12 groups for 20 samples silently drop 8 samples from every
    fold (neither trained nor tested); 30 raise a bare IndexError."""
    x = torch.arange(20, dtype=torch.float32)[:, None, None]
    train = Split(x, torch.arange(20) % 3, torch.arange(n_groups) % 4, "subject")
    with pytest.raises(DataError, match="one group per sample"):
        cv_split(train, 3, 0)


def test_cv_split_takes_numpy_groups():
    """Split.groups given as a numpy array (the type HAR loaders read subjects as): TypeError from torch.unique."""
    x = torch.arange(20, dtype=torch.float32)[:, None, None]
    train = Split(x, torch.arange(20) % 3, (torch.arange(20) % 4).numpy(), "subject")
    tested = []
    for k in range(3):
        rest, fold = cv_split(train, 3, k)
        assert not set(torch.as_tensor(rest.groups).tolist()) & set(torch.as_tensor(fold.groups).tolist())
        tested += fold.x.flatten().long().tolist()
    assert sorted(tested) == list(range(20))


def test_groups_of_reads_whole_numbers_and_skips_unknown_sources():
    both = type("W", (), {"groups": torch.tensor([1, -1, 2]), "subject": torch.tensor([4.0, 4.0, 6.0])})()
    groups, kind = groups_of(both, 3)   # "groups" has an unknown source: the whole-number float subjects are used
    assert kind == "subject" and groups.dtype == torch.int64 and groups.tolist() == [4, 4, 6]
    bads = (torch.tensor([1.5, 2.0, 3.0]), torch.tensor([1.0, float("nan"), 2.0]), torch.tensor([True, False, True]))
    for bad in bads:
        assert groups_of(type("W", (), {"subject": bad})(), 3) == (None, None)
