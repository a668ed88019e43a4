"""The training loop: seeded, resumable bit for bit, data-parallel under torchrun, clean on Ctrl-C.

Reproducibility: the model is built right after seeding torch / numpy / random with ``train.seed``; the order of
epoch ``e`` is ``randperm`` from a generator seeded with ``(seed, e)``; a checkpoint stores the position
(epoch, batch, step), the optimizer / scheduler state, the epoch's running sums and all RNG states, so resuming from
``last.pt`` replays exactly what an uninterrupted run would have done (on the same device and thread count).

The best checkpoint has the highest validation accuracy (training accuracy when ``val_fraction = 0``), ties
broken by the lower loss. Order of writes at the end of an epoch: the metrics line, ``best.pt`` (if improved),
then ``last.pt``. A resume drops metric lines of epochs that ``last.pt`` does not cover, so a kill between any
two writes loses nothing.

Gradient accumulation (``train.accumulate = A``): the micro-batches of an epoch are taken in windows of ``A``;
the loss of each is ``sum / (samples in its window) * world_size``, so one optimizer step sees the gradient of the
mean over the window, whatever the micro-batch and process counts. Checkpoints and stops happen only after an
optimizer step, never inside a window. Under DDP a checkpoint holds the epoch's running sums reduced over all ranks
(restored on rank 0 only) and the RNG states of every rank (each rank restores its own; after the identical
initialisation each rank draws its own stream, seeded with :func:`rank_seed`); resuming needs the same number of
processes.

Model hooks (duck-typed, optional): ``model.train_epoch_start(epoch, epochs)`` before each epoch (e.g. an annealed
kernel width) and ``model.train_step_end()`` after each optimizer step (e.g. clamping delays into range).

Loop hooks (:class:`Hooks`, for methods that act around the optimizer step without owning a loop, e.g. the
continual-learning plug-ins of :mod:`spikeseq.train.tasks.continual`): ``before_step`` once per optimizer step,
after the window's last backward (gradients complete and, under DDP, averaged over ranks) and before clipping;
``after_step`` after ``opt.step()``; ``state_dict`` is stored in every checkpoint and handed back to
``load_state_dict`` on resume, before the optimizer is built (the hooks' state may decide which parameters
train). A caller that trains a model it built itself (a stream of tasks, one ``fit`` per task) passes ``model``,
``task`` (a :class:`~spikeseq.train.tasks.Task`, instead of the recipe's) and ``order`` (the sample order of each
epoch, instead of :func:`epoch_order`).

Mixed precision (``train.precision = "bf16"``): the training forward pass runs under ``torch.autocast`` with
bfloat16 (matmuls, linear layers and convolutions in bfloat16; element-wise neuron updates and the spike
comparison ``v > v_th`` in the dtype those produce). The loss and the metrics are computed in float32 from
float32 logits, parameters, gradients and optimizer state stay float32, and evaluation (validation, test,
profiling) runs without autocast, in float32. Fused kernels receive their inputs in float32 (the event-driven
``spike_linear`` runs as ``F.linear`` under autocast; the EGRU scan takes its bf16 input projection back to
float32); a model with an operator that has no bfloat16 kernel on the device (oneDNN's CPU LSTM) stops with a
ConfigError naming ``train.precision``.

Ctrl-C (SIGINT) or SIGTERM: the current step finishes, ``last.pt`` is saved at that position and the run exits
with status "interrupted"; a second Ctrl-C aborts at once (the previous ``last.pt`` stays valid).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError
from spikeseq.progress import progress
from spikeseq.train import checkpoint, distributed, optim
from spikeseq.train.config import ModelConfig, RunConfig
from spikeseq.train.datasets import Prepared, prepare, time_first
from spikeseq.train.rundir import RunDir
from spikeseq.train.tasks import Task, task_for, task_name_for


def build_model(model_cfg: ModelConfig) -> nn.Module:
    """The model of a recipe's ``[model]`` section (``spikeseq.models.registry.build``); an unknown name or
    bad keyword arguments raise a :class:`~spikeseq.errors.ConfigError` naming what exists."""
    from spikeseq.models import registry

    registry.family_of(model_cfg.name)  # unknown model: ConfigError listing the known ones
    try:
        return registry.build(model_cfg.name, **model_cfg.kwargs)
    except TypeError as e:
        if "argument" in str(e):
            raise ConfigError(f"model {model_cfg.name!r}: {e}; check the keys of [model]") from None
        raise


def preflight(cfg: RunConfig) -> nn.Module:
    """Fail fast, before a run directory is touched: the model builds (and runs on ``train.target``, if set), its
    family solves the task and the dataset name is known; returns the built model (for :func:`preflight_data`)."""
    from spikeseq.train.datasets import TENSOR_FILE, known_datasets

    model = build_model(cfg.model)
    if cfg.train.target is not None:  # a node the target cannot run: an error now, not mid-epoch
        from spikeseq.train.target import check_target, settings_from_config

        check_target(model, settings_from_config(cfg), dt=cfg.export.dt,   # None: the model's dt, as the export
                     need_shape=False)  # fit checks again with the data's shape
    task_for(cfg)
    if cfg.data.name != TENSOR_FILE:
        known = known_datasets()
        if cfg.data.name not in known:
            raise ConfigError(f"unknown dataset {cfg.data.name!r}; known datasets: {', '.join(known)}")
    return model


def preflight_target(cfg: RunConfig, data: Any) -> None:
    """With ``train.target``: the model checked on the target with the prepared data's input shape and settings
    (``data``: :class:`~spikeseq.train.datasets.Prepared`), before a run directory is touched; a model whose input
    shape :func:`preflight` could not infer is checked here."""
    if cfg.train.target is None:
        return
    from spikeseq.train.target import check_target, settings_from_config

    check_target(build_model(cfg.model), settings_from_config(cfg, data.train.x), dt=cfg.export.dt,
                 input_shape=tuple(data.train.x.shape[2:]))


def preflight_data(cfg: RunConfig, data: Prepared, model: nn.Module | None = None) -> None:
    """With the prepared data, before a run directory is touched: the model takes two training samples and the task's
    loss takes its output (evaluation mode, no gradient), so that a model that does not fit the data (input width,
    vocabulary, number of classes, backend) fails now with the reason; a classifier with fewer outputs than the
    data's classes is refused, one with more is warned about. A model may also say that the run's budget of optimizer
    steps does not suit its settings (``training_budget_warning(steps)``, e.g. a pruning schedule never reached)."""
    import warnings

    if len(data.train) == 0 or cfg.train.device != "cpu":
        return
    model = (model if model is not None else build_model(cfg.model)).eval()
    task = task_name_for(cfg.model.name, cfg.task)
    top = None
    hint = "check the [model] sizes against the dataset"
    if task == "language_modelling":
        top = max(int(split.x.max()) for split in (data.train, data.val, data.test) if len(split))
        hint = f"the data's token ids reach {top}: the model's vocabulary needs at least {top + 1} tokens"

    def fits(what: Callable[[], Any]) -> Any:
        try:
            with torch.no_grad():
                return what()
        except KeyboardInterrupt:
            raise
        except Exception as e:  # any failure here is the config's: say so (with the hint) before anything is written
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"the model ({cfg.model.name}) does not fit the data ({cfg.data.name}, input "
                              f"{tuple(data.train.x.shape[1:])}): {first}; {hint}") from e

    out = fits(lambda: _forward(model, time_first(data.train.x[:2]), "float32", torch.device("cpu")))
    outputs = int((out[0] if isinstance(out, tuple) else out).shape[-1])
    if task == "classification":
        if outputs < data.n_classes:
            raise ConfigError(f"the model has {outputs} outputs but {cfg.data.name} has {data.n_classes} classes "
                              f"(labels 0..{data.n_classes - 1}); set model.n_classes = {data.n_classes}")
        if outputs > data.n_classes:
            warnings.warn(f"the model has {outputs} outputs but {cfg.data.name} has {data.n_classes} classes: the "
                          f"extra outputs are never a target (model.n_classes = {data.n_classes}?)", stacklevel=2)
    if top is not None and outputs <= top:
        raise ConfigError(f"the model predicts {outputs} tokens but {cfg.data.name} has token ids up to {top}; "
                          f"set model.vocab = {top + 1}")
    fits(lambda: task_for(cfg).batch(out, data.train.y[:2], cfg))
    check_budget = getattr(model, "training_budget_warning", None)
    if callable(check_budget):
        per_epoch = math.ceil(math.ceil(len(data.train) / cfg.train.batch_size) / cfg.train.accumulate)
        steps = per_epoch * cfg.train.epochs
        if cfg.train.max_steps is not None:
            steps = min(steps, cfg.train.max_steps)
        message = check_budget(steps)
        if message:
            warnings.warn(message, stacklevel=2)


def make_optimizer(params, cfg: RunConfig) -> torch.optim.Optimizer:
    """The optimizer of ``cfg.train`` over plain ``params`` (one group; see :mod:`spikeseq.train.optim`)."""
    t = cfg.train
    return optim.make_optimizer([{"params": list(params), "lr": t.lr, "weight_decay": t.weight_decay}], t)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch, a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63))
    return torch.randperm(n, generator=g)


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag checked after every step; a second SIGINT raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum, _frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print("\nspikeseq: stopping after the current step and saving checkpoints/last.pt "
              "(Ctrl-C again to abort at once)", file=sys.stderr)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _device_for(cfg: RunConfig) -> torch.device:
    return distributed.pick_device(cfg.train.device, int(os.environ.get("LOCAL_RANK", "0")))


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random stream during data-parallel training (after the model is built)."""
    return (int(seed) * 1_000_003 + 7919 * (int(rank) + 1)) % (2**63)


