"""Reading a finished run back: its config, model (from a checkpoint), data, and the test evaluation."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeseq.errors import ConfigError
from spikeseq.train import checkpoint
from spikeseq.train.config import RunConfig
from spikeseq.train.datasets import Prepared, prepare, time_first
from spikeseq.train.evaluate import spike_stats
from spikeseq.train.loop import build_model
from spikeseq.train.rundir import RunDir, write_json
from spikeseq.train.tasks import task_for


@dataclass
class LoadedRun:
    """A finished run read back: its directory, config, model with the ``which`` (best/last) checkpoint's weights."""

    run: RunDir
    cfg: RunConfig
    model: nn.Module
    ckpt: dict[str, Any]
    which: str

    def data(self) -> Prepared:
        """The run's data splits, prepared as in training (same config and seed)."""
        return prepare(self.cfg.data, self.cfg.train.seed)


class UnfinishedRunWarning(UserWarning):
    """A checkpoint named explicitly is loaded from a run whose training did not finish."""


#: ``run.json`` status of a run whose training ran to its end (set by ``spikeseq train``)
FINISHED = "finished"
_WHY = {"running": "training is still running, or its process was killed before it could record its end",
        "interrupted": "training was interrupted (Ctrl-C or a signal)",
        "failed": "training stopped with an error"}


def unfinished_reason(run: RunDir, meta: dict[str, Any]) -> str | None:
    """Why ``run`` is not a finished run (``run.json`` status other than ``"finished"``) and what it holds, or None
    when it is finished."""
    status = meta.get("status")
    if status == FINISHED:
        return None
    why = (_WHY.get(status) if isinstance(status, str) else None) or "run.json records no finished training"
    have = [f"checkpoints/{p.name}" for p in (run.best, run.last) if p.is_file()] or ["no checkpoint"]
    if not run.eval_json.is_file():
        have.append("no eval.json")
    return f"run.json status is {status!r} ({why}); it has {', '.join(have)}"


def load_run(path: str | Path, which: str | None = "best") -> LoadedRun:
    """The run's model with the weights of ``checkpoints/<which>.pt`` (``best`` or ``last``; ``None``: the one the run
    evaluates, its ``train.eval_checkpoint``), in eval mode.

    ``which=None`` (what ``spikeseq eval/export/profile`` use without ``--checkpoint``) requires a finished run
    (``run.json`` status ``"finished"``) and raises :class:`ConfigError` saying what is missing otherwise; a
    checkpoint named explicitly is loaded from an unfinished run too, with an :class:`UnfinishedRunWarning`.
    """
    if which not in ("best", "last", None):
        raise ConfigError(f"checkpoint must be 'best' or 'last', got {which!r}")
    run = RunDir.open(path)
    reason = unfinished_reason(run, run.read_meta())
    if reason is not None and which is None:
        if run.last.is_file():
            fix = (f"finish it with `spikeseq train --resume --out {run.path}`, or name the checkpoint to use as it "
                   "is with --checkpoint best or --checkpoint last")
        else:
            fix = "train it again (`spikeseq train CONFIG --out RUN --force`): it saved no checkpoint to resume from"
        raise ConfigError(f"{run.path} is not a finished run: {reason}. Its checkpoints do not hold the trained "
                          f"model; {fix}")
    if reason is not None:
        warnings.warn(f"{run.path} is not a finished run: {reason}; using checkpoints/{which}.pt as it is",
                      UnfinishedRunWarning, stacklevel=2)
    cfg = run.config()
    which = which or cfg.train.eval_checkpoint
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    chosen, other = (run.best, run.last) if which == "best" else (run.last, run.best)
    if not chosen.is_file() and other.is_file():
        raise ConfigError(f"{run.path}: checkpoints/{chosen.name} is missing; pass --checkpoint "
                          f"{other.stem} to use checkpoints/{other.name} instead, or retrain the run")
    if not chosen.is_file() and reason is None:  # a finished run: its checkpoints were deleted afterwards
        raise ConfigError(f"{run.path}: the run finished, but checkpoints/best.pt and checkpoints/last.pt are both "
                          f"missing (deleted or moved); restore them, or retrain with `spikeseq train "
                          f"{run.config_json} --out {run.path} --force`")
    try:
        ck = checkpoint.load(chosen)
    except ConfigError as e:
        if not chosen.is_file() or not other.is_file():
            raise
        raise ConfigError(f"{e}; with spikeseq eval / export / profile pass --checkpoint {other.stem} to use "
                          f"checkpoints/{other.name}") from None
    model = build_model(cfg.model)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise ConfigError(f"{path}: checkpoint {which!r} does not fit model {cfg.model.name!r} as configured in the "
                          f"run ({str(e).splitlines()[0]} ...); it was written for another config") from None
    model.eval()
    return LoadedRun(run, cfg, model, ck, which)


