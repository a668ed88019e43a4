"""The ``continual`` task: one model learns a stream of tasks; the result is the accuracy matrix R, ACC and BWT.

Recipe (TOML; ``task = "continual"`` at the top level)::

    name = "hlop_digits_split"
    task = "continual"
    [model]                  # a registry model; n_in / n_out default to the stream's input size / outputs
    name = "snn_mlp"
    hidden = [100, 100]
    [stream]                 # spikeseq.data.streams.build(name, **keys); root defaults to $SPIKESEQ_DATA
    name = "digits_split"
    [continual]
    method = "hlop"          # finetune | hlop | ewc | gpm | multitask
    [continual.hlop]         # HLOPConfig / GPMConfig / EWCConfig fields, one table per method; the table of
    k_init = 20              # `method` is used, so --set continual.method=gpm switches the method of a recipe
    [train]                  # TrainConfig; epochs are per task, a new optimizer starts every task
    epochs = 3

Per task ``t`` the plug-in's ``begin_task(t)`` runs, then the task trains through
:func:`spikeseq.train.loop.fit`, the one training loop, with the ``[train]`` settings (``epochs`` per task, a new
optimizer and learning-rate schedule every task, clipping, accumulation, precision, ``--nproc`` data parallelism):
the plug-in acts through the hooks it attached to the model (HLOP / GPM: gradient projection, HLOP: Hebbian
updates in training forward passes) and through :class:`spikeseq.train.loop.Hooks` (``before_step``: EWC's penalty
gradient; its state in every checkpoint). Then ``end_task(TaskData)`` (HLOP: merge the subspace; GPM: grow the
bases; EWC: Fisher), then every task's test split is evaluated with its own task id: row ``t`` of R. The training
target of a sample is its global label and its task's additive logit mask (:func:`targets`): in the
task-incremental setting the outputs of other tasks are masked out. ``multitask`` (the upper bound) trains once on
the union of all tasks and fills every row with the final accuracies (BWT 0 by construction).

Run directory: ``tasks/<task>/`` is each task's loop run (``metrics.jsonl``, ``checkpoints/last.pt`` with the
plug-in's state), ``checkpoints/last.pt`` the stream after each finished task (model, plug-in, R); ``--resume``
continues where the run stopped, mid-task included, bit for bit.

HLOP and GPM protect old tasks by projecting gradients; the update stays in the projected space only for plain
SGD (momentum allowed: it sums projected gradients) without weight decay, so other optimizers are refused.
"""

from __future__ import annotations

import math
import operator
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.errors import ConfigError, ContinualError
from spikeseq.train.config import (
    ModelConfig,
    TrainConfig,
    apply_overrides,
    coerce_value,
    parse_section,
    read_toml,
)
from spikeseq.train.datasets import Split, time_first
from spikeseq.train.evaluate import logits_from
from spikeseq.train.tasks import BatchResult, Task, register_task, task_name_for

METHODS = ("finetune", "hlop", "ewc", "gpm", "multitask")
RESULT = "continual.json"