class Hooks:
    """Callbacks of :func:`fit` around each optimizer step (see the module docstring); every method is a no-op
    here, subclasses override what they need."""

    def before_step(self, model: nn.Module) -> None:
        """After the window's backward pass (gradients complete, reduced over ranks), before clipping and the
        optimizer step."""

    def after_step(self, model: nn.Module) -> None:
        """After the optimizer step (and the model's own ``train_step_end``)."""

    def state_dict(self) -> dict[str, Any] | None:
        """State saved in every checkpoint under ``"hooks"`` (``None``: nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict` on resume (called before the optimizer is built)."""


def _hook(model: nn.Module, name: str, *args: Any) -> None:
    fn = getattr(model, name, None)
    if callable(fn):
        fn(*args)


def _forward(net: nn.Module, x: torch.Tensor, precision: str, device: torch.device) -> Any:
    """``net(x)``; under low precision an operator that has no such kernel here becomes a ConfigError."""
    if precision == "float32":
        return net(x)
    try:
        return net(x)
    except RuntimeError as e:
        raise ConfigError(f"train.precision = {precision!r}: the model failed under {precision} autocast on "
                          f"{device.type} ({str(e).splitlines()[0]}); use train.precision = \"float32\"") from e


def _float32(out: Any) -> Any:
    """A model output ``y`` or ``(y, state, ...)`` with ``y`` in float32."""
    if isinstance(out, tuple):
        return (out[0].float(), *out[1:])
    return out.float()


