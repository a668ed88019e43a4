"""Training a stream of tasks (the ``continual`` task, :mod:`spikeseq.train.tasks.continual`) through the one
training loop, :func:`spikeseq.train.loop.fit`: one ``fit`` call per task on the model the stream keeps, with the
continual plug-in (HLOP, GPM, EWC) attached to the model and carried through :class:`spikeseq.train.loop.Hooks`.

Run directory::

    RUN/
      run.json config.json      provenance and the recipe (``spikeseq train``)
      tasks/<task>/             the loop's run of each task: metrics.jsonl, checkpoints/last.pt (+ plug-in state)
      checkpoints/last.pt       the stream after each finished task: model, plug-in, R so far, next task
      continual.json            R, ACC, BWT, training time per task, the plug-in's memory

``--resume`` continues where the run stopped: the stream checkpoint gives the next task, that task's loop
checkpoint (if any) the position inside it, so a resumed stream is bit for bit the uninterrupted one.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError
from spikeseq.train import checkpoint, distributed, loop
from spikeseq.train.config import DataConfig, RunConfig
from spikeseq.train.datasets import Prepared, Split
from spikeseq.train.rundir import RunDir, write_json
from spikeseq.train.tasks.continual import (
    CONTINUAL,
    RESULT,
    ContinualConfig,
    build_model,
    build_stream,
    evaluate_task,
    format_matrix,
    global_labels,
    load,
    make_plugin,
    task_batches,
    task_loss,
    task_mask,
    task_split,
)


class StreamOrder:
    """The sample order of every epoch of a stream: one generator seeded with the run's seed draws a permutation per
    epoch, task 0's epochs first, then task 1's, ... The order of (task, epoch) is replayed from the seed and the
    sizes of the earlier tasks, a pure function of them, so a resumed stream needs no generator state."""

    def __init__(self, seed: int, sizes: list[int], epochs: int) -> None:
        self.seed, self.sizes, self.epochs = int(seed), list(sizes), int(epochs)

    def of(self, unit: int):
        """``order(epoch, n)`` of training unit ``unit`` (a task; the one multitask unit is 0), for
        :func:`spikeseq.train.loop.fit`."""
        def order(epoch: int, n: int) -> torch.Tensor:
            g = torch.Generator().manual_seed(self.seed)
            for k in range(unit):
                for _ in range(self.epochs):
                    torch.randperm(self.sizes[k], generator=g)
            for _ in range(epoch):
                torch.randperm(n, generator=g)
            return torch.randperm(n, generator=g)
        return order


def _plugin_hooks(plugin):
    """:class:`spikeseq.train.loop.Hooks` that carry a continual plug-in through the training loop: its
    ``before_step`` (EWC's penalty gradient) once per optimizer step, its state in every checkpoint."""

    class PluginHooks(loop.Hooks):
        """The plug-in's per-step hook and checkpoint state (see :func:`_plugin_hooks`)."""

        def before_step(self, model: nn.Module) -> None:
            """Call the plug-in's ``before_step`` (when it has one)."""
            fn = getattr(plugin, "before_step", None)
            if callable(fn):
                fn()

        def state_dict(self) -> dict[str, Any] | None:
            """``{"plugin": plugin.state_dict()}``."""
            return {"plugin": plugin.state_dict()} if plugin is not None else None

        def load_state_dict(self, state: dict[str, Any] | None) -> None:
            """Restore the plug-in (mid-task: its subspaces, momentum, frozen parameters, hooks)."""
            if plugin is not None and state is not None:
                plugin.load_state_dict(state["plugin"])

    return PluginHooks()


def _cat_samples(xs: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat`` along samples; inputs constant over time as stride-0 views (static images repeated for ``T``
    steps) stay such a view, instead of being materialised ``T`` times."""
    if all(x.dim() > 1 and x.stride(1) == 0 for x in xs):
        base = torch.cat([x[:, :1] for x in xs])
        return base.expand(base.shape[0], xs[0].shape[1], *base.shape[2:])
    return torch.cat(xs)


def _unit_config(cfg: ContinualConfig, stream, unit: str) -> RunConfig:
    """The :class:`~spikeseq.train.config.RunConfig` of one training unit (a task, or multitask's union)."""
    return RunConfig(model=cfg.model, data=DataConfig(name=f"stream {stream.name} {unit}", val_fraction=0.0),
                     name=f"{cfg.name} {unit}".strip(), task="continual", train=cfg.train)


def _prepared(stream, train: Split) -> Prepared:
    empty = Split(train.x[:0], train.y[:0])
    n = stream.n_outputs
    return Prepared(train, empty, empty, n, [str(i) for i in range(n)], None,
                    {"n_train": len(train), "stream": stream.name})


def check_stream_kwargs(cfg: ContinualConfig) -> None:
    """:class:`ConfigError` naming the ``[stream]`` key whose value has the wrong type for its builder (an integer
    key such as ``steps`` or ``n_tasks`` given a string or a fraction, a flag given a string), judged by the type of
    the builder's default; the builders would fail deep inside with a raw TypeError. Unknown keys are refused by
    :func:`spikeseq.data.streams.build`."""
    import inspect

    from spikeseq.data import streams

    fn = streams.STREAMS.get(cfg.stream.name)
    if fn is None:
        return
    params = inspect.signature(fn).parameters
    for key, value in cfg.stream.kwargs.items():
        p = params.get(key)
        if p is None or p.default is inspect.Parameter.empty or p.default is None:
            continue
        d = p.default
        if isinstance(d, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(d, int):
            ok, want = isinstance(value, int) and not isinstance(value, bool), "a whole number"
        elif isinstance(d, float):
            ok, want = isinstance(value, int | float) and not isinstance(value, bool), "a number"
        elif isinstance(d, str):
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise ConfigError(f"stream.{key} of stream {cfg.stream.name!r} must be {want} (its default is {d!r}), got "
                              f"{value!r}")


def preflight(cfg: ContinualConfig) -> None:
    """Build what a run needs, the stream, the model and the plug-in, and discard them: a recipe that cannot run (a
    stream option of the wrong type or range, a layer the model lacks, more subspace neurons than a layer's inputs)
    is refused before anything is written. A run directory written first would be left behind, and the corrected
    command would then be told that the folder already holds a run."""
    check_stream_kwargs(cfg)
    stream = build_stream(cfg)
    model = build_model(cfg, stream)
    plugin = None if cfg.method == "multitask" else make_plugin(cfg.method, model, cfg.method_kwargs)
    if plugin is not None:
        plugin.detach()


def run(cfg: ContinualConfig, out: str | Path | None = None, *, resume: bool = False, quiet: bool = True,
        stream=None, on_step: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the recipe; every task trains through :func:`spikeseq.train.loop.fit` (the one training loop) in its
    own run directory ``<out>/tasks/<unit>/`` (metrics, ``last.pt`` with the plug-in's state: a resume continues
    mid-task), and ``<out>/checkpoints/last.pt`` holds the stream after each finished task (model, plug-in, R).
    Writes ``<out>/continual.json``; without ``out`` everything goes to a temporary folder. ``on_step(unit,
    step)`` is called after every optimizer step (tests simulate kills). Returns the result dict (``status``
    ``"interrupted"`` and nothing written when a task was stopped by Ctrl-C: ``resume=True`` continues it)."""
    import tempfile

    from spikeseq.continual import metrics
    from spikeseq.continual.plugin import TaskData

    t = cfg.train
    if t.threads is not None:
        torch.set_num_threads(t.threads)
    checkpoint.seed_everything(t.seed)
    if stream is None:
        check_stream_kwargs(cfg)
    stream = stream if stream is not None else build_stream(cfg)
    model = build_model(cfg, stream).to(distributed.pick_device(t.device, int(os.environ.get("LOCAL_RANK", "0"))))
    main = int(os.environ.get("RANK", "0")) == 0
    n_tasks = len(stream.tasks)
    r = torch.full((n_tasks, n_tasks), math.nan, dtype=torch.float64)
    times: list[float] = []
    multitask = cfg.method == "multitask"
    with tempfile.TemporaryDirectory(prefix="spikeseq-continual-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        ck_path = root / "checkpoints" / "last.pt"
        if main:
            (root / "checkpoints").mkdir(parents=True, exist_ok=True)
            write_json(root / "config.json", cfg.to_dict())
        plugin = None if multitask else make_plugin(cfg.method, model, cfg.method_kwargs)
        hooks = _plugin_hooks(plugin)
        units = ["multitask"] if multitask else [f"task{i}" for i in range(n_tasks)]
        splits = [task_split(stream, i, "train") for i in range(n_tasks)]
        if multitask:
            splits = [Split(_cat_samples([s.x for s in splits]), torch.cat([s.y for s in splits]))]
        order = StreamOrder(t.seed, [len(s) for s in splits], t.epochs)
        start = 0
        if resume:
            if out is None:
                raise ConfigError("resume=True needs the run directory `out` of the stream to continue")
            if ck_path.is_file():
                ck = checkpoint.load(ck_path)
                model.load_state_dict(ck["model"])
                if plugin is not None:
                    plugin.load_state_dict(ck["plugin"])
                r, times, start = ck["R"], list(ck["times"]), int(ck["next_task"])
                checkpoint.set_rng_state(ck["rng"])
            elif not (root / "tasks" / units[0] / "checkpoints" / "last.pt").is_file():
                raise ConfigError(f"--resume: {root} holds no checkpoint of this stream (checkpoints/last.pt or "
                                  f"tasks/{units[0]}/checkpoints/last.pt); start it without --resume")
        for u in range(start, len(units)):
            run_dir = RunDir(root / "tasks" / units[u])
            resume_unit = resume and run_dir.last.is_file()
            run_dir.ckpt_dir.mkdir(parents=True, exist_ok=True)
            if main and not resume_unit and run_dir.metrics.is_file():
                run_dir.metrics.unlink()  # an attempt killed before its first checkpoint
            if plugin is not None and not resume_unit:
                plugin.begin_task(u)
            t0 = time.perf_counter()
            summary = loop.fit(_unit_config(cfg, stream, units[u]), run_dir, resume=resume_unit,
                          data=_prepared(stream, splits[u]), model=model, task=CONTINUAL, hooks=hooks,
                          order=order.of(u), quiet=quiet, desc=f"{units[u]} ",
                          on_step=None if on_step is None else (lambda s, _u=u: on_step(_u, s)))
            if summary["status"] == "interrupted":
                return {"status": "interrupted", "unit": units[u], "out": str(root)}
            times.append(time.perf_counter() - t0)
            if plugin is not None:
                mask = task_mask(stream, u)
                k = stream.tasks[u]
                batches = task_batches(k.train_x, global_labels(stream, u, k.train_y), t.seed * 1000 + u)
                plugin.end_task(TaskData(u, batches, lambda x, y, _mask=mask: task_loss(model, x, y, _mask, cfg)))
            if multitask:
                final = torch.tensor([evaluate_task(model, stream, i, cfg) for i in range(n_tasks)],
                                     dtype=torch.float64)
                r = torch.tril(final.expand(n_tasks, -1).clone()) + torch.triu(torch.full_like(r, math.nan), 1)
            else:
                for i in range(n_tasks):
                    r[u, i] = evaluate_task(model, stream, i, cfg)
            if not quiet and main:
                for row in range(n_tasks) if multitask else (u,):
                    print(f"after {units[u]}: " + " ".join(f"{float(v):.3f}" for v in r[row] if not math.isnan(v)),
                          file=sys.stderr)
            if main:
                checkpoint.save(ck_path, {"model": model.state_dict(), "R": r.clone(), "times": list(times),
                                          "plugin": plugin.state_dict() if plugin is not None else None,
                                          "next_task": u + 1, "rng": checkpoint.rng_state()})
    if plugin is not None:
        plugin.detach()
    rows = [[None if math.isnan(float(v)) else float(v) for v in row] for row in r]
    result = {"status": "finished", "method": cfg.method, "stream": stream.name, "setting": stream.setting,
              "n_tasks": n_tasks, "seed": t.seed, "R": rows, **metrics.summary(r),
              "train_time_s": times, "tasks": [k.name for k in stream.tasks],
              "memory": plugin.memory() if plugin is not None and hasattr(plugin, "memory") else None,
              "diagnostics": plugin.diagnostics() if plugin is not None and hasattr(plugin, "diagnostics") else None,
              "stream_info": {k: v for k, v in stream.info.items() if k != "standardise"}}
    if out is not None and main:
        write_json(Path(out) / RESULT, result)
    return result


def cli_run(args) -> int:
    """``spikeseq train RECIPE.toml`` for ``task = "continual"``: runs the stream into ``--out`` (default
    ``runs/<recipe name>``, ``runs/<recipe name>-s<seed>`` with ``--seed``), prints R, ACC and BWT, and the run
    directory. ``--nproc N`` trains every task data-parallel in N processes (torchrun; the plug-ins keep one state
    on every rank); ``--resume`` continues a stopped stream, mid-task included. Returns 0, or 130 when stopped."""
    import shutil

    from spikeseq.provenance import git_commit
    from spikeseq.train.rundir import read_json, versions

    cfg = load(args.config, args.overrides)
    nproc = args.nproc if args.nproc is not None else cfg.train.nproc
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    seed = getattr(args, "seed", None)
    out = Path(args.out) if args.out is not None else \
        Path("runs") / (Path(args.config).stem + ("" if seed is None else f"-s{seed}"))
    attach = bool(getattr(args, "attach", False))
    if not attach:
        saved = out / "config.json"
        if args.resume and saved.is_file() and load(saved).to_dict() != cfg.to_dict():
            raise ConfigError(f"--resume: the recipe differs from the one saved in {saved}; resume with the saved "
                              f"one (spikeseq train --resume --out {out}) or start a new run")
        if out.exists() and any(out.iterdir()) and not (args.resume or args.force):
            raise ConfigError(f"{out} already holds a run; pass --resume to continue it or --force to start over")
        # nothing written or removed yet: a recipe that cannot run leaves no half-made run directory (and --force
        # keeps the old run)
        preflight(cfg)
        if args.force and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"status": "running", "task": "continual", "seed": cfg.train.seed, "world_size": nproc,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": versions(),
                "git": git_commit(), "command": ["spikeseq", *sys.argv[1:]]}
        write_json(out / "run.json", meta)
        if nproc > 1 and distributed.env_world_size() == 1:
            argv = ["train", str(args.config), "--out", str(out), "--attach"]
            for o in args.overrides:
                argv += ["--set", o]
            if args.resume:
                argv.append("--resume")
            print(f"spikeseq train: {nproc} processes with torchrun -> {out}", file=sys.stderr)
            rc = distributed.launch(nproc, argv)
            result = read_json(out / RESULT) if rc == 0 and (out / RESULT).is_file() else None
            return _finish(out, meta, result, rc)
    finished = False
    try:
        result = run(cfg, out, resume=args.resume, quiet=False)
        finished = True
    finally:
        distributed.shutdown(synchronise=finished)
    if attach:
        return 130 if result["status"] == "interrupted" else 0
    return _finish(out, meta, result, 0)


def _finish(out: Path, meta: dict[str, Any], result: dict[str, Any] | None, rc: int) -> int:

    if result is None or result.get("status") == "interrupted":
        write_json(out / "run.json", {**meta, "status": "interrupted" if rc in (0, 130) else "failed"})
        if rc not in (0, 130):
            raise ConfigError(f"the continual run in {out} failed (exit code {rc}); see the messages above")
        print(f"spikeseq train: interrupted; resume with: spikeseq train CONFIG --resume --out {out}",
              file=sys.stderr)
        return 130
    write_json(out / "run.json", {**meta, "status": "finished"})
    print(format_matrix(result), file=sys.stderr)
    print(out)
    return 0