@dataclass
class StreamConfig:
    """``[stream]``: the stream name and its builder's keyword arguments."""
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ContinualConfig:
    """A validated continual recipe (see module docstring)."""

    model: ModelConfig
    stream: StreamConfig
    method: str = "hlop"
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped dict of the recipe (saved as ``config.json``)."""
        import dataclasses

        return {"name": self.name, "task": "continual", "model": {"name": self.model.name, **self.model.kwargs},
                "stream": {"name": self.stream.name, **self.stream.kwargs},
                "continual": {"method": self.method, self.method: dict(self.method_kwargs)},
                "train": dataclasses.asdict(self.train)}


def is_continual(raw: dict[str, Any]) -> bool:
    """Whether a TOML-shaped recipe asks for the continual task."""
    return isinstance(raw, dict) and raw.get("task") == "continual"


def from_dict(raw: dict[str, Any], src: str = "<config>") -> ContinualConfig:
    """Validate a TOML-shaped dict (unknown keys and wrong types raise :class:`ConfigError` naming them)."""
    known = ("name", "task", "source", "model", "stream", "continual", "train")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{src}: unknown section or key {key!r} in a continual recipe (known: {known})")
    for sec in ("model", "stream"):
        if not isinstance(raw.get(sec), dict) or "name" not in raw[sec]:
            raise ConfigError(f"{src}: a continual recipe needs a [{sec}] table with name = \"...\"")
    model = parse_section(ModelConfig, raw["model"], "model", src)
    task_name_for(model.name, "continual")  # the model's family must solve the continual task
    st = dict(raw["stream"])
    stream = StreamConfig(coerce_value(st.pop("name"), str, f"{src}: stream.name"), st)
    cont = dict(raw.get("continual", {}))
    method = coerce_value(cont.pop("method", "hlop"), str, f"{src}: continual.method")
    if method not in METHODS:
        raise ConfigError(f"{src}: continual.method = {method!r} is not one of {', '.join(METHODS)}")
    extra = [k for k in cont if k not in METHODS]
    if extra:
        raise ConfigError(f"{src}: unknown key continual.{extra[0]}; [continual] holds method = \"...\" and one "
                          f"table of settings per method ({', '.join(METHODS)})")
    for k in cont:  # every method's table is checked, the one of `method` is used
        _method_config(k, dict(cont[k]), src)
    train = parse_section(TrainConfig, raw.get("train", {}), "train", src)
    cfg = ContinualConfig(model, stream, method, dict(cont.get(method, {})), train,
                          coerce_value(raw.get("name", ""), str, f"{src}: name"))
    _check(cfg, src)
    return cfg


def _check(cfg: ContinualConfig, src: str) -> None:
    t = cfg.train
    if cfg.method in ("hlop", "gpm") and (t.optimizer != "sgd" or t.weight_decay != 0):
        raise ConfigError(f"{src}: {cfg.method} projects gradients, which keeps the update orthogonal to old tasks "
                          f"only for plain SGD without weight decay; set train.optimizer = \"sgd\" and "
                          f"train.weight_decay = 0 (got {t.optimizer!r}, {t.weight_decay})")
    if t.epochs < 1 or t.batch_size < 1 or not t.lr > 0:
        raise ConfigError(f"{src}: train.epochs and batch_size must be >= 1 and lr > 0")
    if t.readout not in ("mean", "sum", "max", "last"):
        raise ConfigError(f"{src}: train.readout = {t.readout!r} is not one of mean, sum, max, last")
    _method_config(cfg.method, cfg.method_kwargs, src)


def _method_config(method: str, kwargs: dict[str, Any], src: str = "<config>") -> Any:
    from spikeseq.continual.ewc import EWCConfig
    from spikeseq.continual.gpm import GPMConfig
    from spikeseq.continual.hlop import HLOPConfig

    cls = {"hlop": HLOPConfig, "gpm": GPMConfig, "ewc": EWCConfig}.get(method)
    if cls is None:
        if kwargs:
            raise ConfigError(f"{src}: method {method!r} takes no settings, got {sorted(kwargs)}")
        return None
    names = [f.name for f in fields(cls)]
    for k in kwargs:
        if k not in names:
            raise ConfigError(f"{src}: continual.{method}.{k} is not a setting of {method}; known: {', '.join(names)}")
    kw = dict(kwargs)
    if isinstance(kw.get("spiking"), list):
        kw["spiking"] = tuple(kw["spiking"])
    conf = cls(**kw)
    try:
        conf.check()
    except ConfigError as e:
        raise ConfigError(f"{src}: continual.{method}: {e}") from None
    return conf


def load(path: str | Path, overrides: list[str] | None = None) -> ContinualConfig:
    """Read, override (``--set``) and validate a continual recipe (TOML, or the ``config.json`` a run saved)."""
    if str(path).endswith(".json"):
        from spikeseq.train.rundir import read_json

        if not Path(path).is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = read_json(path)
    else:
        raw = read_toml(path)
    return from_dict(apply_overrides(raw, overrides), str(path))


# ------------------------------------------------------------------------------------------------ the run
def build_stream(cfg: ContinualConfig):
    """The stream of a recipe (``root`` of N-MNIST / HAPT defaults to the folder under ``$SPIKESEQ_DATA``)."""
    from spikeseq.data import streams

    kw = dict(cfg.stream.kwargs)
    if cfg.stream.name.startswith(("nmnist", "hapt")) and "root" not in kw:
        sub = "nmnist/NMNIST" if cfg.stream.name.startswith("nmnist") else "har/hapt"
        root = os.environ.get("SPIKESEQ_DATA")
        if root and (Path(root) / sub).is_dir():
            kw["root"] = str(Path(root) / sub)
    return streams.build(cfg.stream.name, **kw)


def build_model(cfg: ContinualConfig, stream) -> nn.Module:
    """The recipe's registry model; ``n_in`` / ``n_out`` (or ``input_size`` / ``n_classes`` when the recipe names
    either) default to the stream's input size and outputs."""
    from spikeseq.models import registry

    kw = dict(cfg.model.kwargs)
    n_in = math.prod(stream.sample_shape[1:])
    # the sizes' keys: n_in / n_out (spikeseq.models.lifnet), or input_size / n_classes (the recurrent classifiers)
    k_in, k_out = ("input_size", "n_classes") if {"input_size", "n_classes"} & kw.keys() else ("n_in", "n_out")
    kw.setdefault(k_in, n_in)
    kw.setdefault(k_out, stream.n_outputs)
    if kw[k_out] != stream.n_outputs:
        raise ConfigError(f"model.{k_out} = {kw[k_out]} but stream {stream.name!r} needs {stream.n_outputs} "
                          "outputs")
    try:
        return registry.build(cfg.model.name, **kw)
    except TypeError as e:
        if "argument" in str(e):
            raise ConfigError(f"model {cfg.model.name!r}: {e}; check the keys of [model]") from None
        raise


