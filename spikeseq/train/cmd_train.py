"""``spikeseq train CONFIG [--seed S] [--set key=value ...] [--out DIR] [--nproc N] [--resume | --force]``.

``--seed S`` is ``--set train.seed=S``; without ``--out`` the run goes to ``runs/<recipe>-s<seed>``
(``runs/<recipe>`` without ``--seed``). A recipe with a ``[results]`` section also writes its artifact,
``results/<family>/<recipe>-s<seed>.json`` (see :mod:`spikeseq.report.results`), from the same trained model
after the test evaluation.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from spikeseq.errors import ConfigError


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq train`` arguments (module docstring) to ``parser``."""
    parser.add_argument("config", help="TOML recipe, e.g. examples/<family>/<recipe>.toml (with --resume: optional)",
                        nargs="?")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=0.01 --set model.hidden=128")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (same as --set train.seed=S)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default: runs/<config name>, runs/<config name>-s<seed> with --seed)")
    parser.add_argument("--nproc", type=int, default=None,
                        help="data-parallel processes through torchrun (gloo on CPU, NCCL on GPU); default: "
                             "train.nproc of the config (1)")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    g.add_argument("--force", action="store_true", help="delete the run already in --out and start over")
    parser.add_argument("--no-eval", action="store_true", help="skip the test evaluation (eval.json) at the end")
    parser.add_argument("--results-dir", type=Path, default=Path("results"),
                        help="where a recipe with a [results] section writes its artifact (default: results)")
    parser.add_argument("--attach", action="store_true", help=argparse.SUPPRESS)  # set for torchrun workers


def _is_stream(config: str | None) -> bool:
    """Whether ``config`` (a TOML recipe or a run's saved ``config.json``) asks for the continual task."""
    if config is None or not str(config).endswith((".toml", ".json")) or not Path(config).is_file():
        return False
    from spikeseq.train.config import read_toml
    from spikeseq.train.rundir import read_json
    from spikeseq.train.tasks import continual

    return continual.is_continual(read_json(config) if str(config).endswith(".json") else read_toml(config))


def _argv_for_workers(args: argparse.Namespace, out: Path) -> list[str]:
    argv = ["train", str(args.config), "--out", str(out), "--attach"]
    for o in args.overrides:
        argv += ["--set", o]
    if args.resume:
        argv.append("--resume")
    if args.no_eval:
        argv.append("--no-eval")
    argv += ["--results-dir", str(args.results_dir)]
    return argv


def _check_results_dir(folder: Path) -> None:
    """Raise :class:`OutputError` when the result artifact could not be written under ``folder`` (a file in its
    place or above it, a folder that cannot be written); nothing is created."""
    from spikeseq.errors import OutputError

    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(f"--results-dir {folder}: {existing} is a file, not a directory; the recipe's result "
                          "artifact is written there after training: remove or rename that file, or pass another "
                          "--results-dir (or --no-eval)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"--results-dir {folder}: {existing} is not writable; the recipe's result artifact is "
                          "written there after training: make it writable or pass another --results-dir")


