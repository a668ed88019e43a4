"""Leftovers of a review of the continual code: streams whose task classes repeat or share outputs, inputs that are
not time-first float tensors, stream builders given non-integer counts from Python, and HLOP checkpoints whose
number of subspace neurons does not fit the plug-in's configuration. Each ends in a spikeseq error naming it."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from spikeseq.continual import HLOP, HLOPConfig
from spikeseq.continual.ewc import EWC, EWCConfig
from spikeseq.continual.plugin import TaskData
from spikeseq.data import streams
from spikeseq.errors import ConfigError, ContinualError, ParameterError
from spikeseq.models.lifnet import SNNMLP
from spikeseq.train.tasks import continual as C


def _stream(setting: str = "task") -> streams.Stream:
    """Two tiny task-incremental (or domain) tasks of [N, 2, 3] float inputs, labels local 0/1."""
    g = torch.Generator().manual_seed(0)

    def task(name: str, classes: list[int]) -> streams.Task:
        return streams.Task(name, torch.rand(6, 2, 3, generator=g), torch.tensor([0, 1] * 3),
                            torch.rand(4, 2, 3, generator=g), torch.tensor([1, 0] * 2), classes)

    if setting == "domain":
        return streams.Stream("tiny", "domain", [task("a", [0, 1]), task("b", [0, 1])], 2)
    return streams.Stream("tiny", "task", [task("a", [0, 1]), task("b", [2, 3])], 4)


# ------------------------------------------------------------------------------- 1. classes and inputs
def test_a_valid_task_incremental_stream_maps_local_labels_to_its_own_outputs():
    s = _stream()
    streams.check_stream(s)
    assert torch.equal(C.global_labels(s, 1, torch.tensor([0, 1, 1])), torch.tensor([2, 3, 3]))
    m = C.task_mask(s, 1)
    assert m.tolist() == [-math.inf, -math.inf, 0.0, 0.0]
    s.tasks[1].classes = [3, 2]  # any order of distinct outputs is fine: local 0 -> output 3
    streams.check_stream(s)
    assert torch.equal(C.global_labels(s, 1, torch.tensor([0, 1])), torch.tensor([3, 2]))
    s.tasks[1].classes = [np.int64(2), np.int64(3)]  # numpy integers are whole output indices too
    streams.check_stream(s)


def test_a_class_listed_twice_in_one_task_is_refused():
    s = _stream()
    s.tasks[0].classes = [0, 0]  # before: label 1 silently trained output 0, like label 0
    with pytest.raises(ContinualError, match=r"task 'a' lists output\(s\) \[0\] more than once in its classes "
                                             r"\[0, 0\]; local label i is output classes\[i\]"):
        streams.check_stream(s)


def test_two_task_incremental_tasks_sharing_an_output_are_refused():
    s = _stream()
    s.tasks[1].classes = [1, 2]  # output 1 would belong to both heads
    with pytest.raises(ContinualError, match=r"tasks 'a' and 'b' both use output\(s\) \[1\]; in the "
                                             r"task-incremental setting every task owns its outputs"):
        streams.check_stream(s)
    with pytest.raises(ContinualError, match="both use output"):  # the constructor runs the same check
        streams.Stream("tiny", "task", s.tasks, 4)


def test_domain_tasks_share_their_head_by_definition():
    streams.check_stream(_stream("domain"))  # every task uses outputs [0, 1]: correct, not an overlap


@pytest.mark.parametrize("classes, match", [([0, 1.0], r"classes must be a list of whole output indices"),
                                            ([True, 1], r"classes must be a list of whole output indices"),
                                            ([0, 4], r"uses outputs \[0, 4\] outside 0..3")])
def test_classes_that_are_not_output_indices_are_refused(classes, match):
    s = _stream()
    s.tasks[0].classes = classes
    with pytest.raises(ContinualError, match=match):
        streams.check_stream(s)


def test_integer_inputs_are_refused_with_the_conversion():
    s = _stream()
    s.tasks[1].test_x = (s.tasks[1].test_x * 10).long()  # before: accepted, the model's Linear failed later
    with pytest.raises(ContinualError, match=r"task 'b' test inputs have dtype torch.int64; a stream holds "
                                             r"floating-point inputs .* convert them with x.float\(\)"):
        streams.check_stream(s)


@pytest.mark.parametrize("shape", [(6,), (6, 3)])
def test_inputs_without_a_time_and_feature_axis_are_refused(shape):
    s = _stream()
    s.tasks[0].train_x = torch.rand(*shape)
    s.tasks[1].train_x = torch.rand(*shape)
    with pytest.raises(ContinualError, match=rf"task 'a' train inputs have shape {re.escape(str(shape))}, but a stream "
                                             r"holds \[N, T, features...\]"):
        streams.check_stream(s)


def test_labels_of_another_rank_are_refused():
    s = _stream()
    s.tasks[0].train_y = s.tasks[0].train_y[:, None]
    with pytest.raises(ContinualError, match=r"task 'a' train labels must be a 1-D tensor \[N\] of class indices, "
                                             r"got \(6, 1\)"):
        streams.check_stream(s)


# ------------------------------------------------------------------------------- 2. builder arguments
@pytest.mark.parametrize("build, key, value", [
    (streams.digits_split, "n_tasks", 2.5), (streams.digits_split, "steps", 2.5),
    (streams.digits_split, "seed", 0.5), (streams.digits_split, "steps", "3"),
    (streams.digits_split, "n_tasks", True), (streams.digits_permuted, "n_tasks", 2.0),
    (streams.digits_permuted, "steps", None), (streams.digits_split_domain, "n_tasks", 1.5),
    (streams.nmnist_split, "n_bins", 2.5), (streams.nmnist_split, "downsample", 1.5),
    (streams.nmnist_permuted, "n_tasks", 3.0), (streams.hapt_subjects, "n_tasks", 2.5),
    (streams.hapt_subjects, "max_train", 10.5), (streams.hapt_subjects, "window", 64.0),
    (streams.hapt_activities, "stride", "32"), (streams.pmnist, "steps", 2.5),
    (streams.pmnist, "max_train", 100.0), (streams.pmnist, "max_test", "10"),
    (streams.cifar100_split, "n_tasks", 2.5), (streams.cifar100_split, "max_test", 1.5),
])
def test_builders_called_from_python_name_a_non_integer_count(tmp_path, build, key, value):
    # the argument checks run before any file is read: tmp_path (empty) as the data root is never reached
    kw = {} if build.__name__.startswith("digits") else {"root": tmp_path}
    with pytest.raises(ParameterError, match=rf"^{key} must be a whole number( >= [01])?( or None)?, got "
                                             rf"{re.escape(repr(value))} \({type(value).__name__}\); pass an int"):
        build(**kw, **{key: value})


@pytest.mark.parametrize("build, kw, match", [
    (streams.digits_split, {"test_fraction": "0.3"}, r"test_fraction must lie in \(0, 1\), got '0.3'"),
    (streams.nmnist_split, {"pool": "no"}, r"pool must be True or False, got 'no' \(str\)"),
    (streams.digits_split, {"n_tasks": 0}, r"n_tasks must lie in \[1, 5\], got 0"),
    (streams.pmnist, {"max_train": 0}, r"max_train must be >= 1, got 0"),
    (streams.digits_split, {"seed": -1}, r"seed must be >= 0, got -1"),
])
def test_builders_name_other_bad_arguments(tmp_path, build, kw, match):
    root = {} if build.__name__.startswith("digits") else {"root": tmp_path}
    with pytest.raises(ParameterError, match=match):
        build(**root, **kw)


def test_builders_take_numpy_integers():
    s = streams.digits_split(steps=np.int64(2), n_tasks=np.int32(2), seed=np.int64(0))
    assert len(s) == 2 and s.sample_shape == (2, 64)


# ------------------------------------------------------------------------------- 3. HLOP checkpoint sizes
def _mlp() -> SNNMLP:
    torch.manual_seed(0)
    return SNNMLP(12, 4, hidden=[16], tau_mem=0.01, dt=1e-3, v_th=0.5)


def _hlop(**kw) -> HLOP:
    kw.setdefault("layers", ["layers.1", "layers.3"])
    return HLOP(_mlp(), HLOPConfig(**kw))


def _after(hlop: HLOP, tasks: int, *, inside: bool = False) -> HLOP:
    """``hlop`` after ``tasks`` finished tasks (and, ``inside``, with the next one begun)."""
    for t in range(tasks):
        hlop.begin_task(t)
        hlop.end_task()
    if inside:
        hlop.begin_task(tasks)
    return hlop


def test_a_mid_stream_checkpoint_has_k_init_plus_t_k_inc_neurons_and_loads():
    src = _after(_hlop(k_init=3, k_inc=2), 2, inside=True)  # inside task 2: 3 + 2 x 2 = 7 rows, 5 old
    assert src.memory()["layers.1"] == 7 and src.spaces["layers.1"].n_old == 5
    dst = _hlop(k_init=3, k_inc=2)
    dst.load_state_dict(src.state_dict())
    assert dst.task == 2 and dst.in_task and dst.spaces["layers.3"].k == 7 and dst.spaces["layers.3"].n_old == 5
    dst.end_task()
    dst.begin_task(3)  # and grows by k_inc from there, as the configuration says
    assert dst.spaces["layers.1"].k == 9
    dst.detach()
    src.detach()


def test_a_checkpoint_with_another_k_init_is_refused_naming_layer_counts_and_setting():
    src = _after(_hlop(k_init=3, k_inc=2), 1)
    dst = _hlop(k_init=5, k_inc=2)
    with pytest.raises(ConfigError, match=r"checkpoint subspace of layer 'layers.1' has 3 subspace neurons, but this "
                                          r"HLOP's configuration gives 5 at task 0 \(k_init = 5\): the checkpoint "
                                          r"was taken with other k_init settings"):
        dst.load_state_dict(src.state_dict())
    assert dst.task == -1 and dst.spaces["layers.1"].k == 0 and dst.spaces["layers.3"].k == 0  # nothing changed


def test_a_checkpoint_with_another_k_inc_is_refused():
    src = _after(_hlop(k_init=3, k_inc=2), 3)  # after task 2: 3 + 2 x 2 = 7
    dst = _hlop(k_init=3, k_inc=1)
    with pytest.raises(ConfigError, match=r"layer 'layers.1' has 7 subspace neurons, but this HLOP's configuration "
                                          r"gives 5 at task 2 \(k_init \+ 2 x k_inc = 3 \+ 2 x 1\): the checkpoint "
                                          r"was taken with other k_init / k_inc settings"):
        dst.load_state_dict(src.state_dict())
    assert dst.task == -1


def test_a_per_layer_setting_is_compared_per_layer():
    src = _after(_hlop(k_init={"layers.1": 3, "layers.3": 4}, k_inc=1), 1)
    _hlop(k_init={"layers.1": 3, "layers.3": 4}, k_inc=1).load_state_dict(src.state_dict())
    with pytest.raises(ConfigError, match=r"layer 'layers.3' has 4 subspace neurons, but this HLOP's configuration "
                                          r"gives 6 at task 0 \(k_init = 6\)"):
        _hlop(k_init={"layers.1": 3, "layers.3": 6}, k_inc=1).load_state_dict(src.state_dict())


def test_a_fresh_state_and_inconsistent_old_rows():
    _hlop(k_init=3).load_state_dict(_hlop(k_init=8).state_dict())  # before any task: 0 rows whatever k_init
    st = _after(_hlop(k_init=3, k_inc=2), 1, inside=True).state_dict()  # inside task 1: 5 rows, 3 old
    st["spaces"]["layers.1"]["n_old"] = 5
    st["spaces"]["layers.1"]["basis"] = torch.zeros(5, 12)
    with pytest.raises(ConfigError, match=r"layer 'layers.1' has n_old = 5 old \(merged\) subspace neurons, but "
                                          r"inside task 1 this HLOP's configuration has 3"):
        _hlop(k_init=3, k_inc=2).load_state_dict(st)


def test_a_stream_checkpoint_resumes_through_the_recipe_settings(tmp_path):
    """The recipe path (--resume refuses another recipe) and a resume with the same settings are unchanged."""
    from spikeseq.train import stream as S

    raw = {"task": "continual", "name": "s13", "model": {"name": "snn_mlp", "hidden": [8]},
           "stream": {"name": "digits_split", "steps": 2, "n_tasks": 2},
           "continual": {"method": "hlop", "hlop": {"k_init": 4, "k_inc": 2}},
           "train": {"optimizer": "sgd", "epochs": 1, "batch_size": 128}}
    res = S.run(C.from_dict(raw), tmp_path / "run")
    assert res["memory"]["layers.1"] == 6  # k_init + 1 x k_inc after two tasks
    ck = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    model = C.build_model(C.from_dict(raw), C.build_stream(C.from_dict(raw)))
    other = C.make_plugin("hlop", model, {"k_init": 4, "k_inc": 3})
    with pytest.raises(ConfigError, match=r"has 6 subspace neurons, but this HLOP's configuration gives 7 at task 1"):
        other.load_state_dict(ck["plugin"])



# ------------------------------------------------------------------- 3b. EWC: the same check of its anchors
def _ewc_after(mode: str, tasks: int, *, inside: bool = False) -> EWC:
    model = _mlp()
    ewc = EWC(model, EWCConfig(mode=mode, samples=8, batch_size=8))
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 8, 12, generator=g), torch.randint(0, 4, (8,), generator=g)

    def loss(xb, yb):
        return torch.nn.functional.cross_entropy(model(xb)[0].mean(0), yb)

    for t in range(tasks):
        ewc.begin_task(t)
        ewc.end_task(TaskData(t, lambda size: iter([(x, y)]), loss))
    if inside:
        ewc.begin_task(tasks)
    return ewc


def test_ewc_states_of_its_own_mode_load_mid_stream():
    for mode, n in (("separate", 2), ("online", 1)):
        src = _ewc_after(mode, 2, inside=True)
        assert len(src.anchors) == n
        dst = EWC(_mlp(), EWCConfig(mode=mode))
        dst.load_state_dict(src.state_dict())
        assert dst.task == 2 and dst.in_task and len(dst.anchors) == n
        assert torch.equal(dst.anchors[-1][0]["layers.1.weight"], src.anchors[-1][0]["layers.1.weight"])


def test_ewc_state_of_the_other_mode_or_task_is_refused():
    st = _ewc_after("separate", 3).state_dict()
    online = EWC(_mlp(), EWCConfig(mode="online"))
    # before: accepted; the online EWC penalised with all three anchors, then kept only the first one
    with pytest.raises(ConfigError, match=r"checkpoint EWC holds 3 anchors \(Fisher, theta\), but after task 2 \(3 "
                                          r"finished tasks\) EWC mode = 'online' keeps 1"):
        online.load_state_dict(st)
    assert online.anchors == [] and online.task == -1
    st["task"], st["in_task"] = 0, True
    with pytest.raises(ConfigError, match=r"holds 3 anchors .* inside task 0 \(0 finished tasks\) EWC mode = "
                                          r"'separate' keeps 0"):
        EWC(_mlp()).load_state_dict(st)
    st["task"] = "x"  # before: a raw ValueError from int("x")
    with pytest.raises(ConfigError, match=r"checkpoint EWC task = 'x', in_task = True: the task must be a whole "
                                          r"number >= -1"):
        EWC(_mlp()).load_state_dict(st)
