"""``spikeseq bench NAME``: dispatch to ``spikeseq.bench.NAME`` (register(parser), run(args) -> int)."""

from __future__ import annotations

import argparse
import importlib

BENCHES: dict[str, str] = {
    "sim": "simulator core vs snnTorch / Norse / SpikingJelly and the dense-matmul bound",
    "data": "event binning of N-MNIST, first pass vs cached pass, loader throughput",
    "spmm": "event-driven spike_linear vs the dense matmul over spike densities",
    "delays": "DelayLinear vs the dcls package, integer inference path vs Gaussian training path",
    "interp": "event-driven interpreter cost vs number of events",
    "profile": "profiler overhead vs the plain forward pass",
    "generation": "RNN-mode generation at batch 1: tokens/s (vs the rwkv package) and memory over a long stream",
    "wkv": "WKV forms (reference loop, chunked, fused C++) fwd+bwd vs each other and the block's matmul bound",
    "egru": "activity-sparse EGRU kernel vs the dense EGRU and torch.nn.GRU (fwd+bwd; pruned forward)",
    "hlop": "HLOP training-step overhead vs a plain step; inference outputs and op counts unchanged",
    "target": "training for a target (Loihi / SpiNNaker2 numerics in the forward pass) vs float training, per step",
    "gpu": "Triton kernels vs the reference on a real GPU (all gradients) and timings vs eager / torch.compile",
}


def register(parser: argparse.ArgumentParser) -> None:
    """Add one ``spikeseq bench NAME`` sub-command per benchmark in ``BENCHES``, each with its own options."""
    sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name, help_text in BENCHES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(f"spikeseq.bench.{name}")
        except ModuleNotFoundError:
            continue
        module.register(p)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark named by ``args.bench``; returns its exit code. An unwritable ``--json`` path is refused
    before the benchmark runs (:class:`~spikeseq.errors.OutputError`), not after minutes of timing."""
    module = importlib.import_module(f"spikeseq.bench.{args.bench}")
    if getattr(args, "json", None):
        from spikeseq._atomic import check_writable

        check_writable(args.json)
    try:
        return int(module.run(args) or 0)
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        from spikeseq.errors import ParameterError

        sizes = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(vars(args).items())
                          if isinstance(v, int) and not isinstance(v, bool) and v > 1)
        raise ParameterError(f"bench {args.bench}: the sizes asked for need more memory than this machine has "
                             f"({sizes}): {_first_line(e)}; choose smaller sizes (the defaults fit a laptop)") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocation failure: numpy's and Python's ``MemoryError``, or the ``RuntimeError`` of
    torch's CPU allocator ("can't allocate memory") and of an accelerator ("out of memory")."""
    if isinstance(e, MemoryError):
        return True
    text = str(e).lower()
    return "can't allocate memory" in text or "out of memory" in text or "cannot allocate memory" in text
