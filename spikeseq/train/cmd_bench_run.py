"""``spikeseq bench-run RUN``: the EGRU of a trained run, on the inputs it sees, against the dense loop and GRU.

The synthetic comparison of ``spikeseq bench egru`` (:mod:`spikeseq.bench.egru`) sets thresholds on random weights;
this one (a command of the training layer: it reads runs) takes a finished
``spikeseq train`` run of an EGRU model (``egru_lm`` or ``egru_classifier``: any model whose ``rnn`` is a
:class:`spikeseq.nn.EGRU`), loads the checkpoint its ``eval.json`` names, and captures what the recurrent stack
receives on the first ``--batch`` windows of the run's test split (the embedding output of a language model, the
flattened input of a classifier). Timed interleaved, medians of ``--reps``, one thread by default:

- forward + backward (gradients of that input and of every EGRU parameter) of the trained stack on the C++ kernel
  (``sparse``), of the same stack on the reference loop of dense products (``dense``), and of ``torch.nn.GRU`` of
  the same sizes (``gru``, untrained: its speed does not depend on its weights);
- forward alone (``torch.no_grad``) of the three.

The activity sparsity is the trained model's own on those windows, and any subnormal numbers its trained weights
produce are part of the cost, as in training (the C++ kernel flushes them to zero, see ``kernels/parallel.h``;
``--flush-denormal`` makes PyTorch do the same for the dense and GRU candidates). The record goes to
``RUN/bench_run.json``, or to ``--json FILE``; nothing under ``results/`` is written unless ``--json`` names it
(e.g. ``--json results/egru/bench_trained.json`` to replace the committed record)::

    spikeseq bench-run RUN [--batch 32] [--reps 7] [--threads 1] [--flush-denormal] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

import torch

from spikeseq._atomic import check_writable
from spikeseq.errors import BackendUnavailableError, ConfigError, ParameterError
from spikeseq.kernels.egru import cpu
from spikeseq.nn.egru import EGRU
from spikeseq.provenance import command_line, cpu_model, git_commit, git_dirty
from spikeseq.timing import time_interleaved
from spikeseq.train.datasets import time_first
from spikeseq.train.rundir import read_json, write_json
from spikeseq.train.runs import load_run

#: the record's file name in the run directory when ``--json`` is not given
DEFAULT_JSON_NAME = "bench_run.json"


def record_path(args: argparse.Namespace) -> Path:
    """Where the record goes: ``--json`` when given, else ``RUN/bench_run.json`` (never under ``results/``)."""
    return Path(args.json) if args.json is not None else Path(args.run) / DEFAULT_JSON_NAME


def check_record_path(args: argparse.Namespace) -> None:
    """Raise :class:`~spikeseq.errors.OutputError` (:func:`spikeseq._atomic.check_writable`) now, not after the
    timing, when the record could not be written: a directory of that name, a file where a folder is needed, a
    folder that cannot be written. The folder of an explicit ``--json`` is created; a missing ``RUN/`` is not
    (``load_run`` then says what is wrong with it)."""
    path = record_path(args)
    if args.json is not None or path.parent.is_dir():
        check_writable(path)


def trained_stack(run: Path, batch: int) -> tuple[EGRU, torch.Tensor, dict[str, Any]]:
    """The run's EGRU stack (evaluated checkpoint) and its input ``[T, B, I]`` on the first ``batch`` test windows."""
    if not (run / "eval.json").exists():
        raise ConfigError(f"{run} is not a finished spikeseq train run (no eval.json); train one first, e.g. "
                          "spikeseq train examples/egru/lm_tinyshakespeare.toml --out RUN")
    ev = read_json(run / "eval.json")
    which = ev.get("checkpoint") if isinstance(ev, dict) else None
    if which not in ("best", "last"):
        if not isinstance(ev, dict):
            got = f"a JSON {type(ev).__name__}"
        else:
            got = f"\"checkpoint\": {which!r}" if "checkpoint" in ev else "no \"checkpoint\""
        raise ConfigError(f"{run / 'eval.json'} does not name the evaluated checkpoint (expected a JSON object with "
                          f"\"checkpoint\": \"best\" or \"last\", got {got}); rewrite it with `spikeseq eval {run}`")
    lr = load_run(run, which)
    rnn = getattr(lr.model, "rnn", None)
    if not isinstance(rnn, EGRU):
        raise ConfigError(f"{run}: model {lr.cfg.model.name!r} has no EGRU stack (model.rnn); bench-run takes a run "
                          "of a model whose .rnn is a spikeseq.nn.EGRU")
    test = lr.data().test
    if len(test) == 0:
        raise ConfigError(f"{run}: the run's test split is empty")
    captured: list[torch.Tensor] = []
    hook = rnn.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().clone()))
    with torch.no_grad():
        lr.model(time_first(test.x[:batch]))
    hook.remove()
    x = captured[0]
    if rnn.batch_first:
        x = x.transpose(0, 1).contiguous()
        rnn.batch_first = False
    info = {"run": str(run), "model": lr.cfg.model.name, "checkpoint": lr.which, "recipe_model": lr.cfg.model.kwargs,
            "input_shape": list(x.shape)}
    return rnn, x, info


