"""Continual-learning task streams built from real data (pure data: tensors in, tensors out).

A :class:`Stream` is an ordered list of :class:`Task` s that one model learns one after another, in one of two
settings (van de Ven & Tolias 2019, "Three scenarios for continual learning"):

* ``"task"`` (task-incremental, multi-head): each task owns a subset of the model's outputs (its *head*); the
  task id is given at test time and only that head's outputs are compared (``Task.classes``, labels local
  ``0..len(classes)-1``);
* ``"domain"`` (domain-incremental, one shared head): every task uses all outputs with the same labels.

Streams (``x`` is time-first per sample ``[N, T, ...]`` float32, as every spikeseq dataset):

=========================  ======================================================================================
``digits_split``           scikit-learn's bundled 8x8 digits (UCI optdigits test set, 1,797 images, no download),
                           5 tasks of 2 classes, task-incremental; intensities / 16 as a constant input current
                           for ``steps`` time steps; ``setting="domain"``: one shared 2-output head ("first or
                           second digit of the pair", van de Ven & Tolias' domain-incremental split MNIST), the
                           stream is then named ``digits_split_domain``
``digits_permuted``        the same digits, each task a fixed pixel permutation (task 0 unpermuted), shared head
``nmnist_split``           N-MNIST recordings (Orchard et al. 2015) binned to ``n_bins`` frames, 5 x 2 classes;
                           ``setting="domain"`` as for the digits (``nmnist_split_domain``)
``nmnist_permuted``        N-MNIST with a fixed permutation of the pixel positions per task (both polarities move
                           together), shared head (PMNIST's construction, Goodfellow et al. 2013, on events)
``hapt_subjects``          HAPT windows (Reyes-Ortiz et al. 2016), subject-incremental: the 30 subjects in
                           ``n_tasks`` groups, 6 activities, shared head
``hapt_activities``        HAPT, activity-incremental: 3 tasks of 2 activities, task-incremental
``pmnist``                 permuted MNIST (Goodfellow et al. 2013; HLOP's PMNIST): the official 60,000 / 10,000
                           split, ``n_tasks`` (10) fixed pixel permutations (task 0 unpermuted), shared head; needs
                           the MNIST files (:mod:`spikeseq.data.images`, ``spikeseq data fetch mnist``)
``cifar100_split``         split CIFAR-100 (HLOP's, after GPM): the official split in ``n_tasks`` (10) tasks of
                           10 consecutive fine classes, task-incremental; needs the CIFAR-100 binary files
=========================  ======================================================================================

Static images (digits, MNIST, CIFAR-100) enter as a constant input current: intensities / max for ``steps`` time
steps (the reference HLOP code repeats each image over its time steps). For MNIST and CIFAR-100 the time axis is
a stride-0 view (``expand``), so a stream holds each image once in float32 (permuted MNIST, 10 tasks: about 2.2 GB;
``max_train`` / ``max_test`` keep the first samples of every task).

Train / test: the digits are split per class (``test_fraction``, seeded). The N-MNIST subset in the shared data
folder has only 100 test recordings (2-15 per class), so ``pool=True`` (default) pools train and test recordings
and re-splits them per class; ``pool=False`` keeps the official split. HAPT: within every recording session and
activity the last ``test_fraction`` of the windows (in time) are the test set, and the windows overlapping the
boundary are dropped, so no test sample shares a raw sample with a training one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from spikeseq.errors import ContinualError, DataError, ParameterError

SETTINGS = ("task", "domain")


@dataclass
class Task:
    """One task: train / test tensors, and the model outputs (global class ids) it uses."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[int]


