"""Run configuration: TOML file -> validated dataclasses.

Schema (every section optional except ``[model]`` and ``[data]``)::

    name = "har_rsnn"                 # free text, shown in reports
    task = "classification"          # optional: the task (default: the model family's first task)
    [model]                           # name + keyword arguments of spikeseq.models.registry.build(name, **kw)
    name = "rsnn"
    n_in = 6
    ...
    [data]                            # name + keyword arguments of spikeseq.data.registry.load(name, split, **kw)
    name = "hapt"
    val_fraction = 0.1                # reserved keys: see DataConfig; every other key goes to the loader
    [train]                           # TrainConfig: epochs, batch_size, lr, optimizer, seed, ...
    [export]                          # ExportConfig: targets, samples, dt
    [profile]                         # ProfileConfig: tables, samples, memory
    [results]                         # ResultsConfig: README table and row this recipe measures

Unknown keys in the fixed sections and values of the wrong type raise :class:`~spikeseq.errors.ConfigError` naming
the key, the file and the expected type (with a "did you mean" suggestion). ``--set key=value`` overrides use
dotted keys (``train.lr=0.01``, ``model.hidden=128``); the value is read as a TOML value, or as a plain string
when it is not one (``model.name=rsnn``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")
READOUTS = ("mean", "sum", "max", "last", "softmax_sum")
SCHEDULERS = ("none", "cosine", "step", "onecycle")
DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("float32", "bf16")
DECAY_ON = ("weights", "all")
CHECKPOINTS = ("best", "last")
#: ``[train] target`` values (spikeseq.graph.target_forward.TARGETS; config stays import-light)
TRAIN_TARGETS = ("loihi", "spinnaker2")


@dataclass
class ModelConfig:
    """``[model]``: the registry name and the keyword arguments of its builder."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """``[data]``: the dataset name, the keys below, and the loader's keyword arguments (every other key)."""

    name: str
    #: fraction of the training split held out (deterministically, from the seed) to pick the best checkpoint;
    #: whole sources where the dataset names them (a HAR window's subject), so that validation never sees a window
    #: overlapping a training window
    val_fraction: float = 0.1
    #: per-channel standardisation of inputs with training-split statistics (last axis = channel)
    normalize: bool = False
    #: integer-valued inputs: ``x = round(x * input_scale)`` after normalisation (targets such as Loihi take
    #: integer graded spikes only; the model is trained on exactly what the exported graph will see)
    input_scale: float | None = None
    #: use only the first N samples of a split (after the seeded shuffle for train); ``None`` = all
    max_train: int | None = None
    max_test: int | None = None
    #: append this many silent (zero) steps to every sequence, e.g. the delay paper's padding that lets the readout
    #: see spikes delayed past the end of the recording (``pad_end`` of the delay recipes)
    pad_end: int = 0
    #: k-fold cross-validation inside the training split, for a dataset whose own test split is small: the test split
    #: becomes fold ``cv_fold`` (0-based) of ``cv_folds`` class-stratified folds of the training split, and the
    #: dataset's own test split is not used. The folds do not depend on the run's seed (every model and seed sees
    #: the same folds: :data:`spikeseq.train.datasets.CV_SPLIT_SEED`); the validation split is then drawn from the
    #: other folds. ``None`` = the dataset's own test split.
    cv_folds: int | None = None
    cv_fold: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """``[train]``: optimisation and reproducibility."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    #: parameters weight decay applies to: ``"weights"`` (not biases, norm layers, time constants, decays,
    #: thresholds) or ``"all"``
    weight_decay_on: str = "weights"
    momentum: float = 0.9
    #: learning-rate schedule (``spikeseq.train.optim``): none, cosine (per epoch), step, onecycle (per step)
    scheduler: str = "none"
    #: onecycle: fraction of the optimizer steps spent rising to ``lr``
    pct_start: float = 0.3
    #: step: the lr is multiplied by ``gamma`` every ``step_size`` epochs
    step_size: int = 1
    gamma: float = 0.1
    grad_clip: float | None = None
    #: micro-batches of ``batch_size`` samples per optimizer step (gradient accumulation)
    accumulate: int = 1
    #: ``"bf16"``: the training forward pass runs under bfloat16 autocast (loss, metrics, evaluation stay float32)
    precision: str = "float32"
    seed: int = 0
    #: stop after this many optimizer steps in total (``None``: run all epochs)
    max_steps: int | None = None
    #: how a time-first output ``[T, B, K]`` becomes logits ``[B, K]``
    readout: str = "mean"
    eval_batch_size: int = 256
    device: str = "cpu"
    #: torch.set_num_threads for the run (``None``: leave torch's default)
    threads: int | None = None
    #: data-parallel processes under torchrun (``spikeseq train --nproc`` overrides it)
    nproc: int = 1
    #: also save ``checkpoints/last.pt`` every N optimizer steps (``None``: at the end of each epoch only)
    checkpoint_every: int | None = None
    #: the checkpoint the test evaluation reports: ``"best"`` (validation) or ``"last"`` (after the last epoch)
    eval_checkpoint: str = "best"
    #: per parameter group overrides (``lr``, ``weight_decay``, ``scheduler``) for groups a model names, e.g.
    #: ``[train.groups.delays] lr = 0.1`` (see :mod:`spikeseq.train.optim`)
    groups: dict[str, Any] = field(default_factory=dict)
    #: train for a hardware target (:mod:`spikeseq.train.target`): ``"loihi"`` or ``"spinnaker2"``; the forward pass
    #: then computes with the target's arithmetic (the exporter's quantisation, ``[export.<target>]`` settings)
    target: str | None = None
    #: with ``target``: the last N epochs run in target mode, after ``epochs - N`` float epochs (``None``: all)
    target_epochs: int | None = None


@dataclass
class ExportConfig:
    """``[export]``: targets exported and verified by ``spikeseq export`` / ``demo``."""

    targets: list[str] = field(default_factory=lambda: ["nir", "loihi", "spinnaker2"])
    #: number of test samples run through the exported graph for verification
    samples: int = 32
    #: time step in seconds written into the export; ``None`` = the model's own ``dt``
    dt: float | None = None
    #: keyword arguments of each target's writer, e.g. ``[export.loihi] reset_policy = "zero"`` (accept Loihi's
    #: reset-to-zero for a model trained with subtractive reset; verification then measures the change)
    nir: dict[str, Any] = field(default_factory=dict)
    loihi: dict[str, Any] = field(default_factory=dict)
    spinnaker2: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProfileConfig:
    """``[profile]``: energy tables (``spikeseq.hardware.available()``; empty = all) and the sample count."""

    tables: list[str] = field(default_factory=list)
    samples: int = 16
    memory: bool = True


@dataclass
class ResultsConfig:
    """``[results]``: this recipe measures README numbers; ``spikeseq train`` then writes
    ``results/<family>/<recipe>-s<seed>.json`` (see :mod:`spikeseq.report.results`)."""

    #: the README block the run belongs to (``<!-- results:<table> -->``); empty: no artifact is written
    table: str = ""
    #: the row label in that table (runs with the same label are one row: mean and per-seed values)
    label: str = ""
    #: test samples the trained model is profiled on (op counts and sparsity of the same model)
    profile_samples: int = 64


@dataclass
class RunConfig:
    """A whole run's configuration, one dataclass per TOML section (``[model]``, ``[data]``, ``[train]``, ...)."""

    model: ModelConfig
    data: DataConfig
    name: str = ""
    #: the task (``spikeseq.train.tasks``); ``None``: the first task of the model's family
    task: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    results: ResultsConfig = field(default_factory=ResultsConfig)

    def to_dict(self) -> dict[str, Any]:
        """The nested TOML-shaped dict (model/data kwargs flattened into their sections)."""
        out: dict[str, Any] = {"name": self.name}
        if self.task is not None:
            out["task"] = self.task
        for sec in ("model", "data", "train", "export", "profile", "results"):
            d = dataclasses.asdict(getattr(self, sec))
            kw = d.pop("kwargs", {})
            out[sec] = {**d, **kw}
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON (what ``config.json`` of a run holds)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def to_toml(self) -> str:
        """TOML text (``None`` values are left out: TOML has no null; they are the defaults anyway)."""
        import tomli_w

        return tomli_w.dumps(_drop_none(self.to_dict()))


