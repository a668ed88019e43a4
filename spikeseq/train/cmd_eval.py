"""``spikeseq eval RUN [--checkpoint best|last] [--record]``: test accuracy, confusion matrix, firing rates ->
RUN/eval.json; ``--record`` also writes the run's result artifact (``results/<family>/<recipe>-s<seed>.json``, see
:mod:`spikeseq.train.results`) for a finished run of a recipe with a ``[results]`` section."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq eval`` arguments (``RUN``, ``--checkpoint``, ``--json``) to ``parser``."""
    parser.add_argument("run", type=Path, help="run directory written by `spikeseq train`")
    parser.add_argument("--checkpoint", choices=("best", "last"), default=None,
                        help="which checkpoint (default: the run's train.eval_checkpoint, as in its eval.json, of a "
                             "finished run only; naming one also loads an unfinished run's)")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.add_argument("--record", action="store_true",
                        help="write the result artifact of the run (train.eval_checkpoint; profiled on the same "
                             "weights) under --results-dir")
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help="artifact root (results)")


def run(args: argparse.Namespace) -> int:
    """Evaluate the run's checkpoint on its test split, write ``eval.json`` and print a summary; returns 0."""
    from spikeseq.train.runs import evaluate_run

    if args.record:
        from spikeseq.train.results import record

        print(f"result artifact: {record(args.run, out_root=args.results_dir)}")
        return 0
    result = evaluate_run(args.run, args.checkpoint)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    test = result["test"]
    print(f"run        {args.run}")
    print(f"checkpoint {result['checkpoint']} (epoch {result['epoch']}, step {result['step']})")
    from spikeseq.train.rundir import RunDir
    from spikeseq.train.tasks import task_for

    order = task_for(RunDir.open(args.run).config()).report
    keys = [k for k in order if k in test] + [k for k in test if k not in order]
    shown = ", ".join(f"{k} {test[k]:.4f}" for k in keys if isinstance(test[k], float))
    print(f"test {shown} on {test['n']} samples")
    for layer in result["spikes"]["layers"]:
        print(f"rate       {layer['name']}: {layer['rate']:.4f} ({layer['neurons']} neurons)")
    print(f"wrote      {Path(args.run) / 'eval.json'}")
    return 0