def run(args: argparse.Namespace) -> int:
    """Train the config into its run directory (under torchrun with ``--nproc`` > 1), then evaluate it.

    Returns 0 when finished, 130 when interrupted; ``ConfigError`` for a bad config or a failed worker.
    """
    from spikeseq import _signals
    from spikeseq.train import distributed, loop
    from spikeseq.train.config import load_config
    from spikeseq.train.rundir import RunDir

    _signals.check()  # Ctrl-C while torch was imported: stop before anything is written

    if args.nproc is not None and args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if args.seed is not None:
        args.overrides = [*args.overrides, f"train.seed={args.seed}"]
    if args.config is None and args.resume and args.out and (Path(args.out) / "config.json").is_file():
        args.config = str(Path(args.out) / "config.json")  # resume with the run's saved config
    if _is_stream(args.config):  # the continual task: a stream of tasks, one training-loop run per task
        from spikeseq.train import stream

        return stream.cli_run(args)
    if args.config is None:
        if not (args.resume and args.out):
            raise ConfigError("give a CONFIG file (or --resume --out RUN to continue a run)")
        args.config = str(Path(args.out) / "config.json")
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out RUN (the run directory to continue)")
    if str(args.config).endswith(".json"):
        from spikeseq.train.config import apply_overrides, from_dict
        from spikeseq.train.rundir import read_json

        if not Path(args.config).is_file():
            if args.resume and args.out is not None and Path(args.config) == Path(args.out) / "config.json":
                what = "is a file, not a run directory" if Path(args.out).is_file() else \
                    "holds no run to resume (no config.json)"
                raise ConfigError(f"--resume: {args.out} {what}; give the --out directory of an interrupted "
                                  "`spikeseq train` run, or drop --resume to start one")
            raise ConfigError(f"config file not found: {args.config}")
        cfg = from_dict(apply_overrides(read_json(args.config), args.overrides), str(args.config))
    else:
        cfg = load_config(args.config, args.overrides)
    if args.nproc is None:
        args.nproc = cfg.train.nproc
    if cfg.train.target is not None and args.nproc > 1:   # --nproc overrides train.nproc after the config checks
        raise ConfigError(f"train.target = {cfg.train.target!r} runs in one process; drop --nproc {args.nproc} "
                          "(or set it to 1)")
    out = args.out or Path("runs") / (Path(args.config).stem + ("" if args.seed is None else f"-s{args.seed}"))
    if not args.attach and not args.no_eval and cfg.results.table and str(args.config).endswith(".toml"):
        _check_results_dir(Path(args.results_dir))  # written after training: refuse a bad one before it
    data = None
    if not args.attach:  # fail on a bad model or dataset before the run directory is touched
        from spikeseq.train.datasets import prepare

        model = loop.preflight(cfg)
        data = prepare(cfg.data, cfg.train.seed)
        loop.preflight_target(cfg, data)
        loop.preflight_data(cfg, data, model)
    _signals.check()
    if args.attach:  # a torchrun worker: the launcher prepared the run directory
        run_dir = RunDir.open(out)
    else:
        if args.resume and args.config and (Path(out) / "config.json").is_file():
            saved = RunDir(out).config()
            if saved.to_dict() != cfg.to_dict():
                raise ConfigError(f"--resume: the config differs from the one saved in {out}/config.json; resume "
                                  "with the saved config (spikeseq train --resume --out RUN) or start a new run")
        run_dir = RunDir.prepare(out, cfg, force=args.force, resume=args.resume, world_size=args.nproc,
                                 argv=["spikeseq", *sys.argv[1:]])
        if args.nproc > 1 and distributed.env_world_size() == 1:
            print(f"spikeseq train: {args.nproc} processes with torchrun -> {out}", file=sys.stderr)
            rc = distributed.launch(args.nproc, _argv_for_workers(args, out))
            from spikeseq.train.rundir import read_json

            status = read_json(run_dir.meta).get("status", "failed")  # written by rank 0
            if rc != 0 and status != "interrupted":
                run_dir.set_status("failed")
                raise ConfigError(f"training with {args.nproc} processes failed (torchrun exit code {rc}); see the "
                                  "messages above")
            return _finish(run_dir, args, status)
    finished = False
    try:
        summary = loop.fit(cfg, run_dir, resume=args.resume, data=data)
        finished = True
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            run_dir.set_status("interrupted")
        raise
    except BaseException:
        if distributed.env_world_size() == 1 or os.environ.get("RANK", "0") == "0":
            run_dir.set_status("failed")
        raise
    finally:
        distributed.shutdown(synchronise=finished)
    if summary["rank"] != 0:
        return 0
    run_dir.set_status(summary["status"], step=summary["step"], best=summary["best"])
    if args.attach:
        return 130 if summary["status"] == "interrupted" else 0
    return _finish(run_dir, args, summary["status"])


def _finish(run_dir, args: argparse.Namespace, status: str) -> int:
    from spikeseq.train.runs import evaluate_run
    from spikeseq.train.tasks import task_for

    if status == "interrupted":
        print(f"spikeseq train: interrupted; resume with: spikeseq train --resume --out {run_dir.path}",
              file=sys.stderr)
        return 130
    if not args.no_eval:
        which = run_dir.config().train.eval_checkpoint
        result = evaluate_run(run_dir.path, which=which)
        task = task_for(run_dir.config())
        shown = ", ".join(f"{k} {result['test'][k]:.4f}" for k in task.report
                          if isinstance(result["test"].get(k), float)) or "no metric"
        into = result.get("batches_into_epoch", 0)
        at = f"epoch {result['epoch']}" + (f" + {into} batches" if into else "")
        print(f"test {shown} on {result['test']['n']} samples ({which} checkpoint, {at}, step {result['step']}; "
              f"best epoch {result['best_val']['epoch']})", file=sys.stderr)
        if run_dir.config().results.table and str(args.config).endswith(".toml"):
            from spikeseq.train.results import record

            path = record(run_dir.path, out_root=args.results_dir, eval_result=result)
            print(f"result artifact: {path}", file=sys.stderr)
    print(run_dir.path)
    return 0