def model_dt(model: nn.Module) -> float | None:
    """The time step of the first module that has one (spikeseq neurons store ``dt`` in seconds)."""
    for m in model.modules():
        dt = getattr(m, "dt", None)
        if isinstance(dt, float | int) and dt > 0:
            return float(dt)
    return None


def sample_inputs(data: Prepared, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test samples drawn without replacement with a seeded generator (test splits are often ordered by
    subject and class, so the first ``n`` would not be representative), time-first ``[T, n, ...]``, and labels."""
    idx = torch.randperm(len(data.test), generator=torch.Generator().manual_seed(int(seed)))[:n]
    idx = idx.sort().values
    return time_first(data.test.x[idx]), data.test.y[idx]


def _target_evaluation(lr: LoadedRun, data: Prepared, test_float: dict[str, Any], device) -> dict[str, Any]:
    """A target-mode run's test numbers: ``test`` in target mode (the run's headline), ``float_acc`` of the same
    weights in float, ``float_before_acc`` of ``checkpoints/float.pt`` (the model after the float epochs, when the
    run had any), and ``export``: target mode against the bit-exact interpreter on ``[export] samples`` seeded test
    samples (:func:`spikeseq.train.target.target_agreement`: spike agreement per node, accuracies)."""
    from spikeseq.train.target import TargetMode, TargetSettings, target_agreement

    settings = TargetSettings(**lr.ckpt["target"])
    task = task_for(lr.cfg)
    tm = TargetMode(lr.model, settings, dt=lr.cfg.export.dt)   # the dt training and export use
    test = task.evaluate(tm, data.test, lr.cfg, device, data.n_classes, desc="testing (target mode)")
    before = None
    float_ck = lr.run.ckpt_dir / "float.pt"
    if float_ck.is_file():
        m = build_model(lr.cfg.model)
        m.load_state_dict(checkpoint.load(float_ck)["model"])
        before = task.evaluate(m.eval(), data.test, lr.cfg, device, data.n_classes, desc="testing (float)")["acc"]
    x, y = sample_inputs(data, lr.cfg.export.samples, lr.cfg.train.seed)
    agree = target_agreement(tm, x, y, lr.cfg.train.readout)
    return {"test": test, "target": settings.target, "settings": settings.to_dict(), "target_acc": test.get("acc"),
            "float_acc": test_float.get("acc"), "float_before_acc": before, "export": agree}


def evaluate_run(path: str | Path, which: str | None = "best", raster_samples: int = 64) -> dict[str, Any]:
    """Evaluate on the test split and write ``eval.json`` (accuracy, confusion, firing rates, raster). A run
    trained for a target (``[train] target``) reports target mode's test evaluation as ``test`` and the rest in
    ``target`` (:func:`_target_evaluation`)."""
    lr = load_run(path, which)
    data = lr.data()
    device = torch.device("cpu")
    t0 = time.time()
    task = task_for(lr.cfg)
    test = task.evaluate(lr.model, data.test, lr.cfg, device, data.n_classes, desc="testing")
    spikes = spike_stats(lr.model, data.test.x[:raster_samples], device)
    target = None
    if lr.ckpt.get("target"):   # trained for a target: the test number is target mode's (what the export computes)
        target = _target_evaluation(lr, data, test, device)
        test = target.pop("test")
    result = {
        "checkpoint": lr.which, "epoch": lr.ckpt["position"]["epoch"], "step": lr.ckpt["position"]["step"],
        "batches_into_epoch": lr.ckpt["position"].get("batch", 0),   # > 0: max_steps ended the run inside an epoch
        "best_val": lr.ckpt["best"], "classes": data.classes, "data": data.info,
        "test": test, "spikes": spikes, "model": {"name": lr.cfg.model.name,
                                                  "parameters": sum(p.numel() for p in lr.model.parameters())},
        "time_s": round(time.time() - t0, 3),
    }
    if target is not None:
        result["target"] = target
    write_json(lr.run.eval_json, result)
    return result