@dataclass
class Stream:
    """An ordered list of tasks in a setting (``"task"`` or ``"domain"``) for a model with ``n_outputs`` outputs."""

    name: str
    setting: str
    tasks: list[Task]
    n_outputs: int
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_stream(self)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Per-sample shape ``(T, ...)`` shared by every task."""
        return tuple(self.tasks[0].train_x.shape[1:])

    def __len__(self) -> int:
        return len(self.tasks)


def check_stream(stream: Stream) -> None:
    """Raise :class:`ContinualError` for a stream one model cannot learn (see the messages): inputs that are not
    time-first float tensors ``[N, T, features...]`` of one shape, labels that are not local class indices, a task
    whose ``classes`` repeat an output, and, task-incremental, two tasks whose heads share an output."""
    if stream.setting not in SETTINGS:
        raise ContinualError(f"stream {stream.name!r}: setting must be one of {SETTINGS}, got {stream.setting!r}")
    if not stream.tasks:
        raise ContinualError(f"stream {stream.name!r} has no task")
    for t in stream.tasks:  # dtype and rank first: the shape comparison below reads x.shape[1:]
        for what, x in (("train", t.train_x), ("test", t.test_x)):
            _check_input_tensor(stream, t, what, x)
    shape = tuple(stream.tasks[0].train_x.shape[1:])
    owner: dict[int, str] = {}  # output -> the task-incremental task whose head holds it
    for t in stream.tasks:
        _check_classes(stream, t, owner)
        for what, x, y in (("train", t.train_x, t.train_y), ("test", t.test_x, t.test_y)):
            if tuple(x.shape[1:]) != shape:
                head = "a shared head" if stream.setting == "domain" else "one shared network"
                raise ContinualError(
                    f"stream {stream.name!r}: task {t.name!r} {what} samples have shape {tuple(x.shape[1:])} but "
                    f"task {stream.tasks[0].name!r} has {shape}; the tasks feed {head}, so every task needs the "
                    "same input shape (resample, crop or pad them to one shape)")
            if not isinstance(y, torch.Tensor) or y.dim() != 1:
                got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise ContinualError(f"stream {stream.name!r}: task {t.name!r} {what} labels must be a 1-D tensor "
                                     f"[N] of class indices, got {got}")
            if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
                raise ContinualError(f"stream {stream.name!r}: task {t.name!r} {what} split has {x.shape[0]} "
                                     f"samples and {y.shape[0]} labels (need the same, > 0)")
            if (y.is_floating_point() and not bool((y == y.round()).all())) or y.dtype == torch.bool:
                raise ContinualError(f"stream {stream.name!r}: task {t.name!r} {what} labels must be whole class "
                                     f"indices, got dtype {y.dtype} with non-integer values")
            if not bool(torch.isfinite(x).all()):
                raise ContinualError(f"stream {stream.name!r}: task {t.name!r} {what} inputs contain NaN or Inf; "
                                     "clean or drop those samples")
            if int(y.min()) < 0 or int(y.max()) >= len(t.classes):
                raise ContinualError(f"stream {stream.name!r}: task {t.name!r} labels must lie in [0, "
                                     f"{len(t.classes)}) (local to its classes), got [{int(y.min())}, {int(y.max())}]")
        if stream.setting == "domain" and list(t.classes) != list(range(stream.n_outputs)):
            raise ContinualError(f"stream {stream.name!r}: a domain-incremental task uses every output of the "
                                 f"shared head, but task {t.name!r} uses {t.classes}")


def _check_input_tensor(stream: Stream, t: Task, what: str, x: Any) -> None:
    """:class:`ContinualError` unless ``x`` is a floating-point ``[N, T, features...]`` tensor (what the continual
    task feeds the model, time-first, after moving the sample axis: ``[T, B, features...]``)."""
    if not isinstance(x, torch.Tensor):
        raise ContinualError(f"stream {stream.name!r}: task {t.name!r} {what} inputs must be a torch.Tensor "
                             f"[N, T, features...], got {type(x).__name__}")
    if not x.is_floating_point():
        raise ContinualError(f"stream {stream.name!r}: task {t.name!r} {what} inputs have dtype {x.dtype}; a "
                             "stream holds floating-point inputs (input currents or spike counts, float32 in every "
                             "spikeseq stream): convert them with x.float()")
    if x.dim() < 3:
        raise ContinualError(f"stream {stream.name!r}: task {t.name!r} {what} inputs have shape {tuple(x.shape)}, "
                             "but a stream holds [N, T, features...] (samples, time steps, then at least one feature "
                             "axis); static inputs [N, F] need a time axis (x[:, None].expand(-1, T, -1) for a "
                             "constant input over T steps), a sequence [N, T] of scalars a feature axis "
                             "(x.unsqueeze(-1))")


def _check_classes(stream: Stream, t: Task, owner: dict[int, str]) -> None:
    """:class:`ContinualError` unless ``t.classes`` are distinct whole outputs in ``0..n_outputs-1``; in the
    task-incremental setting also unless no earlier task's head (``owner``: output -> task name, updated here) holds
    one of them. Local label ``i`` is output ``classes[i]``: a repeated output merges two labels into one output, and
    an output in two heads is trained by both tasks, so neither head is the task's own."""
    cls = t.classes
    if (not isinstance(cls, list | tuple)
            or not all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in cls)):
        raise ContinualError(f"stream {stream.name!r}: task {t.name!r} classes must be a list of whole output "
                             f"indices (global class ids), got {cls!r}")
    if any(not 0 <= c < stream.n_outputs for c in cls):
        raise ContinualError(f"stream {stream.name!r}: task {t.name!r} uses outputs {list(cls)} outside "
                             f"0..{stream.n_outputs - 1}")
    dup = sorted({int(c) for c in cls if list(cls).count(c) > 1})
    if dup:
        raise ContinualError(f"stream {stream.name!r}: task {t.name!r} lists output(s) {dup} more than once in its "
                             f"classes {list(cls)}; local label i is output classes[i], so a repeated output would "
                             "merge two labels into one output: give each of the task's classes its own output")
    if stream.setting != "task":
        return
    shared = sorted(int(c) for c in cls if int(c) in owner)
    if shared:
        other = owner[shared[0]]
        raise ContinualError(f"stream {stream.name!r}: tasks {other!r} and {t.name!r} both use output(s) {shared}; "
                             "in the task-incremental setting every task owns its outputs (its head), which no "
                             "other task trains: give the tasks disjoint classes, or use setting 'domain' for one "
                             "head shared by all tasks")
    owner.update({int(c): t.name for c in cls})