def make_plugin(method: str, model: nn.Module, kwargs: dict[str, Any]):
    """The plug-in of ``method`` (``None`` for fine-tuning and multitask)."""
    from spikeseq.continual.ewc import EWC
    from spikeseq.continual.gpm import GPM
    from spikeseq.continual.hlop import HLOP

    conf = _method_config(method, kwargs)
    if conf is not None and method in ("hlop", "gpm") and getattr(model, "pruner", None) is not None:
        raise ConfigError(f"{method}: the model prunes its weights during training (model.prune), re-masking them "
                          "after every optimizer step; the mask moves the update out of the subspace the projection "
                          "keeps it in (about half of it landed in the protected subspace at 50 % sparsity) and can "
                          "zero protected weights: leave model.prune out of continual recipes with hlop or gpm")
    return {"hlop": HLOP, "gpm": GPM, "ewc": EWC}[method](model, conf) if conf is not None else None


def task_mask(stream, task: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """Additive logit mask ``[n_outputs]`` of task ``task``: 0 on its outputs, -inf elsewhere (task-incremental);
    all 0 for a shared head. Raises :class:`ContinualError` for a task id outside the stream."""
    task = task_id(stream, task)
    m = torch.zeros(stream.n_outputs)
    if stream.setting == "task":
        m.fill_(-math.inf)
        m[torch.tensor(stream.tasks[task].classes)] = 0
    return m if like is None else m.to(like)


def task_id(stream, task: Any) -> int:
    """``task`` as an int (Python, numpy or 0-d torch integer; not a bool); :class:`ContinualError` when it is not
    an integer or lies outside the stream's tasks."""
    n = len(stream.tasks)
    try:
        i = None if isinstance(task, bool) else operator.index(task)
    except TypeError:
        i = None
    if i is None:
        raise ContinualError(f"task id {task!r} is not an integer task index: stream {stream.name!r} has tasks "
                             f"0...{n - 1}")
    if not 0 <= i < n:
        raise ContinualError(f"task id {task!r} is out of range: stream {stream.name!r} has tasks 0...{n - 1}")
    return i


def global_labels(stream, task: int, y: torch.Tensor) -> torch.Tensor:
    """Task ``task``'s labels ``y`` (0 .. its class count - 1) as the stream's global output indices;
    :class:`ContinualError` for an unknown task or labels that are not whole numbers in that range."""
    task = task_id(stream, task)
    k = stream.tasks[task]
    _check_labels(stream, k, y, "given")
    return torch.tensor(k.classes, device=y.device)[y]


def _check_labels(stream, k: Any, y: torch.Tensor, what: str) -> None:
    """:class:`ContinualError` naming task ``k`` unless ``y`` holds integer labels in ``[0, len(k.classes))``."""
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        dtype = y.dtype if isinstance(y, torch.Tensor) else type(y).__name__
        raise ContinualError(f"stream {stream.name!r}: task {k.name!r} {what} labels must be an integer tensor "
                             f"(class indices), got {dtype}; use .long() on whole-number labels")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(k.classes)):
        raise ContinualError(f"stream {stream.name!r}: task {k.name!r} {what} labels must lie in [0, "
                             f"{len(k.classes)}) (local to its {len(k.classes)} classes), got [{int(y.min())}, "
                             f"{int(y.max())}]")


def _check_inputs(stream, k: Any, x: torch.Tensor, what: str, chunk: int = 1024) -> None:
    """:class:`ContinualError` naming task ``k`` when its inputs ``x`` hold NaN/Inf (checked ``chunk`` samples at a
    time, so a large stream needs little extra memory)."""
    for i in range(0, x.shape[0], chunk):
        if not bool(torch.isfinite(x[i:i + chunk]).all()):
            raise ContinualError(f"stream {stream.name!r}: task {k.name!r} {what} inputs hold NaN/Inf values (first "
                                 f"in samples {i}..{min(i + chunk, x.shape[0]) - 1}); clean or drop those samples")


