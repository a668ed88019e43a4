"""The ``spikeseq`` command.

Each subcommand lives in its own module, imported only when that subcommand runs, so ``spikeseq --help`` is fast
and a missing optional dependency only affects the command that needs it. A command module provides
``register(parser: argparse.ArgumentParser) -> None`` and ``run(args: argparse.Namespace) -> int``.
Errors from spikeseq print as one readable line (exit code 2); ``--debug`` shows the traceback. Ctrl-C at any
point, start-up included, exits with code 130 (see :mod:`spikeseq._signals`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from spikeseq import _signals
from spikeseq.errors import SpikeseqError

#: name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("spikeseq.train.cmd_train", "train a model from a TOML config into a run directory"),
    "eval": ("spikeseq.train.cmd_eval", "evaluate a run's best checkpoint on its test split"),
    "export": ("spikeseq.train.cmd_export", "export a run to NIR / Loihi-style / SpiNNaker2-style and verify it"),
    "profile": ("spikeseq.train.cmd_profile", "count operations and estimate energy for a run"),
    "report": ("spikeseq.report.cmd_report", "write the HTML + Markdown report of a run"),
    "results": ("spikeseq.report.cmd_results", "regenerate or check the README's results tables from results/"),
    "bench": ("spikeseq.bench.cli", "benchmarks, one per NAME (`spikeseq bench --help` lists them)"),
    "bench-run": ("spikeseq.train.cmd_bench_run", "time a trained EGRU run's stack on its test windows vs dense and "
                  "torch.nn.GRU"),
    "data": ("spikeseq.data.cli", "datasets: info, check, fetch"),
    "generate": ("spikeseq.train.cmd_generate", "stream text from a language-model run in RNN mode"),
    "demo": ("spikeseq.train.cmd_demo", "the main job end to end on data available offline"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``spikeseq`` argument parser; only ``command``'s module is imported to add its options (fast ``--help``)."""
    parser = argparse.ArgumentParser(prog="spikeseq", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).register(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the spikeseq command line ``argv``; returns the exit code (2: bad input, 130: interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    debug = "--debug" in argv
    previous = _signals.install()
    try:
        parser = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        module = importlib.import_module(COMMANDS[args.command][0])
        _signals.check()  # a Ctrl-C whose KeyboardInterrupt an extension swallowed while importing
        rc = int(module.run(args) or 0)
        _signals.check()
        return rc
    except KeyboardInterrupt:
        print("spikeseq: interrupted", file=sys.stderr)
        return 130
    except (SpikeseqError, FileNotFoundError, PermissionError, OSError) as e:
        if debug:
            raise
        print(f"spikeseq {command or ''}: error: {e}".replace("  ", " "), file=sys.stderr)
        return 130 if _signals.interrupted() else 2
    except Exception:
        if _signals.interrupted() and not debug:  # e.g. an ImportError that a Ctrl-C caused inside an import
            print("spikeseq: interrupted", file=sys.stderr)
            return 130
        raise
    finally:
        _signals.restore(previous)


def leave(code: int) -> NoReturn:
    """Exit with ``code``. A torchrun worker (``WORLD_SIZE`` > 1, as :func:`spikeseq.train.distributed.env_world_size`
    reads it; read here without importing torch) leaves without the interpreter's teardown, once its output is
    flushed: after a finished run (every file written and renamed, the process group left at a barrier) gloo's
    threads racing C++ static destructors at exit aborted a rank ("terminate called without an active exception",
    SIGABRT), and torchrun then reported the whole run as failed."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    leave(main())