_SECTIONS: dict[str, type] = {
    "model": ModelConfig, "data": DataConfig, "train": TrainConfig, "export": ExportConfig, "profile": ProfileConfig,
    "results": ResultsConfig,
}
#: sections whose unknown keys are keyword arguments for a builder / loader rather than errors
_OPEN_SECTIONS = ("model", "data")


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known keys: {', '.join(known)})"


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def coerce_value(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce_value(value, a, where)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{where} must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {_type_name(item)}, got {type(value).__name__} {value!r}")
        return [coerce_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__} {value!r}")
        return value
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - schema bug


def parse_section(cls: type, raw: Any, sec: str, src: str) -> Any:
    """The dataclass ``cls`` of section ``[sec]`` from its raw TOML table; ConfigError naming unknown or mistyped
    keys (with a "did you mean")."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: [{sec}] must be a table, got {type(raw).__name__} {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name != "kwargs"]
    known = [f.name for f in fields]
    values: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in known:
            values[key] = coerce_value(value, hints[key], f"{src}: {sec}.{key}")
        elif sec in _OPEN_SECTIONS:
            kwargs[key] = value
        else:
            raise ConfigError(f"{src}: unknown key {sec}.{key}{_suggest(key, known)}")
    missing = [f.name for f in fields
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in values]
    if missing:
        raise ConfigError(f"{src}: [{sec}] needs {', '.join(repr(m) for m in missing)}")
    if sec in _OPEN_SECTIONS:
        values["kwargs"] = kwargs
    return cls(**values)


def _check_choices(cfg: RunConfig, src: str) -> None:
    t = cfg.train
    for key, value, choices in (("optimizer", t.optimizer, OPTIMIZERS), ("readout", t.readout, READOUTS),
                                ("scheduler", t.scheduler, SCHEDULERS), ("device", t.device, DEVICES),
                                ("precision", t.precision, PRECISIONS),
                                ("weight_decay_on", t.weight_decay_on, DECAY_ON),
                                ("eval_checkpoint", t.eval_checkpoint, CHECKPOINTS)):
        if value not in choices:
            raise ConfigError(f"{src}: train.{key} = {value!r} is not one of {', '.join(choices)}")
    _check_train_numbers(t, src)
    _check_target(cfg, src)
    for key in ("epochs", "batch_size", "eval_batch_size"):
        if getattr(t, key) < 1:
            raise ConfigError(f"{src}: train.{key} must be >= 1, got {getattr(t, key)}")
    if t.lr <= 0:
        raise ConfigError(f"{src}: train.lr must be > 0, got {t.lr}")
    if t.max_steps is not None and t.max_steps < 1:
        raise ConfigError(f"{src}: train.max_steps must be >= 1 or left out, got {t.max_steps}")
    if not 0.0 <= cfg.data.val_fraction < 1.0:
        raise ConfigError(f"{src}: data.val_fraction must be in [0, 1), got {cfg.data.val_fraction}")
    if cfg.data.input_scale is not None and cfg.data.input_scale <= 0:
        raise ConfigError(f"{src}: data.input_scale must be > 0 or left out, got {cfg.data.input_scale}")
    if cfg.data.pad_end < 0:
        raise ConfigError(f"{src}: data.pad_end must be >= 0, got {cfg.data.pad_end}")
    for key in ("max_train", "max_test"):
        v = getattr(cfg.data, key)
        if v is not None and v < 1:
            raise ConfigError(f"{src}: data.{key} must be >= 1 or left out, got {v}")
    check_folds(cfg.data, src)
    for key, v in (("export.samples", cfg.export.samples), ("profile.samples", cfg.profile.samples)):
        if v < 1:
            raise ConfigError(f"{src}: {key} must be >= 1, got {v}")


def check_folds(data: DataConfig, src: str) -> None:
    """``data.cv_folds`` / ``data.cv_fold``: both or neither, at least 2 folds, the fold an index among them."""
    folds, fold = data.cv_folds, data.cv_fold
    if folds is None and fold is None:
        return
    if folds is None or fold is None:
        raise ConfigError(f"{src}: k-fold cross-validation needs both data.cv_folds (how many folds) and "
                          "data.cv_fold (which one is the test split, 0-based); leave both out to use the "
                          "dataset's own test split")
    for key, v in (("cv_folds", folds), ("cv_fold", fold)):  # also a DataConfig built in Python (fit, prepare)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ConfigError(f"{src}: data.{key} must be an integer, got {type(v).__name__} {v!r}")
    if folds < 2:
        raise ConfigError(f"{src}: data.cv_folds must be >= 2, got {folds}")
    if not 0 <= fold < folds:
        raise ConfigError(f"{src}: data.cv_fold must be in 0..{folds - 1} (data.cv_folds = {folds}), got {fold}")


def _check_target(cfg: RunConfig, src: str) -> None:
    """``train.target`` / ``train.target_epochs`` (spikeseq.train.target)."""
    t = cfg.train
    if t.target is not None and t.target not in TRAIN_TARGETS:
        raise ConfigError(f"{src}: train.target = {t.target!r} is not a target; target mode trains for one of "
                          f"{', '.join(TRAIN_TARGETS)} (leave it out for float training)")
    if t.target_epochs is not None:
        if t.target is None:
            raise ConfigError(f"{src}: train.target_epochs = {t.target_epochs} needs train.target "
                              f"({' or '.join(TRAIN_TARGETS)})")
        if not 1 <= t.target_epochs <= t.epochs:
            raise ConfigError(f"{src}: train.target_epochs must be in 1..train.epochs ({t.epochs}), got "
                              f"{t.target_epochs}")
    if t.target is not None and t.nproc > 1:
        raise ConfigError(f"{src}: train.target runs in one process; set train.nproc = 1")
    if t.target is not None and t.precision != "float32":
        raise ConfigError(f"{src}: train.target computes the target's exact arithmetic; set train.precision = "
                          "\"float32\" (bf16 autocast would round it)")


def _check_numbers(cfg: RunConfig, src: str) -> None:
    """Every numeric option finite and in its range, checked before a run directory exists (the message names the
    option and says what is expected)."""
    t = cfg.train

    def need(key: str, value: float | None, ok: bool, expected: str) -> None:
        if value is not None and not ok:
            raise ConfigError(f"{src}: {key} must be {expected}, got {value}")

    finite = lambda v: v is None or math.isfinite(v)  # noqa: E731
    need("train.lr", t.lr, finite(t.lr) and t.lr > 0, "> 0 and finite (e.g. 1e-3)")
    need("train.weight_decay", t.weight_decay, finite(t.weight_decay) and t.weight_decay >= 0,
         ">= 0 and finite")
    need("train.momentum", t.momentum, finite(t.momentum) and 0 <= t.momentum < 1, "in [0, 1)")
    if t.grad_clip is not None:
        need("train.grad_clip", t.grad_clip, finite(t.grad_clip) and t.grad_clip > 0,
             "> 0 and finite, or left out")
    if t.threads is not None:
        need("train.threads", t.threads, t.threads >= 1, "an integer >= 1 or left out (torch's default)")
    need("data.val_fraction", cfg.data.val_fraction, finite(cfg.data.val_fraction), "a number in [0, 1)")
    if cfg.data.input_scale is not None:
        need("data.input_scale", cfg.data.input_scale, finite(cfg.data.input_scale),
             "> 0 and finite, or left out")
    if cfg.export.dt is not None:
        need("export.dt", cfg.export.dt, finite(cfg.export.dt) and cfg.export.dt > 0,
             "> 0 and finite (seconds), or left out (the model's own dt)")
    for sec, kwargs in (("model", cfg.model.kwargs), ("data", cfg.data.kwargs)):
        _check_kwargs(kwargs, f"{sec}.", src)


#: builder / loader keywords that are physical step sizes, time constants, thresholds or counts: they must be > 0
_POSITIVE_KEYS = ("dt", "v_th", "window", "stride", "hidden", "n_in", "n_out", "n_bins", "duration")


def _check_kwargs(kwargs: dict[str, Any], prefix: str, src: str) -> None:
    for key, value in kwargs.items():
        if isinstance(value, dict):
            _check_kwargs(value, f"{prefix}{key}.", src)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise ConfigError(f"{src}: {prefix}{key} must be a finite number, got {value}")
        if (key in _POSITIVE_KEYS or key.startswith(("tau", "v_th"))) and value <= 0:
            raise ConfigError(f"{src}: {prefix}{key} must be > 0, got {value}"
                              + ("; time constants and dt are in seconds" if key == "dt" or key.startswith("tau")
                                 else ""))


def _check_train_numbers(t: TrainConfig, src: str) -> None:
    """Ranges of the optimisation keys of ``[train]`` and the shape of ``[train.groups]``."""
    if not 0.0 < t.pct_start < 1.0:
        raise ConfigError(f"{src}: train.pct_start must be in (0, 1), got {t.pct_start}")
    if t.gamma <= 0:
        raise ConfigError(f"{src}: train.gamma must be > 0, got {t.gamma}")
    for key in ("step_size", "accumulate", "nproc"):
        if getattr(t, key) < 1:
            raise ConfigError(f"{src}: train.{key} must be >= 1, got {getattr(t, key)}")
    if t.weight_decay < 0:
        raise ConfigError(f"{src}: train.weight_decay must be >= 0, got {t.weight_decay}")
    if t.grad_clip is not None and t.grad_clip <= 0:
        raise ConfigError(f"{src}: train.grad_clip must be > 0 or left out, got {t.grad_clip}")
    if t.checkpoint_every is not None and t.checkpoint_every < 1:
        raise ConfigError(f"{src}: train.checkpoint_every must be >= 1 or left out, got {t.checkpoint_every}")
    group_keys = {"lr": float, "weight_decay": float, "scheduler": str}
    for name, table in t.groups.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{src}: train.groups.{name} must be a table such as {{lr = 0.1}}, got {table!r}")
        for key, value in table.items():
            if key not in group_keys:
                raise ConfigError(f"{src}: unknown key train.groups.{name}.{key}{_suggest(key, list(group_keys))}")
            table[key] = coerce_value(value, group_keys[key], f"{src}: train.groups.{name}.{key}")
        if table.get("scheduler", "none") not in SCHEDULERS:
            raise ConfigError(f"{src}: train.groups.{name}.scheduler = {table['scheduler']!r} is not one of "
                              f"{', '.join(SCHEDULERS)}")
        if table.get("lr", 1.0) <= 0 or table.get("weight_decay", 0.0) < 0:
            raise ConfigError(f"{src}: train.groups.{name}: lr must be > 0 and weight_decay >= 0, got {table}")


def from_dict(raw: dict[str, Any], src: str = "<config>") -> RunConfig:
    """Validate a TOML-shaped dict into a :class:`RunConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: the config must be a table of sections")
    top_known = ["name", "task", *_SECTIONS]
    for key in raw:
        if key not in top_known:
            raise ConfigError(f"{src}: unknown section or key {key!r}{_suggest(key, top_known)}")
    for sec in ("model", "data"):
        if sec not in raw:
            raise ConfigError(f"{src}: missing section [{sec}] (it needs at least name = \"...\")")
    parts = {sec: parse_section(cls, raw[sec], sec, src) for sec, cls in _SECTIONS.items() if sec in raw}
    name = coerce_value(raw.get("name", ""), str, f"{src}: name")
    task = raw.get("task")
    if task is not None and not isinstance(task, str):
        raise ConfigError(f"{src}: task must be a string such as \"classification\", got {type(task).__name__} "
                          f"{task!r}")
    cfg = RunConfig(name=name, task=task, **parts)
    _check_numbers(cfg, src)
    _check_choices(cfg, src)
    return cfg


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=0.01"`` -> ``(["train", "lr"], 0.01)``; non-TOML values stay strings."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set train.lr=0.01")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set {item!r}: the key must be dotted names like train.lr")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """A copy of the TOML data ``raw`` with each ``--set key=value`` applied; ``ConfigError`` for a malformed one."""
    raw = json.loads(json.dumps(raw))  # deep copy of plain TOML data
    for item in overrides or []:
        path, value = parse_override(item)
        node = raw
        for p in path[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {p!r} is not a section")
            node = nxt
        node[path[-1]] = value
    return raw


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; ``ConfigError`` when it is missing, not UTF-8 or not valid TOML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (give the path of a TOML file, e.g. examples/*.toml)")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        bom = path.read_bytes().startswith(b"\xef\xbb\xbf")
        raise ConfigError(f"{path}: not valid TOML: {e}" + ("; the file starts with a UTF-8 byte-order mark, which "
                          "TOML does not allow: save it as UTF-8 without BOM" if bom else "")) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason})") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a TOML config."""
    raw = apply_overrides(read_toml(path), overrides)
    return from_dict(raw, str(path))


def load_json(path: str | Path) -> RunConfig:
    """The resolved config saved in a run directory (``config.json``)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: is {path.parent} a spikeseq run directory?") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: corrupt JSON ({e})") from None
    return from_dict(raw, str(path))
