"""Result artifacts: the JSON file behind a README number, written from one finished run.

``record(RUN, recipe)`` writes ``results/<family>/<recipe>-s<seed>.json``, where ``<family>`` is the registered
family of the run's model (``spikeseq.models.registry.family_of``) and ``<recipe>`` the recipe's file name
(``examples/<family>/<recipe>.toml``). Everything in it comes from the run directory and the one trained
model: the test evaluation (``eval.json``, the checkpoint named by ``train.eval_checkpoint``) and the operation
counts of :func:`spikeseq.profile.count` on ``[results] profile_samples`` seeded test samples run through the
same weights. Fields (``schema`` 1)::

    schema, table, label, recipe, family, seed, producer ("spikeseq train")
    git            {"commit": ..., "dirty": true/false}      the commit the run's code was at (run.json)
    command        the ``spikeseq train`` command line of the run (run.json)
    recorded       the command and commit that wrote this file (``spikeseq train`` itself, or ``spikeseq eval
                   --record`` for a finished run), and when
    config_hash    sha256 of the resolved config without ``train.seed`` (equal for every seed of a recipe)
    config         the resolved config
    versions       spikeseq, torch, numpy, python, platform
    machine        cpu model, logical cores, torch threads of the run
    time           train_s (all epochs incl. validation, across resumes), epoch_s (per epoch), eval_s, profile_s
    metrics        test_acc, test_n, the task's own test metrics (``Task.record``; language modelling: test_bpc,
                   test_loss_nats (mean cross-entropy per token in nats), test_perplexity, test_tokens),
                   checkpoint, epoch, params, activation_sparsity, dense_macs, eff_macs, eff_acs,
                   spikes_out (per sample), profile_samples, not_counted, energy_pj {table: {memory_on, memory_off}},
                   and for a run trained for a target (``[train] target``; ``test_acc`` is then target mode's):
                   target {target, settings, target_acc, float_acc (same weights in float), float_before_acc
                   (after the float epochs, if any), export {spike_agreement per node, readout_max_abs_diff,
                   prediction_agreement, target_accuracy, graph_accuracy on [export] samples test samples}}

:mod:`spikeseq.report.results` turns these files into the README's tables.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from spikeseq.errors import ConfigError
from spikeseq.provenance import cpu_model, git_commit
from spikeseq.train.rundir import RunDir, read_json, write_json

SCHEMA = 1
#: the ``producer`` of artifacts written here (converted reports of retired scripts name those scripts)
PRODUCER = "spikeseq train"


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a resolved config with ``train.seed`` left out."""
    cfg = json.loads(json.dumps(config))
    cfg.get("train", {}).pop("seed", None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def machine(threads: int | None) -> dict[str, Any]:
    """CPU model, logical cores and the torch threads of the run."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads or torch.get_num_threads()}


def artifact_path(root: str | Path, family: str, recipe: str | Path, seed: int) -> Path:
    """``<root>/<family>/<recipe>-s<seed>.json`` (``recipe``: the recipe's path or name)."""
    return Path(root) / family / f"{Path(recipe).stem}-s{seed}.json"


def recipe_of(command: list[str] | None) -> str | None:
    """The TOML recipe of a ``spikeseq train`` command line (``None`` if it has none)."""
    return next((a for a in command or [] if str(a).endswith(".toml")), None)


def record(run_path: str | Path, recipe: str | Path | None = None, out_root: str | Path = "results",
           eval_result: dict[str, Any] | None = None) -> Path:
    """Write the artifact of the finished run ``run_path``; returns its path. ``recipe``: the TOML it was trained
    from (default: the one on the run's command line)."""
    from spikeseq.models.registry import family_of
    from spikeseq.train.cmd_profile import profile_run
    from spikeseq.train.runs import evaluate_run
    from spikeseq.train.tasks import task_for

    run = RunDir.open(run_path)
    cfg = run.config()
    meta = read_json(run.meta)
    recipe = recipe if recipe is not None else recipe_of(meta.get("command"))
    if recipe is None:
        raise ConfigError(f"{run.path}: the run was not started from a TOML recipe; give the recipe's path")
    family = family_of(cfg.model.name).name
    if not cfg.results.table:
        raise ConfigError(f"{recipe}: the recipe has no [results] table; add [results] table = \"...\" and "
                          "label = \"...\" to record a README number")
    if meta.get("status") != "finished":
        raise ConfigError(f"{run.path}: status is {meta.get('status')!r}; only a finished run is recorded")
    which = cfg.train.eval_checkpoint
    t0 = time.time()
    ev = eval_result if eval_result is not None and eval_result.get("checkpoint") == which else \
        evaluate_run(run.path, which=which)
    t_eval = time.time() - t0
    t0 = time.time()
    prof = profile_run(run.path, tables=None, samples=cfg.results.profile_samples, which=which, plot=False)
    t_prof = time.time() - t0
    tot = prof["report"]["totals_per_sample"]
    elements = tot.get("out_elements", 0.0)
    metrics_lines = run.read_metrics()
    times = [float(m["time_s"]) for m in metrics_lines]
    epoch_s = [round(b - a, 3) for a, b in zip([0.0, *times[:-1]], times)]
    result = {
        "schema": SCHEMA, "table": cfg.results.table, "label": cfg.results.label,
        "recipe": Path(recipe).stem, "family": family, "seed": cfg.train.seed,
        "producer": PRODUCER,
        "git": {"commit": meta.get("git"), "dirty": meta.get("git_dirty")},  # None: not recorded by the run
        "command": meta.get("command"), "config_hash": config_hash(cfg.to_dict()), "config": cfg.to_dict(),
        "versions": meta.get("versions"), "machine": machine(cfg.train.threads),
        "time": {"train_s": times[-1] if times else None, "epoch_s": epoch_s, "eval_s": round(t_eval, 3),
                 "profile_s": round(t_prof, 3)},
        "metrics": {
            "test_acc": ev["test"]["acc"], "test_n": ev["test"]["n"],
            **{name: ev["test"].get(key) for key, name in task_for(cfg).record},
            "checkpoint": which, "epoch": ev["epoch"],
            "params": ev["model"]["parameters"],
            "activation_sparsity": (1.0 - tot.get("out_nonzero", 0.0) / elements) if elements else None,
            **{k: tot.get(k) for k in ("dense_macs", "eff_macs", "eff_acs", "spikes_out")},
            "profile_samples": prof["samples"], "not_counted": prof["report"].get("not_counted", []),
            **({"target": ev["target"]} if ev.get("target") else {}),
            "energy_pj": {t: {"memory_on": e["memory_on"]["total_pj"], "memory_off": e["memory_off"]["total_pj"]}
                          for t, e in prof["energy"].items()},
        },
        "recorded": {"command": ["spikeseq", *sys.argv[1:]], "git": git_commit(),
                     "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "source": f"spikeseq train run {run.path.name}; op counts: spikeseq.profile.count on "
                  f"{prof['samples']} seeded test samples of the same {which} checkpoint",
    }
    path = artifact_path(out_root, family, recipe, cfg.train.seed)
    write_json(path, result)
    return path