def targets(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The training / evaluation target of the continual task, ``[N, 1 + K]`` float32: column 0 the global label
    (exact in float32), columns 1.. the additive logit mask of each sample's task (:func:`task_mask`)."""
    mask = mask.expand(y.shape[0], -1) if mask.dim() == 1 else mask
    return torch.cat([y.to(torch.float32).unsqueeze(1), mask.to(torch.float32)], dim=1)


def _split_target(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if target.dim() != 2 or target.shape[1] < 2:
        raise ContinualError(f"a continual target is [N, 1 + n_outputs] (label, logit mask), got "
                             f"{tuple(target.shape)}; build it with spikeseq.train.tasks.continual.targets")
    return target[:, 0].long(), target[:, 1:]


def task_split(stream, task: int, which: str = "test") -> Split:
    """Task ``task``'s ``"train"`` or ``"test"`` split as a :class:`~spikeseq.train.datasets.Split` whose ``y`` is
    the :func:`targets` encoding (global labels and the task's mask); :class:`ContinualError` for an unknown task,
    non-integer labels or non-finite inputs."""
    if which not in ("train", "test"):
        raise ContinualError(f"a task split is 'train' or 'test', got {which!r}")
    task = task_id(stream, task)
    k = stream.tasks[task]
    x, y = (k.train_x, k.train_y) if which == "train" else (k.test_x, k.test_y)
    _check_labels(stream, k, y, which)
    _check_inputs(stream, k, x, which)
    return Split(x, targets(global_labels(stream, task, y), task_mask(stream, task)))


def evaluate_task(model: nn.Module, stream, task: int, cfg: Any) -> float:
    """Test accuracy on task ``task`` with its task id (its head / mask); :class:`ContinualError` for an id
    outside the stream."""
    task_mask(stream, task)  # the range check
    return continual_evaluate(model, task_split(stream, task), cfg, torch.device("cpu"), stream.n_outputs)["acc"]


def task_batches(x: torch.Tensor, y: torch.Tensor, seed: int):
    """``batches(size)`` of a finished task for :class:`~spikeseq.continual.plugin.TaskData`: time-first inputs
    and global labels, shuffled, in the same order on every call."""
    def batches(size: int):
        order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
        for i in range(0, x.shape[0], size):
            idx = order[i:i + size]
            yield time_first(x[idx]), y[idx]
    return batches


def continual_batch(output: Any, target: torch.Tensor, cfg: Any) -> BatchResult:
    """Summed cross-entropy over each sample's own task outputs; ``target [B, 1 + K]`` is :func:`targets`' encoding
    (global label, additive logit mask: the task-incremental heads; zeros for a shared head)."""
    y, mask = _split_target(target)
    logits = logits_from(output, cfg.train.readout) + mask
    return BatchResult(F.cross_entropy(logits, y, reduction="sum"), float((logits.argmax(1) == y).sum()),
                       int(y.shape[0]))


def continual_evaluate(model: nn.Module, split: Split, cfg: Any, device: torch.device, n_classes: int,
                       desc: str = "") -> dict[str, Any]:
    """Accuracy and loss of a split whose ``y`` is :func:`targets`' encoding (``None`` for an empty split)."""
    if len(split) == 0:
        return {"n": 0, "loss": None, "acc": None}
    y, mask = _split_target(split.y)
    model.eval()
    logits = []
    bs = cfg.train.eval_batch_size
    with torch.no_grad():
        for i in range(0, split.x.shape[0], bs):
            xb = time_first(split.x[i:i + bs]).to(device)
            logits.append(logits_from(model(xb), cfg.train.readout).float().cpu() + mask[i:i + bs])
    lg = torch.cat(logits)
    return {"n": int(y.shape[0]), "loss": float(F.cross_entropy(lg, y)),
            "acc": float((lg.argmax(1) == y).float().mean())}


CONTINUAL = register_task(Task(
    name="continual", batch=continual_batch, evaluate=continual_evaluate, metric="acc", train_metric="acc",
    report=("R", "acc", "bwt"),
    description="a stream of tasks learned one after another: accuracy matrix R, ACC and BWT",
))


def task_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, cfg: Any) -> torch.Tensor:
    """The mean loss of a time-first batch ``x`` with global labels ``y`` under one task's logit ``mask``."""
    res = continual_batch(model(x), targets(y, mask), cfg)
    return res.loss_sum / res.count


def format_matrix(result: dict[str, Any]) -> str:
    """R as a text table (rows: after training task j; columns: test task i), then ACC and BWT in percent."""
    n = result["n_tasks"]
    lines = ["after \\ test " + " ".join(f"{i:>6d}" for i in range(n))]
    for j, row in enumerate(result["R"]):
        lines.append(f"task {j:<8d} " + " ".join("     -" if v is None else f"{100 * v:6.1f}" for v in row))
    lines.append(f"ACC {100 * result['acc']:.2f}  BWT {100 * result['bwt']:+.2f}  ({result['method']}, "
                 f"{result['stream']}, seed {result['seed']})")
    return "\n".join(lines)