def _split_per_class(y: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    _fraction("test_fraction", test_fraction)
    tr, te = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_te = max(1, round(test_fraction * idx.size))
        te.append(idx[:n_te])
        tr.append(idx[n_te:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))


def _split_stream(name: str, setting: str, x: torch.Tensor, y: torch.Tensor, tr: np.ndarray, te: np.ndarray,
                  n_tasks: int, info: dict[str, Any]) -> Stream:
    """Classes {0,1}, {2,3}, ... as ``n_tasks`` tasks: task-incremental (a head of 2 outputs per task) or
    domain-incremental (one shared 2-output head: the label says which digit of the pair it is)."""
    if setting not in SETTINGS:
        raise ParameterError(f"{name}: setting must be one of {SETTINGS}, got {setting!r}")
    groups = [[2 * i, 2 * i + 1] for i in range(n_tasks)]
    tasks = _class_pairs("split", x, y, tr, te, groups)
    if setting == "task":
        return Stream(name, "task", tasks, 2 * n_tasks, info)
    for t in tasks:
        t.classes = [0, 1]
    return Stream(f"{name}_domain", "domain", tasks, 2, {**info, "setting": setting})


def _class_pairs(name: str, x: torch.Tensor, y: torch.Tensor, tr: np.ndarray, te: np.ndarray,
                 groups: list[list[int]]) -> list[Task]:
    tasks = []
    for i, cls in enumerate(groups):
        lut = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
        lut[torch.tensor(cls)] = torch.arange(len(cls))
        mtr = torch.from_numpy(np.isin(y.numpy()[tr], cls))
        mte = torch.from_numpy(np.isin(y.numpy()[te], cls))
        xtr, ytr = x[tr][mtr], lut[y[tr][mtr]]
        xte, yte = x[te][mte], lut[y[te][mte]]
        tasks.append(Task(f"{name}{i}:{'/'.join(map(str, cls))}", xtr, ytr, xte, yte, list(cls)))
    return tasks


def _permuted(name: str, x: torch.Tensor, y: torch.Tensor, tr: np.ndarray, te: np.ndarray, n_tasks: int,
              positions: int, rng: np.random.Generator, n_out: int) -> list[Task]:
    """Task i permutes the last ``positions`` axis of ``x [N, T, ..., positions]`` (task 0: identity)."""
    tasks = []
    for i in range(n_tasks):
        perm = torch.arange(positions) if i == 0 else torch.from_numpy(rng.permutation(positions))
        xp = x[..., perm]
        tasks.append(Task(f"{name}{i}", xp[tr], y[tr], xp[te], y[te], list(range(n_out))))
    return tasks


def _check_tasks(n_tasks: int, most: int) -> None:
    _whole("n_tasks", n_tasks, None)
    if not 1 <= n_tasks <= most:
        raise ParameterError(f"n_tasks must lie in [1, {most}], got {n_tasks}")


def _whole(name: str, value: Any, low: int | None, *, optional: bool = False) -> None:
    """:class:`ParameterError` naming argument ``name`` unless ``value`` is a whole number >= ``low`` (a Python or
    numpy integer, not a bool; ``None`` too when ``optional``; ``low=None``: the type only, the caller checks the
    range). The recipe path refuses these first, with a ConfigError
    (:func:`spikeseq.train.stream.check_stream_kwargs`); called from Python, a fraction or a string failed deep inside
    numpy or torch with a raw TypeError."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        bound = "" if low is None else f" >= {low}"
        none = " or None" if optional else ""
        raise ParameterError(f"{name} must be a whole number{bound}{none}, got {value!r} "
                             f"({type(value).__name__}); pass an int")
    if low is not None and value < low:
        raise ParameterError(f"{name} must be >= {low}, got {value}")


def _fraction(name: str, value: Any) -> None:
    """:class:`ParameterError` naming ``name`` unless ``value`` is a number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) or not 0 < value < 1:
        raise ParameterError(f"{name} must lie in (0, 1), got {value!r}")


