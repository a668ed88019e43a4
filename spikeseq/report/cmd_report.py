"""``spikeseq report RUN [--out DIR]``: one self-contained HTML page and a Markdown report of a run.

Reads the run directory's artefacts (metrics.jsonl, eval.json, profile.json, export/*.json); sections whose
artefact is missing name the command that writes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq report`` arguments (``RUN``, ``--out``) to ``parser``."""
    parser.add_argument("run", type=Path, help="run directory written by `spikeseq train`")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: RUN/report)")


def run(args: argparse.Namespace) -> int:
    """Write the report of ``args.run`` and print the paths of the HTML and Markdown files; returns 0."""
    from spikeseq.report.build import write_report

    paths = write_report(args.run, args.out)
    print(f"report: {paths['html']}")
    print(f"        {paths['markdown']}")
    return 0
