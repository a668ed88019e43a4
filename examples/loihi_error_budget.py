"""Separate the accuracy lost by a run's Loihi-style export into its causes (spikeseq.verify.error_budget).

    python examples/loihi_error_budget.py RUN [--samples N] [--json OUT]

Uses the run's best checkpoint, its export settings (dt, sample count, readout) and the same held-out samples as
``spikeseq export`` / the demo's export stage, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spikeseq.errors import ParameterError, SpikeseqError
from spikeseq.train.runs import load_run, model_dt, sample_inputs
from spikeseq.verify.error_budget import loihi_error_budget, to_markdown


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--samples", type=int, default=None, help="held-out samples (default: the run's export samples)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    try:
        return budget(args)
    except SpikeseqError as e:
        print(f"loihi_error_budget: error: {e}", file=sys.stderr)
        return 2


def budget(args: argparse.Namespace) -> int:
    if args.samples is not None and args.samples < 1:
        raise ParameterError(f"--samples must be at least 1, got {args.samples}")
    lr = load_run(args.run, "best")
    dt = lr.cfg.export.dt or model_dt(lr.model)
    x, y = sample_inputs(lr.data(), args.samples or lr.cfg.export.samples, lr.cfg.train.seed)
    readout = "last" if lr.cfg.train.readout == "last" else "sum"
    input_bits = lr.cfg.export.loihi.get("input_bits", 8)
    steps = loihi_error_budget(lr.model, x, y, dt=dt, readout=readout, input_bits=input_bits)
    print(f"{args.run}: {x.shape[1]} held-out samples, {x.shape[0]} steps, readout {readout}\n")
    print(to_markdown(steps))
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps([s.to_dict() for s in steps], indent=2))
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