def _flag(name: str, value: Any) -> None:
    """:class:`ParameterError` naming ``name`` unless ``value`` is a bool (a string such as "no" is truthy)."""
    if not isinstance(value, bool | np.bool_):
        raise ParameterError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


# ---------------------------------------------------------------------------------------------------- digits
def _digits(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits streams read scikit-learn's bundled 8x8 digits: pip install scikit-learn "
                        "(in spikeseq's dev extra)") from None
    _whole("steps", steps, 1)
    d = load_digits()
    x = torch.from_numpy(d.data.astype(np.float32) / 16.0)  # intensities 0..16 -> [0, 1]
    return x[:, None, :].expand(-1, steps, -1).contiguous(), torch.from_numpy(d.target.astype(np.int64))


def digits_split(*, steps: int = 8, n_tasks: int = 5, test_fraction: float = 0.3, setting: str = "task",
                 seed: int = 0) -> Stream:
    """Split digits: classes {0,1}, {2,3}, ... as ``n_tasks`` tasks in ``setting`` (task-incremental: a head per
    task; domain-incremental: one shared 2-output head); ``x [N, steps, 64]``."""
    _check_tasks(n_tasks, 5)
    _whole("seed", seed, 0)
    x, y = _digits(steps)
    tr, te = _split_per_class(y.numpy(), test_fraction, np.random.default_rng(seed))
    return _split_stream("digits_split", setting, x, y, tr, te, n_tasks,
                         {"source": "sklearn.datasets.load_digits", "steps": steps, "seed": seed})


def digits_permuted(*, steps: int = 8, n_tasks: int = 5, test_fraction: float = 0.3, seed: int = 0) -> Stream:
    """Permuted digits: ``n_tasks`` fixed pixel permutations (task 0 unpermuted), shared 10-class head."""
    _check_tasks(n_tasks, 100)
    _whole("seed", seed, 0)
    x, y = _digits(steps)
    rng = np.random.default_rng(seed)
    tr, te = _split_per_class(y.numpy(), test_fraction, rng)
    return Stream("digits_permuted", "domain", _permuted("perm", x, y, tr, te, n_tasks, 64, rng, 10), 10,
                  {"source": "sklearn.datasets.load_digits", "steps": steps, "seed": seed})