def _step(module: torch.nn.Module, x: torch.Tensor, backend: str | None):
    def step() -> None:
        if backend is not None:
            module.backend = backend  # type: ignore[assignment]
        out = module(x)[0]
        (out.y if hasattr(out, "y") else out).sum().backward()
        module.zero_grad(set_to_none=True)
        x.grad = None
    return step


def _forward(module: torch.nn.Module, x: torch.Tensor, backend: str | None):
    def fwd() -> None:
        if backend is not None:
            module.backend = backend  # type: ignore[assignment]
        with torch.no_grad():
            module(x)
    return fwd


def register(parser: argparse.ArgumentParser) -> None:
    """The options of ``spikeseq bench-run``."""
    parser.add_argument("run", type=Path, help="a finished run of a model whose .rnn is a spikeseq.nn.EGRU stack")
    parser.add_argument("--batch", type=int, default=32, help="test windows timed at once (default 32)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="torch.set_flush_denormal(True) for the PyTorch candidates too (the C++ kernel always "
                             "flushes subnormals)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help=f"where to write the record (default: RUN/{DEFAULT_JSON_NAME}; a committed record "
                             "such as results/egru/bench_trained.json is replaced only when named here)")


def run(args: argparse.Namespace) -> int:
    """Time the trained stack (see the module docstring), print the ratios and write the record."""
    ok, why = cpu.available()
    if not ok:
        raise BackendUnavailableError(f"bench-run needs the C++ EGRU library: {why}")
    flush = bool(getattr(args, "flush_denormal", False))
    try:
        return _run(args, flush and torch.set_flush_denormal(True))
    finally:
        if flush:
            torch.set_flush_denormal(False)  # PyTorch's default, for whatever runs next in this process


def _run(args: argparse.Namespace, flushed: bool) -> int:
    if args.batch < 1 or args.reps < 1 or args.threads < 1:
        raise ParameterError(f"--batch, --reps and --threads must be at least 1, got {args.batch}, {args.reps}, "
                             f"{args.threads}")
    check_record_path(args)  # before the run is loaded and timed (minutes), not after
    rnn, x, info = trained_stack(Path(args.run), args.batch)
    torch.set_num_threads(args.threads)  # after load_run, which applies the run's own train.threads
    rnn.train()
    gru = torch.nn.GRU(rnn.input_size, rnn.hidden_size, num_layers=rnn.num_layers)
    with torch.no_grad():
        rnn.backend = "cpu"
        out = rnn(x)[0]
        ys, events = out.y, out.events
        rnn.backend = "torch"
        yd = rnn(x)[0].y
    act = 1.0 - float(events.mean())
    diff = float((ys - yd).abs().max())
    weights = [p.detach() for n, p in rnn.named_parameters() if n.startswith("weight")]
    w_sp = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    T, B, I = x.shape
    if flushed:
        print("torch.set_flush_denormal(True): subnormals flushed in the PyTorch candidates too")
    print(f"trained EGRU {rnn.num_layers} x {rnn.hidden_size} (input {I}) from {info['run']}, T {T}, B {B}, "
          f"{torch.get_num_threads()} thread(s); activity sparsity {act:.3f}, weight sparsity {w_sp:.3f}; "
          f"max|sparse-dense| {diff:.1e}")
    x = x.requires_grad_()
    t_train = time_interleaved({"sparse": _step(rnn, x, "cpu"), "dense": _step(rnn, x, "torch"),
                                "gru": _step(gru, x, None)}, args.reps)
    rnn.eval()
    t_fwd = time_interleaved({"sparse": _forward(rnn, x, "cpu"), "dense": _forward(rnn, x, "torch"),
                              "gru": _forward(gru, x, None)}, args.reps)
    for label, t in (("fwd+bwd", t_train), ("forward", t_fwd)):
        print(f"{label:8s} sparse {t['sparse']:8.1f} ms | dense EGRU {t['dense']:8.1f} ms "
              f"({t['dense'] / t['sparse']:.2f}x) | nn.GRU {t['gru']:8.1f} ms ({t['gru'] / t['sparse']:.2f}x)")
    record = {
        "command": command_line("bench-run"), "commit": git_commit(), "dirty": git_dirty(),
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "torch": torch.__version__,
                    "cpus": os.cpu_count(), "load_average_1_5_15": list(os.getloadavg())},
        "trained": {**info, "activity_sparsity": act, "weight_sparsity": w_sp, "max_abs_diff": diff,
                    "threads": args.threads,
                    "torch_flush_denormal": flushed},
        "fwd_bwd": {"ms": t_train, "dense_over_sparse": t_train["dense"] / t_train["sparse"],
                    "gru_over_sparse": t_train["gru"] / t_train["sparse"]},
        "forward": {"ms": t_fwd, "dense_over_sparse": t_fwd["dense"] / t_fwd["sparse"],
                    "gru_over_sparse": t_fwd["gru"] / t_fwd["sparse"]},
    }
    out = record_path(args)
    write_json(out, record)
    print(f"wrote {out}")
    return 0
