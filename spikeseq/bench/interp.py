"""``spikeseq bench interp``: the event-driven interpreter's cost vs the number of input events.

One graph ``Input(n_in) -> Linear(n_in, n_out) -> LIF(n_out) -> Output`` at batch 1 is run on Bernoulli spike
inputs at ``--rate`` and at ``--rate / --factor``, and on the same inputs declared dense (a dense product per step,
the matmul bound of a non-event-driven simulator). Rows are interleaved over ``--repeats`` rounds so that machine
load hits all of them alike; the median time per row is reported with the events and synaptic operations counted
by the interpreter. The synapse matrix is compiled once before timing (it is cached per node).
Claim checked: ``--factor`` x fewer events -> at least ``factor/2`` x less time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from spikeseq._args import positive_float, positive_int, probability
from spikeseq.graph import ir
from spikeseq.graph.simulate import simulate


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench interp`` options (sizes, steps, input rate, event ratio, repeats, seed) to ``parser``."""
    parser.add_argument("--inputs", type=positive_int, default=4096, help="presynaptic neurons (default 4096)")
    parser.add_argument("--outputs", type=positive_int, default=2048, help="postsynaptic neurons (default 2048)")
    parser.add_argument("--steps", type=positive_int, default=100, help="time steps (default 100)")
    parser.add_argument("--rate", type=probability, default=0.1, help="input spike probability per step (default 0.1)")
    parser.add_argument("--factor", type=positive_float, default=10.0,
                        help="event ratio between the two rows (default 10)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seed", type=int, default=0)


def build(n_in: int, n_out: int, seed: int = 0) -> ir.Graph:
    """The benchmark graph ``Input(n_in) -> Linear -> LIF(n_out) -> Output`` with seeded random weights, dt = 1 ms."""
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    lif = ir.LIF(tau=np.full(n_out, 1e-2), r=np.full(n_out, 1 / (1 - np.exp(-0.1))), v_threshold=np.ones(n_out))
    return ir.Graph({"input": ir.Input((n_in,)), "syn": ir.Linear(w), "lif": lif, "output": ir.Output((n_out,))},
                    [("input", "syn"), ("syn", "lif"), ("lif", "output")], dt=1e-3)


def run(args: argparse.Namespace) -> int:
    """Time the interpreter on the three input rows and print times, events and synops per row; returns 0."""
    g = build(args.inputs, args.outputs, args.seed)
    rng = np.random.default_rng(args.seed)
    shape = (args.steps, 1, args.inputs)
    hi = (rng.random(shape) < args.rate).astype(np.float64)
    lo = (rng.random(shape) < args.rate / args.factor).astype(np.float64)
    # declared dense: values that are not 0/1 force the dense path (same work for any sparsity)
    dense = hi * 0.5 + 0.25
    rows = {"events x1": hi, f"events x1/{args.factor:g}": lo, "dense product": dense}
    simulate(g, hi[:1], record="outputs")  # compile the synapse matrix once (cached per node), not timed
    times: dict[str, list[float]] = {k: [] for k in rows}
    counts = {}
    for _ in range(args.repeats):
        for name, x in rows.items():
            t0 = time.perf_counter()
            r = simulate(g, x, record="outputs")
            times[name].append(time.perf_counter() - t0)
            counts[name] = (r.events["input"], r.synops["syn"], r.dense_macs["syn"])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"graph: Input({args.inputs}) -> Linear -> LIF({args.outputs}), T={args.steps}, batch 1, "
          f"median of {args.repeats} interleaved rounds")
    print(f"{'row':<18}{'input events':>14}{'synops':>14}{'dense MACs':>14}{'time [s]':>12}")
    for k in rows:
        ev, so, dm = counts[k]
        print(f"{k:<18}{ev:>14}{so:>14}{dm:>14}{med[k]:>12.4f}")
    names = list(rows)
    ev_ratio = counts[names[0]][0] / max(1, counts[names[1]][0])
    t_ratio = med[names[0]] / med[names[1]]
    print(f"events ratio {ev_ratio:.1f}x -> time ratio {t_ratio:.1f}x "
          f"(claim: >= {args.factor / 2:g}x: {'met' if t_ratio >= args.factor / 2 else 'NOT met'}); "
          f"dense product / sparse row: {med[names[2]] / med[names[1]]:.1f}x")
    return 0