# ---------------------------------------------------------------------------------------------------- N-MNIST
def _nmnist(root, n_bins: int, downsample: int, pool: bool, test_fraction: float, rng: np.random.Generator):
    from spikeseq.data import nmnist

    _whole("n_bins", n_bins, 1)
    _whole("downsample", downsample, 1)
    _flag("pool", pool)
    kw = dict(n_bins=n_bins, downsample=downsample, show_progress=False)
    a, b = nmnist.load_frames(root, "train", **kw), nmnist.load_frames(root, "test", **kw)
    x = torch.cat([a.x, b.x]).float().flatten(2)  # [N, T, 2 * H * W], polarity-major
    y = torch.cat([a.y, b.y]).long()
    if pool:
        tr, te = _split_per_class(y.numpy(), test_fraction, rng)
    else:
        tr, te = np.arange(len(a.y)), np.arange(len(a.y), len(y))
    return x, y, tr, te


def nmnist_split(root: str | os.PathLike | None = None, *, n_bins: int = 10, downsample: int = 2,
                 n_tasks: int = 5, pool: bool = True, test_fraction: float = 0.3, setting: str = "task",
                 seed: int = 0) -> Stream:
    """Split N-MNIST: 5 tasks of 2 digits in ``setting`` (as :func:`digits_split`); ``x [N, n_bins, 2 * H * W]``
    spike counts."""
    _check_tasks(n_tasks, 5)
    _whole("seed", seed, 0)
    rng = np.random.default_rng(seed)
    x, y, tr, te = _nmnist(root, n_bins, downsample, pool, test_fraction, rng)
    return _split_stream("nmnist_split", setting, x, y, tr, te, n_tasks,
                         {"source": "nmnist", "n_bins": n_bins, "downsample": downsample, "pool": pool, "seed": seed})


