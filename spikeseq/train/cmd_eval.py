"""``spikeseq eval RUN [--checkpoint best|last]``: test accuracy, confusion matrix, firing rates -> RUN/eval.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq eval`` arguments (``RUN``, ``--checkpoint``, ``--json``) to ``parser``."""
    parser.add_argument("run", type=Path, help="run directory written by `spikeseq train`")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint (best)")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")


def run(args: argparse.Namespace) -> int:
    """Evaluate the run's checkpoint on its test split, write ``eval.json`` and print a summary; returns 0."""
    from spikeseq.train.runs import evaluate_run

    result = evaluate_run(args.run, args.checkpoint)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    test = result["test"]
    print(f"run        {args.run}")
    print(f"checkpoint {args.checkpoint} (epoch {result['epoch']}, step {result['step']})")
    shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items() if isinstance(v, float))
    print(f"test       {shown} on {test['n']} samples")
    for layer in result["spikes"]["layers"]:
        print(f"rate       {layer['name']}: {layer['rate']:.4f} ({layer['neurons']} neurons)")
    print(f"wrote      {Path(args.run) / 'eval.json'}")
    return 0
