"""``spikeseq bench egru``: the activity-sparse EGRU kernel against the dense EGRU and ``torch.nn.GRU``, one run.

A stack of ``--layers`` EGRU layers of ``--hidden`` units (default 2 x 512, T 256, B 32, float32, input width =
hidden), with each layer's per-unit thresholds set by bisection so that the layer's fraction of silent units
(activity sparsity over steps, batch and units) is ``--activity-sparsity`` (default: the trained language model's,
read from ``results/egru/lm_tinyshakespeare.json`` when present, else 0.85). Timed interleaved, medians of ``--reps``:

1. forward + backward (gradients of the input and of every parameter) of
   - ``sparse``: ``nn.EGRU(backend="cpu")``, the fused C++ loop that touches only active units' weights;
   - ``dense``: the same module with ``backend="torch"``, the reference loop of dense products (the EvNN
     PyTorch fallback's way of computing the same cell);
   - ``gru``: ``torch.nn.GRU`` of the same size (oneDNN/ATen's fused CPU path);
2. forward alone (``torch.no_grad``) after unstructured magnitude pruning of every weight matrix to
   ``--weight-sparsity`` (default 0.95, the SpiNNaker 2 paper's level), thresholds re-calibrated to
   ``--pruned-activity-sparsity`` (default 0.85): sparse (CSR recurrent weights, event-driven input products)
   vs dense EGRU vs ``torch.nn.GRU``.

Outputs of sparse and dense are compared each time (max |diff| printed). ``--json`` writes the table (default
``results/egru/bench.json``). Speed claims come from this command, never from tests.
``spikeseq bench-run RUN`` times a trained run's own EGRU on its test windows instead
(:mod:`spikeseq.train.cmd_bench_run`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from spikeseq.errors import BackendUnavailableError, ParameterError
from spikeseq.kernels import spmm
from spikeseq.kernels.egru import cpu
from spikeseq.nn.egru import EGRU
from spikeseq.provenance import cpu_model, git_commit, git_dirty
from spikeseq.timing import time_interleaved

RESULT = Path("results/egru/lm_tinyshakespeare.json")


def register(parser: argparse.ArgumentParser) -> None:
    """The options of ``spikeseq bench egru``."""
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=256, help="sequence length T")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--activity-sparsity", type=float, default=None,
                        help=f"fraction of silent units for the fwd+bwd comparison (default: {RESULT} or 0.85)")
    parser.add_argument("--weight-sparsity", type=float, default=0.95)
    parser.add_argument("--pruned-activity-sparsity", type=float, default=0.85)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, default=Path("results/egru/bench.json"))


def default_activity_sparsity() -> tuple[float, str]:
    """The trained language model's activity sparsity (from its results JSON), else 0.85."""
    if RESULT.exists():
        data = json.loads(RESULT.read_text())
        value = data.get("metrics", {}).get("egru", {}).get("activity_sparsity")
        if isinstance(value, float):
            return value, str(RESULT)
    return 0.85, "default 0.85 (no trained model result found)"


def activity_sparsity(model: EGRU, x: torch.Tensor, layer: int | None = None) -> float:
    """Fraction of zero events over steps, batch and units of ``layer`` (all layers for ``None``), forward on the
    C++ kernel."""
    model.backend = "cpu"
    with torch.no_grad():
        out, _ = model(x)
    e = out.events if layer is None else out.events[layer]
    return 1.0 - float(e.mean())


def calibrate(model: EGRU, x: torch.Tensor, target: float, iters: int = 12) -> float:
    """Layer by layer (first to last), set the layer's thresholds to one value found by bisection so that the
    layer's activity sparsity is ``target`` (every layer at the trained model's sparsity, not only their mean);
    returns the sparsity over all layers."""
    for k in range(model.num_layers):
        lo, hi = 0.0, 0.999
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            set_thresholds(model, mid, k)
            if activity_sparsity(model, x, k) < target:
                lo = mid
            else:
                hi = mid
        set_thresholds(model, hi, k)
    return activity_sparsity(model, x)


def set_thresholds(model: EGRU, value: float, layer: int | None = None) -> None:
    """Set every per-unit threshold of ``layer`` (of every layer for ``None``) of ``model`` to ``value``."""
    with torch.no_grad():
        for k in range(model.num_layers) if layer is None else (layer,):
            getattr(model, f"threshold_l{k}").fill_(value)