def nmnist_permuted(root: str | os.PathLike | None = None, *, n_bins: int = 10, downsample: int = 2,
                    n_tasks: int = 5, pool: bool = True, test_fraction: float = 0.3, seed: int = 0) -> Stream:
    """Permuted N-MNIST: one fixed permutation of the pixel positions per task (task 0 unpermuted), shared head."""
    _check_tasks(n_tasks, 100)
    _whole("seed", seed, 0)
    rng = np.random.default_rng(seed)
    x, y, tr, te = _nmnist(root, n_bins, downsample, pool, test_fraction, rng)
    n, t, c = x.shape
    xp = x.reshape(n, t, 2, c // 2)  # permute positions, both polarities together
    tasks = _permuted("perm", xp, y, tr, te, n_tasks, c // 2, rng, 10)
    for k in tasks:
        k.train_x, k.test_x = k.train_x.flatten(2), k.test_x.flatten(2)
    return Stream("nmnist_permuted", "domain", tasks, 10,
                  {"source": "nmnist", "n_bins": n_bins, "downsample": downsample, "pool": pool, "seed": seed})


# ---------------------------------------------------------------------------------------------------- HAPT
def _hapt(root, window: int, stride: int, test_fraction: float):
    from spikeseq.data import hapt

    _whole("window", window, 1)
    _whole("stride", stride, 1)
    _fraction("test_fraction", test_fraction)
    w = hapt.load_windows(root, "all", window=window, stride=stride)
    exp = np.asarray(w.meta["experiment"])
    start = np.asarray(w.meta["start"])
    is_test = np.zeros(len(exp), bool)
    keep = np.ones(len(exp), bool)
    y = w.y.numpy()
    for e, c in {(int(a), int(b)) for a, b in zip(exp, y)}:
        idx = np.flatnonzero((exp == e) & (y == c))
        cut = np.quantile(start[idx], 1 - test_fraction)
        is_test[idx] = start[idx] >= cut
        keep[idx] = (start[idx] >= cut) | (start[idx] + window <= cut)  # drop windows that straddle the cut
    return w, is_test, keep


def _standardise(tasks: list[Task]) -> dict[str, list[float]]:
    """Per-channel standardisation with the first task's training statistics (later tasks are unseen)."""
    flat = tasks[0].train_x.reshape(-1, tasks[0].train_x.shape[-1]).double()
    mean, std = flat.mean(0).float(), flat.std(0).clamp_min(1e-8).float()
    for t in tasks:
        t.train_x, t.test_x = (t.train_x - mean) / std, (t.test_x - mean) / std
    return {"mean": mean.tolist(), "std": std.tolist()}


def hapt_subjects(root: str | os.PathLike | None = None, *, n_tasks: int = 5, window: int = 128, stride: int = 64,
                  test_fraction: float = 0.2, max_train: int | None = None, seed: int = 0) -> Stream:
    """Subject-incremental HAPT: subjects (sorted, shuffled with ``seed``) in ``n_tasks`` groups, shared 6-class
    head; ``x [N, window, 6]`` standardised with task 0's training statistics. ``max_train`` keeps a seeded random
    subset of each task's training windows (smaller CPU runs)."""
    _whole("n_tasks", n_tasks, None)  # its range needs the subject count: _check_tasks below
    _whole("max_train", max_train, 1, optional=True)
    _whole("seed", seed, 0)
    w, is_test, keep = _hapt(root, window, stride, test_fraction)
    rng = np.random.default_rng(seed)
    subjects = rng.permutation(np.unique(w.subject.numpy()))
    _check_tasks(n_tasks, len(subjects))
    groups = np.array_split(subjects, n_tasks)
    tasks = []
    for i, g in enumerate(groups):
        m = np.isin(w.subject.numpy(), g) & keep
        tr, te = np.flatnonzero(m & ~is_test), np.flatnonzero(m & is_test)
        if max_train is not None and tr.size > max_train:
            tr = np.sort(rng.choice(tr, max_train, replace=False))
        tasks.append(Task(f"subjects{i}:{','.join(map(str, sorted(g.tolist())))}", w.x[tr], w.y[tr], w.x[te],
                          w.y[te], list(range(len(w.classes)))))
    stats = _standardise(tasks)
    return Stream("hapt_subjects", "domain", tasks, len(w.classes),
                  {"source": "hapt", "window": window, "stride": stride, "seed": seed, "standardise": stats})


def hapt_activities(root: str | os.PathLike | None = None, *, window: int = 128, stride: int = 64,
                    test_fraction: float = 0.2, seed: int = 0) -> Stream:
    """Activity-incremental HAPT: activities {0,1}, {2,3}, {4,5} as 3 task-incremental tasks."""
    _whole("seed", seed, 0)
    w, is_test, keep = _hapt(root, window, stride, test_fraction)
    tr, te = np.flatnonzero(keep & ~is_test), np.flatnonzero(keep & is_test)
    tasks = _class_pairs("acts", w.x, w.y, tr, te, [[0, 1], [2, 3], [4, 5]])
    stats = _standardise(tasks)
    return Stream("hapt_activities", "task", tasks, 6,
                  {"source": "hapt", "window": window, "stride": stride, "seed": seed, "standardise": stats})


# ------------------------------------------------------------------------------------------- MNIST, CIFAR-100
def _static(images: torch.Tensor, steps: int, scale: float) -> torch.Tensor:
    """``uint8 [N, ...] -> [N, steps, ...]`` float32 ``images / scale``, the time axis a stride-0 view."""
    _whole("steps", steps, 1)
    x = images.to(torch.float32) / scale
    return x.unsqueeze(1).expand(x.shape[0], steps, *x.shape[1:])


def _sizes(steps: Any, n_tasks: Any, most: int, max_train: Any, max_test: Any, seed: Any) -> None:
    """The integer arguments of :func:`pmnist` / :func:`cifar100_split`, checked before any file is read."""
    _whole("steps", steps, 1)
    _check_tasks(n_tasks, most)
    _whole("max_train", max_train, 1, optional=True)
    _whole("max_test", max_test, 1, optional=True)
    _whole("seed", seed, 0)


def _first(n: int | None, *ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t[:n] for t in ts) if n is not None else ts


def pmnist(root: str | os.PathLike | None = None, *, steps: int = 20, n_tasks: int = 10, max_train: int | None = None,
           max_test: int | None = None, seed: int = 0) -> Stream:
    """Permuted MNIST: ``n_tasks`` fixed permutations of the 784 pixels (task 0 unpermuted), shared 10-class head;
    ``x [N, steps, 784]`` intensities / 255 (see the module docstring for memory)."""
    from spikeseq.data import images

    _sizes(steps, n_tasks, 100, max_train, max_test, seed)
    tr, te = images.load_mnist(root, "train"), images.load_mnist(root, "test")
    xtr, ytr = _first(max_train, tr.x.flatten(1), tr.y)
    xte, yte = _first(max_test, te.x.flatten(1), te.y)
    rng = np.random.default_rng(seed)
    tasks = []
    for i in range(n_tasks):
        perm = torch.arange(784) if i == 0 else torch.from_numpy(rng.permutation(784))
        tasks.append(Task(f"pmnist{i}", _static(xtr[:, perm], steps, 255.0), ytr, _static(xte[:, perm], steps, 255.0),
                          yte, list(range(10))))
    return Stream("pmnist", "domain", tasks, 10, {"source": "mnist", "steps": steps, "seed": seed,
                                                    "max_train": max_train, "max_test": max_test})


def cifar100_split(root: str | os.PathLike | None = None, *, steps: int = 20, n_tasks: int = 10,
                   max_train: int | None = None, max_test: int | None = None, seed: int = 0) -> Stream:
    """Split CIFAR-100: task ``i`` holds fine classes ``10 i .. 10 i + 9`` (task-incremental, 10 outputs each);
    ``x [N, steps, 3, 32, 32]`` intensities / 255; ``max_train`` / ``max_test`` keep the first samples per task."""
    from spikeseq.data import images

    _sizes(steps, n_tasks, 10, max_train, max_test, seed)
    tr, te = images.load_cifar100(root, "train"), images.load_cifar100(root, "test")
    tasks = []
    for i in range(n_tasks):
        cls = list(range(10 * i, 10 * i + 10))
        parts = []
        for d, n in ((tr, max_train), (te, max_test)):
            m = (d.y >= cls[0]) & (d.y <= cls[-1])
            parts.append(_first(n, _static(d.x[m], steps, 255.0), d.y[m] - cls[0]))
        (xa, ya), (xb, yb) = parts
        tasks.append(Task(f"cifar{i}:{cls[0]}-{cls[-1]}", xa, ya, xb, yb, cls))
    return Stream("cifar100_split", "task", tasks, 10 * n_tasks,
                  {"source": "cifar100", "steps": steps, "seed": seed, "max_train": max_train, "max_test": max_test})


def _domain_only(name: str, setting: str) -> None:
    if setting != "domain":
        raise ParameterError(f"{name} is the domain-incremental stream (setting 'domain'), got setting={setting!r}; "
                             f"for the task-incremental one use {name.removesuffix('_domain')}")


def digits_split_domain(*, setting: str = "domain", **kwargs: Any) -> Stream:
    """:func:`digits_split` in the domain-incremental setting (one shared 2-output head)."""
    _domain_only("digits_split_domain", setting)
    return digits_split(**kwargs, setting=setting)


def nmnist_split_domain(root: str | os.PathLike | None = None, *, setting: str = "domain",
                        **kwargs: Any) -> Stream:
    """:func:`nmnist_split` in the domain-incremental setting (one shared 2-output head)."""
    _domain_only("nmnist_split_domain", setting)
    return nmnist_split(root, **kwargs, setting=setting)


STREAMS = {"digits_split": digits_split, "digits_split_domain": digits_split_domain,
           "digits_permuted": digits_permuted, "nmnist_split": nmnist_split, "nmnist_split_domain": nmnist_split_domain,
           "nmnist_permuted": nmnist_permuted, "hapt_subjects": hapt_subjects, "hapt_activities": hapt_activities,
           "pmnist": pmnist, "cifar100_split": cifar100_split}


def build(name: str, **kwargs: Any) -> Stream:
    """The stream ``name`` (one of :data:`STREAMS`) with its keyword options."""
    if name not in STREAMS:
        raise ContinualError(f"unknown task stream {name!r}; known streams: {', '.join(STREAMS)}")
    try:
        return STREAMS[name](**kwargs)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise ContinualError(f"stream {name!r}: {e}") from None
        raise