def _integers(x: torch.Tensor, chunk: int = 256) -> bool:
    """Whether every value of ``x`` is an integer (checked ``chunk`` samples at a time: no full-size temporary)."""
    if not x.is_floating_point():
        return True
    return all(not bool(torch.frac(x[i:i + chunk]).any()) for i in range(0, x.shape[0], chunk))


def _window_size(b: int, accumulate: int, bsz: int, n: int) -> int:
    """Samples in the accumulation window that holds micro-batch ``b``."""
    w0 = (b // accumulate) * accumulate
    return min((w0 + accumulate) * bsz, n) - w0 * bsz


def _restore(ck: dict[str, Any], info: distributed.DistInfo, path: Any) -> torch.Tensor:
    """RNG states of this rank and the epoch's running sums (rank 0 holds the reduced sums, the others zeros)."""
    saved_world = int(ck.get("world_size", 1))
    if saved_world != info.world:
        raise ConfigError(f"{path} was written by {saved_world} process(es); resume it with --nproc {saved_world} "
                          f"(this run has {info.world}), or start a new run")
    ranks = ck.get("rng_ranks")
    checkpoint.set_rng_state(ranks[info.rank] if ranks is not None else ck["rng"])
    accum = ck["accum"].clone()
    if not info.main:
        accum.zero_()
    return accum


def fit(cfg: RunConfig, run: RunDir, *, resume: bool = False, data: Prepared | None = None,
        on_step: Callable[[int], None] | None = None, quiet: bool = False, model: nn.Module | None = None,
        task: Task | None = None, hooks: Hooks | None = None,
        order: Callable[[int, int], torch.Tensor] | None = None, desc: str = "") -> dict[str, Any]:
    """Train ``cfg`` into ``run`` (a prepared run directory). Returns a summary dict.

    ``on_step(step)`` is called after every optimizer step (tests use it to simulate a kill). Without ``model``
    the run seeds everything with ``train.seed`` and builds the recipe's model; with ``model`` (already on its
    device) it trains that model from the RNG state it finds (the caller seeded it). ``task`` replaces the
    recipe's task, ``hooks`` adds :class:`Hooks`, ``order(epoch, n)`` replaces :func:`epoch_order`, ``desc``
    prefixes the progress lines.

    Status: when ``run`` holds a ``run.json`` (made by :meth:`RunDir.prepare`), ``fit`` records the run's status
    there as ``spikeseq train`` does (rank 0 only): ``"running"`` from the start, then ``"finished"`` (with
    ``step`` and ``best``) or ``"interrupted"`` (Ctrl-C / SIGTERM, also when the interrupt escapes as
    ``KeyboardInterrupt``) when it returns, ``"failed"`` when it raises; ``spikeseq eval/export/profile`` and
    :func:`spikeseq.train.runs.load_run` accept only a finished run. A process killed outright leaves
    ``"running"``, which they refuse as well. A directory without ``run.json`` (the per-task folders of a
    continual stream) gets no status.
    """
    tracked = run.is_run() and int(os.environ.get("RANK", "0")) == 0
    if tracked:
        run.set_status("running")  # a corrupt run.json is refused here (ConfigError), before any training
    try:
        summary = _fit(cfg, run, resume=resume, data=data, on_step=on_step, quiet=quiet, model=model, task=task,
                       hooks=hooks, order=order, desc=desc)
    except BaseException as e:
        if tracked:
            with contextlib.suppress(Exception):  # never hide the error that stopped training
                run.set_status("interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        raise
    if tracked and summary["rank"] == 0:
        run.set_status(summary["status"], step=summary["step"], best=summary["best"])
    return summary


def _fit(cfg: RunConfig, run: RunDir, *, resume: bool, data: Prepared | None,
         on_step: Callable[[int], None] | None, quiet: bool, model: nn.Module | None, task: Task | None,
         hooks: Hooks | None, order: Callable[[int, int], torch.Tensor] | None, desc: str) -> dict[str, Any]:
    """The training loop of :func:`fit` (everything but the run's status)."""
    t = cfg.train
    device = _device_for(cfg)
    info = distributed.init(device)
    if t.threads is not None:
        torch.set_num_threads(t.threads)
    if model is None:
        checkpoint.seed_everything(t.seed)
    if data is None:
        data = prepare(cfg.data, t.seed)
    if model is None:
        model = build_model(cfg.model).to(device)
        if info.enabled:  # one random stream per rank after the (identical) initialisation: e.g. dropout masks
            checkpoint.seed_everything(rank_seed(t.seed, info.rank))
    task = task if task is not None else task_for(cfg)
    hooks = hooks if hooks is not None else Hooks()
    order = order if order is not None else (lambda e, n_: epoch_order(n_, t.seed, e))
    ck = checkpoint.load(run.last, map_location=device) if resume else None
    if ck is not None:  # the model and the hooks' state first: they decide which parameters the optimizer gets
        model.load_state_dict(ck["model"])
        hooks.load_state_dict(ck.get("hooks"))
    groups, specs = optim.param_groups(model, t)
    opt = optim.make_optimizer(groups, t)
    n, bsz, acc_n = len(data.train), t.batch_size, t.accumulate
    n_batches = math.ceil(n / bsz)
    if n_batches == 0:
        raise ConfigError(f"dataset {cfg.data.name!r} has no training samples left after the validation split")
    sched = optim.Schedule(opt, specs, t, math.ceil(n_batches / acc_n))
    pos = {"epoch": 0, "batch": 0, "step": 0}
    best = {"metric": -math.inf, "loss": math.inf, "epoch": None}
    accum = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count of the current epoch (this rank)
    elapsed = 0.0
    stored_target = None
    if ck is not None:
        stored_target = ck.get("target")
        opt.load_state_dict(ck["optimizer"])
        pos = dict(ck["position"])
        best = dict(ck["best"])
        elapsed = float(ck.get("elapsed_s", 0.0))
        accum = _restore(ck, info, run.last)
        if info.main:
            run.truncate_metrics(pos["epoch"])
    tset, tmode, first_target = None, None, t.epochs
    if t.target is not None:  # train for a target: settings fixed once (and kept across resumes), checked now
        from spikeseq.train.target import TargetMode, check_target, settings_from_config

        tset = settings_from_config(cfg, data.train.x, stored=stored_target)
        check_target(model, tset, dt=cfg.export.dt, input_shape=tuple(data.train.x.shape[2:]))
        first_target = t.epochs - (t.target_epochs or t.epochs)
    net = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")

    def save(path: Any, epoch: int, batch: int, step: int) -> None:
        """Collective: every rank contributes its RNG state and running sums; rank 0 writes ``path``."""
        rngs = distributed.gather_objects(checkpoint.rng_state(), info)
        sums = distributed.all_reduce_sum(accum.clone(), info)
        if info.main:
            checkpoint.save(path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": None,
                "position": {"epoch": epoch, "batch": batch, "step": step}, "best": dict(best),
                "accum": sums, "rng": rngs[0], "rng_ranks": rngs, "config": cfg.to_dict(),
                "classes": data.classes, "n_classes": data.n_classes, "data_info": data.info,
                "normalizer": data.normalizer.state_dict() if data.normalizer is not None else None,
                "world_size": info.world, "elapsed_s": time.time() - t0, "hooks": hooks.state_dict(),
                "target": None if tset is None else tset.to_dict()})

    step = pos["step"]
    status = "finished"
    t0 = time.time() - elapsed  # time_s in metrics counts training time across resumes
    with StopRequest() as stop_req:
        for epoch in range(pos["epoch"], t.epochs):
            perm = order(epoch, n)
            start = pos["batch"] if epoch == pos["epoch"] else 0
            if start == 0:
                accum.zero_()
            _hook(model, "train_epoch_start", epoch, t.epochs)
            model.train()
            in_target = tset is not None and epoch >= first_target
            if in_target and tmode is None:   # the data's kind is checked once here, not every batch
                integer = all(_integers(v) for v in (data.train.x, data.val.x))
                tmode = TargetMode(model, tset, dt=cfg.export.dt, integer_inputs=integer)   # the export's dt
            fwd = tmode if in_target else net
            bar = progress(range(start, n_batches), total=n_batches - start, desc=f"{desc}epoch {epoch + 1}/{t.epochs}",
                           unit="batch")
            stop = False
            stopped_at = None
            for b in bar:
                idx = perm[b * bsz:(b + 1) * bsz]
                local = idx[info.rank::info.world]
                x = time_first(data.train.x[local]).to(device)
                y = data.train.y[local].to(device)
                if b % acc_n == 0:
                    opt.zero_grad(set_to_none=True)
                    sched.apply(step)
                last_of_window = (b + 1) % acc_n == 0 or b == n_batches - 1
                sync = contextlib.nullcontext()
                if info.enabled and not last_of_window:
                    sync = net.no_sync()
                with sync:
                    with autocast:
                        out = _forward(fwd, x, t.precision, device)
                    if t.precision != "float32":  # the loss and metrics in float32
                        out = _float32(out)
                    res = task.batch(out, y, cfg)
                    loss_sum = res.loss_sum.float()
                    loss = loss_sum / _window_size(b, acc_n, bsz, n) * info.world
                    loss.backward()
                accum += torch.tensor([float(loss_sum.detach()), res.metric_sum, float(res.count)],
                                      dtype=torch.float64)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{float(loss_sum) / max(local.numel(), 1):.4f}")
                if not last_of_window:
                    continue
                hooks.before_step(model)
                if t.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                opt.step()
                _hook(model, "train_step_end")
                hooks.after_step(model)
                step += 1
                if on_step is not None:
                    on_step(step)
                stop = stop_req.requested or (t.max_steps is not None and step >= t.max_steps)
                stop = distributed.any_flag(stop, info)
                if stop:
                    stopped_at = b
                    break
                if t.checkpoint_every is not None and step % t.checkpoint_every == 0 and b < n_batches - 1:
                    save(run.last, epoch, b + 1, step)
            partial = stop and stopped_at is not None and stopped_at < n_batches - 1
            if partial and stop_req.requested:  # Ctrl-C / SIGTERM: save where it stopped, validate nothing
                status = "interrupted"
                save(run.last, epoch, stopped_at + 1, step)
                distributed.barrier(info)
                break
            # end of epoch, or of the run at max_steps inside an epoch (validated like an epoch's end, so that the
            # model the run ends with is recorded and can be the best) -----------------------------------------
            tot = distributed.all_reduce_sum(accum.clone(), info)
            rng_at_stop = checkpoint.rng_state() if partial else None
            val = task.evaluate(tmode if in_target else model, data.val, cfg, device, data.n_classes,
                                desc="validating")
            metric = val[task.metric] if val[task.metric] is not None else float(tot[1] / tot[2])
            loss_now = val["loss"] if val["loss"] is not None else float(tot[0] / tot[2])
            record = {"epoch": epoch + 1, "step": step, "train_loss": float(tot[0] / tot[2]),
                      f"train_{task.train_metric}": float(tot[1] / tot[2]), "val_loss": val["loss"],
                      f"val_{task.metric}": val[task.metric],
                      "lr": opt.param_groups[0]["lr"], "time_s": round(time.time() - t0, 3)}
            if tset is not None:
                record["mode"] = tset.target if in_target else "float"
            if partial:
                record["partial_epoch_batches"] = stopped_at + 1   # max_steps ended the run inside this epoch
            # best: highest accuracy, ties broken by lower loss (small validation sets tie often)
            improved = (metric, -loss_now) > (best["metric"], -best.get("loss", math.inf))
            if tset is not None and not in_target:
                improved = False    # a target run's best checkpoint is one of its target-mode epochs
            if improved:
                best = {"metric": metric, "loss": loss_now, "epoch": epoch + 1}
            if info.main:
                run.append_metrics(record)
                if not quiet:
                    va = "-" if val[task.metric] is None else f"{val[task.metric]:.4f}"
                    print(f"{desc}epoch {epoch + 1}/{t.epochs}  step {step}  train_loss {record['train_loss']:.4f}  "
                          f"train_{task.train_metric} {tot[1] / tot[2]:.4f}  val_{task.metric} {va}  "
                          f"({record['time_s']:.0f} s)", file=sys.stderr)
            if rng_at_stop is not None:  # a resumed run continues the epoch as if it had not been validated here
                checkpoint.set_rng_state(rng_at_stop)
            resume_at = (epoch, stopped_at + 1) if partial else (epoch + 1, 0)
            if improved:
                save(run.best, *resume_at, step)
            save(run.last, *resume_at, step)
            if tset is not None and epoch + 1 == first_target and not partial:   # the float model before target mode
                save(run.ckpt_dir / "float.pt", epoch + 1, 0, step)
            distributed.barrier(info)
            if stop:
                status = "interrupted" if stop_req.requested else "finished"
                break
    if info.main and not run.best.is_file():
        checkpoint.save(run.best, checkpoint.load(run.last))
    return {"status": status, "step": step, "best": best, "world_size": info.world, "rank": info.rank}
