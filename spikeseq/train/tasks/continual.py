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

Per task ``t`` the plug-in's ``begin_task(t)`` runs, then ``epochs`` epochs of minibatch training (cross-entropy on
the task's outputs: in the task-incremental setting the outputs of other tasks are masked out), then
``end_task(TaskData)``, then every task's test split is evaluated with its own task id: row ``t`` of R.
``multitask`` (the upper bound) trains once on the union of all tasks and fills every row with the final
accuracies (BWT 0 by construction). Checkpoints after every task (model, optimizer-free: a new one per task,
plug-in state, R so far) make ``--resume`` continue with the next task.

HLOP and GPM protect old tasks by projecting gradients; the update stays in the projected space only for plain
SGD (momentum allowed: it sums projected gradients) without weight decay, so other optimizers are refused.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.errors import ConfigError, ContinualError
from spikeseq.train import checkpoint
from spikeseq.train.config import ModelConfig, TrainConfig, apply_overrides, coerce_value, parse_section, read_toml
from spikeseq.train.datasets import time_first
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
    if "spiking" in kw and kw["spiking"] is not None:
        kw["spiking"] = tuple(kw["spiking"])
    return cls(**kw)


def load(path: str | Path, overrides: list[str] | None = None) -> ContinualConfig:
    """Read, override (``--set``) and validate a continual recipe."""
    return from_dict(apply_overrides(read_toml(path), overrides), str(path))


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
    """The recipe's registry model; ``n_in`` / ``n_out`` default to the stream's input size and outputs."""
    from spikeseq.models import registry

    kw = dict(cfg.model.kwargs)
    n_in = math.prod(stream.sample_shape[1:])
    kw.setdefault("n_in", n_in)
    kw.setdefault("n_out", stream.n_outputs)
    if kw["n_out"] != stream.n_outputs:
        raise ConfigError(f"model.n_out = {kw['n_out']} but stream {stream.name!r} needs {stream.n_outputs} outputs")
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
    return {"hlop": HLOP, "gpm": GPM, "ewc": EWC}[method](model, conf) if conf is not None else None


