"""Task streams (spikeseq.data.streams) and the continual task (spikeseq.train.tasks.continual): tiny real runs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from spikeseq.data import streams
from spikeseq.errors import ConfigError, ContinualError, ParameterError
from spikeseq.train import stream as S
from spikeseq.train.tasks import continual as C
from spikeseq.train.tasks import get_task


def _recipe(method: str, stream: str = "digits_split", **method_kw) -> dict:
    raw = {"task": "continual", "name": f"t_{method}",
           "model": {"name": "snn_mlp", "hidden": [32], "tau_mem": 0.02, "dt": 1e-3},
           "stream": {"name": stream, "steps": 3, "n_tasks": 2},
           "continual": {"method": method},
           "train": {"epochs": 1, "batch_size": 64, "lr": 0.05, "optimizer": "sgd", "momentum": 0.9, "seed": 0}}
    if method_kw:
        raw["continual"][method] = method_kw
    return raw


def test_digits_streams_shapes_and_labels():
    s = streams.digits_split(steps=4)
    assert s.setting == "task" and len(s) == 5 and s.n_outputs == 10 and s.sample_shape == (4, 64)
    assert [t.classes for t in s.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert sum(len(t.train_y) + len(t.test_y) for t in s.tasks) == 1797  # every bundled digit exactly once
    p = streams.digits_permuted(steps=2, n_tasks=3)
    assert p.setting == "domain" and p.tasks[0].classes == list(range(10))
    x0, x1 = p.tasks[0].train_x, p.tasks[1].train_x
    assert torch.equal(x0.sum(-1), x1.sum(-1)) and not torch.equal(x0, x1)  # same pixels, permuted


def test_split_digits_domain_incremental_shares_one_two_output_head():
    task, dom = streams.digits_split(steps=2), streams.build("digits_split_domain", steps=2)
    assert dom.name == "digits_split_domain" and dom.setting == "domain" and dom.n_outputs == 2
    assert [t.classes for t in dom.tasks] == [[0, 1]] * 5
    for a, b in zip(task.tasks, dom.tasks):  # the same samples and local labels, only the head differs
        assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
        assert torch.equal(a.test_y, b.test_y) and set(b.train_y.tolist()) == {0, 1}
    assert torch.equal(C.task_mask(dom, 3), torch.zeros(2))  # nothing masked: one shared head
    with pytest.raises(ParameterError, match="setting must be one of"):
        streams.digits_split(steps=1, setting="class")
    with pytest.raises(ParameterError, match="for the task-incremental one use digits_split"):
        streams.build("digits_split_domain", steps=1, setting="task")


def test_stream_bad_input():
    s = streams.digits_permuted(steps=2, n_tasks=2)
    t = s.tasks[1]
    t.train_x = t.train_x[:, :1]  # other time length: cannot share the head
    with pytest.raises(ContinualError, match="same input shape"):
        streams.check_stream(s)
    s = streams.digits_permuted(steps=2, n_tasks=2)
    s.tasks[1].train_y = s.tasks[1].train_y.float() + 0.5
    with pytest.raises(ContinualError, match="whole class indices"):
        streams.check_stream(s)
    s = streams.digits_permuted(steps=2, n_tasks=2)
    s.tasks[0].test_x[3, 0, 0] = float("nan")
    with pytest.raises(ContinualError, match="test inputs contain NaN or Inf"):
        streams.check_stream(s)
    with pytest.raises(ContinualError, match="unknown task stream"):
        streams.build("cifar1000")
    with pytest.raises(ContinualError, match="out of range"):
        C.task_mask(streams.digits_split(steps=1), 5)


def test_continual_task_registered_and_masks():
    assert get_task("continual").report == ("R", "acc", "bwt")
    s = streams.digits_split(steps=1, n_tasks=2)
    m = C.task_mask(s, 1)
    assert torch.equal(torch.isfinite(m).nonzero().flatten(), torch.tensor([2, 3])) and float(m[2]) == 0.0


@pytest.mark.parametrize("method,kw", [("finetune", {}), ("hlop", {"k_init": 8, "k_inc": 4}),
                                       ("gpm", {"k_init": 8, "k_inc": 4}), ("ewc", {"lam": 10.0}),
                                       ("multitask", {})])
def test_run_writes_accuracy_matrix(tmp_path, method, kw):
    cfg = C.from_dict(_recipe(method, **kw))
    res = S.run(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / C.RESULT).read_text())
    r = torch.tensor([[math.nan if v is None else v for v in row] for row in saved["R"]], dtype=torch.float64)
    assert r.shape == (2, 2) and saved["method"] == method
    assert saved["acc"] == pytest.approx(float(r[-1].mean()))
    assert saved["bwt"] == pytest.approx(float(r[1, 0] - r[0, 0]))
    assert res["acc"] > 0.6  # two 2-class tasks of digits: well above chance after one epoch each
    if method == "multitask":
        assert saved["bwt"] == 0.0
    if method in ("hlop", "gpm"):
        assert res["memory"] == {"layers.1": 12, "layers.3": 12, "floats": 12 * 64 + 12 * 32}  # sum k n


def test_resume_after_a_task_gives_the_same_result(tmp_path):
    cfg = C.from_dict(_recipe("hlop", k_init=8, k_inc=4))
    full = S.run(cfg, tmp_path / "a")
    S.run(cfg, tmp_path / "b")
    ck = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)
    # rewind the checkpoint to "after task 0" by re-running task 0 only, then resume
    cfg0 = C.from_dict({**_recipe("hlop", k_init=8, k_inc=4)})
    stream = C.build_stream(cfg0)
    stream.tasks = stream.tasks[:1]
    S.run(cfg0, tmp_path / "c", stream=stream)
    ck0 = torch.load(tmp_path / "c" / "checkpoints" / "last.pt", weights_only=False)
    assert ck0["next_task"] == 1 and ck["next_task"] == 2
    r0 = torch.full((2, 2), math.nan, dtype=torch.float64)
    r0[0] = torch.tensor(full["R"][0], dtype=torch.float64)
    ck0["R"] = r0
    torch.save(ck0, tmp_path / "c" / "checkpoints" / "last.pt")
    resumed = S.run(cfg, tmp_path / "c", resume=True)
    assert resumed["R"] == full["R"]


def test_recipe_errors():
    with pytest.raises(ConfigError, match="plain SGD"):
        C.from_dict({**_recipe("hlop"), "train": {"optimizer": "adam"}})
    with pytest.raises(ConfigError, match="not a setting of hlop"):
        C.from_dict(_recipe("hlop", k=3))
    with pytest.raises(ConfigError, match="not one of"):
        C.from_dict(_recipe("replay"))


def test_real_data_streams(data_root):
    from tests.conftest import require_path

    nm = require_path(data_root / "nmnist" / "NMNIST")
    s = streams.nmnist_split(nm, n_bins=5, downsample=2)
    assert s.sample_shape == (5, 2 * 17 * 17) and [t.classes for t in s.tasks][-1] == [8, 9]
    assert sum(len(t.train_y) + len(t.test_y) for t in s.tasks) == 1100  # 1,000 + 100 recordings, pooled
    p = streams.nmnist_permuted(nm, n_bins=5, downsample=2, n_tasks=2)
    a, b = p.tasks[0].train_x, p.tasks[1].train_x
    # a permutation of pixel positions moves both polarities together: per-polarity totals are unchanged
    assert torch.equal(a.reshape(*a.shape[:2], 2, -1).sum(-1), b.reshape(*b.shape[:2], 2, -1).sum(-1))
    hp = require_path(data_root / "har" / "hapt")
    h = streams.hapt_subjects(hp, n_tasks=3, window=64, stride=32, max_train=100)
    assert h.setting == "domain" and h.sample_shape == (64, 6) and [len(t.train_y) for t in h.tasks] == [100] * 3
    subj = [set(t.name.split(":")[1].split(",")) for t in h.tasks]
    assert not (subj[0] & subj[1]) and sum(len(x) for x in subj) == 30  # disjoint subject groups, all 30


def test_gpm_settings_of_the_wrong_type_or_range_are_refused_by_name():
    from spikeseq.continual.gpm import GPM, GPMConfig
    from spikeseq.errors import ConfigError
    from spikeseq.models.lifnet import SNNMLP

    model = SNNMLP(12, 4, hidden=[16], tau_mem=0.01, dt=1e-3)
    for bad, match in ((dict(freeze_1d="maybe"), "freeze_1d must be true or false"),
                       (dict(k_inc=-1), "k_inc must be a whole number >= 0"),
                       (dict(k_init={"layers.1": 2.5}), "k_init must be a whole number.*layers.1"),
                       (dict(samples=0), "samples must be a whole number >= 1"),
                       (dict(max_rows=True), "max_rows must be a whole number >= 1"),
                       (dict(input="spikes"), "input must be one of")):
        with pytest.raises(ConfigError, match=match):
            GPM(model, GPMConfig(layers=["layers.1"], **{"k_init": 2, **bad}))