def prune_(model: torch.nn.Module, sparsity: float) -> None:
    """Unstructured magnitude pruning of every weight matrix (in place)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("weight"):
                k = round(sparsity * p.numel())
                if k > 0:
                    cut = p.abs().flatten().kthvalue(k).values
                    p.mul_(p.abs() > cut)


def _train_step(model, x):
    def step():
        out = model(x)[0]
        y = out.y if hasattr(out, "y") else out
        y.sum().backward()
        model.zero_grad(set_to_none=True)
        x.grad = None
    return step


def _forward(model, x):
    def fwd():
        with torch.no_grad():
            model(x)
    return fwd


def run(args: argparse.Namespace) -> int:
    """Run the comparison, print it and write the JSON."""
    ok, why = cpu.available()
    if not ok:
        raise BackendUnavailableError(f"bench egru needs the C++ library: {why}")
    for name in ("hidden", "layers", "steps", "batch", "reps", "threads"):
        if getattr(args, name) < 1:
            raise ParameterError(f"--{name} must be at least 1, got {getattr(args, name)}")
    act, source = (args.activity_sparsity, "--activity-sparsity") if args.activity_sparsity is not None \
        else default_activity_sparsity()
    for value, name in ((act, "activity sparsity"), (args.weight_sparsity, "--weight-sparsity"),
                        (args.pruned_activity_sparsity, "--pruned-activity-sparsity")):
        if not 0.0 <= value < 1.0:
            raise ParameterError(f"{name} must lie in [0, 1), got {value}")
    torch.set_num_threads(args.threads)
    H, L, T, B = args.hidden, args.layers, args.steps, args.batch
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, H, generator=g).requires_grad_()
    egru = EGRU(H, H, num_layers=L, seed=0, eps=3.6)
    gru = torch.nn.GRU(H, H, num_layers=L)
    got = calibrate(egru, x.detach(), act)
    print(f"EGRU {L} x {H}, T {T}, B {B}, float32, {torch.get_num_threads()} thread(s); activity sparsity "
          f"{got:.3f} (target {act:.3f} from {source})")

    def set_backend(b):
        def f():
            egru.backend = b
        return f

    sparse_step, dense_step = _train_step(egru, x), _train_step(egru, x)
    fns = {"sparse": lambda: (set_backend("cpu")(), sparse_step()),
           "dense": lambda: (set_backend("torch")(), dense_step()),
           "gru": _train_step(gru, x)}
    with torch.no_grad():
        egru.backend = "cpu"
        ys = egru(x)[0].y
        egru.backend = "torch"
        yd = egru(x)[0].y
    diff_train = float((ys - yd).abs().max())
    t_train = time_interleaved(fns, args.reps)
    print(f"fwd+bwd  sparse {t_train['sparse']:9.1f} ms | dense EGRU {t_train['dense']:9.1f} ms "
          f"({t_train['dense'] / t_train['sparse']:.2f}x) | nn.GRU {t_train['gru']:9.1f} ms "
          f"({t_train['gru'] / t_train['sparse']:.2f}x) | max|sparse-dense| {diff_train:.1e}", flush=True)

    prune_(egru, args.weight_sparsity)
    prune_(gru, args.weight_sparsity)
    got_p = calibrate(egru, x.detach(), args.pruned_activity_sparsity)
    with torch.no_grad():
        egru.backend = "cpu"
        ys = egru(x)[0].y
        egru.backend = "torch"
        yd = egru(x)[0].y
    diff_fwd = float((ys - yd).abs().max())
    fwd = {"sparse": lambda: (set_backend("cpu")(), _forward(egru, x)()),
           "dense": lambda: (set_backend("torch")(), _forward(egru, x)()),
           "gru": _forward(gru, x)}
    t_fwd = time_interleaved(fwd, args.reps)
    print(f"forward at {args.weight_sparsity:.2f} weight / {got_p:.3f} activity sparsity: sparse "
          f"{t_fwd['sparse']:8.1f} ms | dense EGRU {t_fwd['dense']:8.1f} ms ({t_fwd['dense'] / t_fwd['sparse']:.2f}x) "
          f"| nn.GRU {t_fwd['gru']:8.1f} ms ({t_fwd['gru'] / t_fwd['sparse']:.2f}x) | max|sparse-dense| "
          f"{diff_fwd:.1e}", flush=True)
    result = {
        "command": "spikeseq bench egru " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                                     if k in ("hidden", "layers", "steps", "batch", "reps",
                                                              "threads")),
        "config": {"hidden": H, "layers": L, "steps": T, "batch": B, "dtype": "float32", "threads": args.threads,
                   "eps": 3.6, "activity_sparsity_source": source},
        "commit": git_commit(), "dirty": git_dirty(),
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "vector_bytes": spmm.vector_bytes(),
                    "torch": torch.__version__, "cpus": os.cpu_count(), "load_average_1_5_15": list(os.getloadavg())},
        "fwd_bwd": {"activity_sparsity": got, "ms": t_train,
                    "dense_over_sparse": t_train["dense"] / t_train["sparse"],
                    "gru_over_sparse": t_train["gru"] / t_train["sparse"], "max_abs_diff": diff_train},
        "forward_pruned": {"weight_sparsity": args.weight_sparsity, "activity_sparsity": got_p, "ms": t_fwd,
                           "dense_over_sparse": t_fwd["dense"] / t_fwd["sparse"],
                           "gru_over_sparse": t_fwd["gru"] / t_fwd["sparse"], "max_abs_diff": diff_fwd},
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(args.json)
        print(f"wrote {args.json}")
    return 0
