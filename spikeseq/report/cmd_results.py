"""``spikeseq results table [--check] [--readme README.md] [--results results]``: the README's results tables.

Regenerates every ``<!-- results:NAME -->`` ... ``<!-- /results -->`` block of the README from the artifacts under
``results/`` (see :mod:`spikeseq.report.results`); ``--check`` changes nothing and exits 1 when a block differs
(the test suite runs the same check). ``spikeseq results show TABLE`` prints one table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``table`` and ``show`` actions of ``spikeseq results`` to ``parser``."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("table", help="regenerate (or --check) the README's results blocks from results/")
    t.add_argument("--readme", type=Path, default=Path("README.md"))
    t.add_argument("--results", type=Path, default=Path("results"))
    t.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    s = sub.add_parser("show", help="print one generated table")
    s.add_argument("table", help="table name, e.g. lmu-har")
    s.add_argument("--results", type=Path, default=Path("results"))


def run(args: argparse.Namespace) -> int:
    """Regenerate, check (exit 1 when stale) or print the results tables; returns the exit code."""
    from spikeseq.report import results

    if args.action == "show":
        print(results.render_block(args.table, args.results), end="")
        return 0
    if args.check:
        stale = results.check_readme(args.readme, args.results)
        if stale:
            print(f"{args.readme}: results table(s) {', '.join(stale)} differ from {args.results}/; regenerate "
                  "with: spikeseq results table", file=sys.stderr)
            return 1
        print(f"{args.readme}: every results table matches {args.results}/")
        return 0
    changed = results.update_readme(args.readme, args.results)
    print(f"{args.readme}: regenerated {', '.join(changed) if changed else 'nothing (already up to date)'}")
    return 0