def task_mask(stream, task: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """Additive logit mask ``[n_outputs]`` of task ``task``: 0 on its outputs, -inf elsewhere (task-incremental);
    all 0 for a shared head. Raises :class:`ContinualError` for a task id outside the stream."""
    if not isinstance(task, int) or not 0 <= task < len(stream.tasks):
        raise ContinualError(f"task id {task!r} is out of range: stream {stream.name!r} has tasks 0..."
                             f"{len(stream.tasks) - 1}")
    m = torch.zeros(stream.n_outputs)
    if stream.setting == "task":
        m.fill_(-math.inf)
        m[torch.tensor(stream.tasks[task].classes)] = 0
    return m if like is None else m.to(like)


def _global_labels(stream, task: int, y: torch.Tensor) -> torch.Tensor:
    return torch.tensor(stream.tasks[task].classes)[y]


def evaluate_task(model: nn.Module, stream, task: int, cfg: Any) -> float:
    """Test accuracy on task ``task`` with its task id (its head / mask); :class:`ContinualError` for an id
    outside the stream."""
    mask = task_mask(stream, task)
    t = stream.tasks[task]
    split = TaskSplit(t.test_x, _global_labels(stream, task, t.test_y), mask)
    return continual_evaluate(model, split, cfg, torch.device("cpu"), stream.n_outputs)["acc"]


def _batches(x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor, size: int, gen: torch.Generator | None):
    order = torch.randperm(x.shape[0], generator=gen) if gen is not None else torch.arange(x.shape[0])
    for i in range(0, x.shape[0], size):
        idx = order[i:i + size]
        yield time_first(x[idx]), y[idx], masks[idx]


def continual_batch(output: Any, target: tuple[torch.Tensor, torch.Tensor], cfg: Any) -> BatchResult:
    """Summed cross-entropy over each sample's own task outputs: ``target = (y global labels [B], mask [B, K])``
    with the additive logit mask of :func:`task_mask` (the task-incremental heads; zeros for a shared head)."""
    y, mask = target
    logits = logits_from(output, cfg.train.readout) + mask
    return BatchResult(F.cross_entropy(logits, y, reduction="sum"), float((logits.argmax(1) == y).sum()),
                       int(y.shape[0]))


def continual_evaluate(model: nn.Module, split: Any, cfg: Any, device: torch.device, n_classes: int,
                       desc: str = "") -> dict[str, Any]:
    """Accuracy and loss of one task's split (``split`` has ``x``, ``y`` global labels and ``mask`` ``[K]``)."""
    model.eval()
    logits = []
    with torch.no_grad():
        for i in range(0, split.x.shape[0], cfg.train.eval_batch_size):
            xb = time_first(split.x[i:i + cfg.train.eval_batch_size]).to(device)
            logits.append(logits_from(model(xb), cfg.train.readout).float().cpu() + split.mask)
    lg = torch.cat(logits)
    return {"n": int(split.y.shape[0]), "loss": float(F.cross_entropy(lg, split.y)),
            "acc": float((lg.argmax(1) == split.y).float().mean())}


@dataclass
class TaskSplit:
    """One task's test split for :func:`continual_evaluate`."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor


CONTINUAL = register_task(Task(
    name="continual", batch=continual_batch, evaluate=continual_evaluate, metric="acc", train_metric="acc",
    report=("R", "acc", "bwt"),
    description="a stream of tasks learned one after another: accuracy matrix R, ACC and BWT",
))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, cfg: Any) -> torch.Tensor:
    res = continual_batch(model(x), (y, mask.expand(y.shape[0], -1)), cfg)
    return res.loss_sum / res.count


def train_epochs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor, cfg: ContinualConfig,
                 gen: torch.Generator, quiet: bool = True, what: str = "") -> float:
    """``cfg.epochs`` epochs of SGD/Adam on ``(x [N, T, ...], y global labels, masks [N, n_out])``; a fresh
    optimizer over the parameters that still require gradients. Returns the training time in seconds."""
    from spikeseq.train import optim

    t = cfg.train
    groups, _ = optim.param_groups(model, t)  # the parameters that still require gradients
    opt = optim.make_optimizer(groups, t)
    params = [p for g in groups for p in g["params"]]
    t0 = time.perf_counter()
    for epoch in range(t.epochs):
        model.train()
        tot, n = 0.0, 0
        for xb, yb, mb in _batches(x, y, masks, t.batch_size, gen):
            res = continual_batch(model(xb), (yb, mb), cfg)
            opt.zero_grad(set_to_none=True)
            (res.loss_sum / res.count).backward()
            if t.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, t.grad_clip)
            opt.step()
            tot += float(res.loss_sum.detach())
            n += res.count
        if not quiet:
            print(f"{what} epoch {epoch + 1}/{t.epochs} loss {tot / max(n, 1):.4f}", file=sys.stderr)
    return time.perf_counter() - t0


def run(cfg: ContinualConfig, out: str | Path | None = None, *, resume: bool = False, quiet: bool = True,
        stream=None) -> dict[str, Any]:
    """Run the recipe; writes ``<out>/continual.json`` (and a checkpoint per task) when ``out`` is given."""
    from spikeseq.continual import metrics
    from spikeseq.continual.plugin import TaskData
    from spikeseq.train.rundir import write_json

    t = cfg.train
    if t.threads is not None:
        torch.set_num_threads(t.threads)
    checkpoint.seed_everything(t.seed)
    stream = stream if stream is not None else build_stream(cfg)
    model = build_model(cfg, stream)
    n_tasks = len(stream.tasks)
    r = torch.full((n_tasks, n_tasks), math.nan, dtype=torch.float64)
    times: list[float] = []
    gen = torch.Generator().manual_seed(int(t.seed))
    out = Path(out) if out is not None else None
    ck_path = out / "checkpoints" / "last.pt" if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg.to_dict())
    if cfg.method == "multitask":
        xs = torch.cat([k.train_x for k in stream.tasks])
        ys = torch.cat([_global_labels(stream, i, k.train_y) for i, k in enumerate(stream.tasks)])
        ms = torch.cat([task_mask(stream, i).expand(k.train_x.shape[0], -1) for i, k in enumerate(stream.tasks)])
        times.append(train_epochs(model, xs, ys, ms, cfg, gen, quiet, "multitask"))
        final = torch.tensor([evaluate_task(model, stream, i, cfg) for i in range(n_tasks)],
                             dtype=torch.float64)
        r = torch.tril(final.expand(n_tasks, -1).clone()) + torch.triu(torch.full_like(r, math.nan), 1)
        plugin = None
        start = n_tasks
    else:
        plugin = make_plugin(cfg.method, model, cfg.method_kwargs)
        start = 0
        if resume:
            if ck_path is None or not ck_path.is_file():
                raise ConfigError(f"--resume: no checkpoint at {ck_path}")
            ck = checkpoint.load(ck_path)
            model.load_state_dict(ck["model"])
            if plugin is not None:
                plugin.load_state_dict(ck["plugin"])
            r, times, start = ck["R"], list(ck["times"]), int(ck["next_task"])
            gen.set_state(ck["generator"])
            checkpoint.set_rng_state(ck["rng"])
    for task in range(start, n_tasks):
        k = stream.tasks[task]
        if plugin is not None:
            plugin.begin_task(task)
        yg = _global_labels(stream, task, k.train_y)
        masks = task_mask(stream, task).expand(k.train_x.shape[0], -1)
        times.append(train_epochs(model, k.train_x, yg, masks, cfg, gen, quiet, f"task {task}"))
        if plugin is not None:
            mask = task_mask(stream, task)

            def batches(size: int, _k=k, _yg=yg, _m=masks, _seed=t.seed * 1000 + task):
                order = torch.Generator().manual_seed(_seed)  # shuffled, the same order on every call
                for xb, yb, _ in _batches(_k.train_x, _yg, _m, size, order):
                    yield xb, yb

            plugin.end_task(TaskData(task, batches, lambda x, y, _mask=mask: _loss(model, x, y, _mask, cfg)))
        for i in range(n_tasks):
            r[task, i] = evaluate_task(model, stream, i, cfg)
        if not quiet:
            print(f"after task {task}: " + " ".join(f"{float(v):.3f}" for v in r[task]), file=sys.stderr)
        if ck_path is not None:
            checkpoint.save(ck_path, {"model": model.state_dict(), "R": r.clone(), "times": list(times),
                                      "plugin": plugin.state_dict() if plugin is not None else None,
                                      "next_task": task + 1, "generator": gen.get_state(),
                                      "rng": checkpoint.rng_state()})
    if plugin is not None:
        plugin.detach()
    rows = [[None if math.isnan(float(v)) else float(v) for v in row] for row in r]
    result = {"method": cfg.method, "stream": stream.name, "setting": stream.setting, "n_tasks": n_tasks,
              "seed": t.seed, "R": rows, **metrics.summary(r),
              "train_time_s": times, "tasks": [k.name for k in stream.tasks],
              "memory": plugin.memory() if plugin is not None and hasattr(plugin, "memory") else None,
              "stream_info": {k: v for k, v in stream.info.items() if k != "standardise"}}
    if out is not None:
        write_json(out / RESULT, result)
    return result


def format_matrix(result: dict[str, Any]) -> str:
    """R as a text table (rows: after training task j; columns: test task i), then ACC and BWT in percent."""
    n = result["n_tasks"]
    lines = ["after \\ test " + " ".join(f"{i:>6d}" for i in range(n))]
    for j, row in enumerate(result["R"]):
        lines.append(f"task {j:<8d} " + " ".join("     -" if v is None else f"{100 * v:6.1f}" for v in row))
    lines.append(f"ACC {100 * result['acc']:.2f}  BWT {100 * result['bwt']:+.2f}  ({result['method']}, "
                 f"{result['stream']}, seed {result['seed']})")
    return "\n".join(lines)


def cli_run(args) -> int:
    """``spikeseq train RECIPE.toml`` for ``task = "continual"``: runs the stream into ``--out`` (default
    ``runs/<recipe name>``), prints R, ACC and BWT, and the run directory."""
    import shutil

    if args.nproc not in (None, 1):
        raise ConfigError("the continual task runs in one process (its plug-ins are data-parallel safe, the stream "
                          "runner is not yet): drop --nproc")
    cfg = load(args.config, args.overrides)
    out = Path(args.out) if args.out is not None else Path("runs") / Path(args.config).stem
    if out.exists() and any(out.iterdir()) and not (args.resume or args.force):
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or --force to start over")
    if args.force and out.exists():
        shutil.rmtree(out)
    from spikeseq.provenance import git_commit
    from spikeseq.train.rundir import versions, write_json

    out.mkdir(parents=True, exist_ok=True)
    meta = {"status": "running", "task": "continual", "seed": cfg.train.seed, "world_size": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": versions(),
            "git": git_commit(), "command": ["spikeseq", *sys.argv[1:]]}
    write_json(out / "run.json", meta)
    result = run(cfg, out, resume=args.resume, quiet=False)
    write_json(out / "run.json", {**meta, "status": "finished"})
    print(format_matrix(result), file=sys.stderr)
    print(out)
    return 0
