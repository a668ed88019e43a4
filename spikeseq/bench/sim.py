"""``spikeseq bench sim``: the simulator core against snnTorch, Norse, SpikingJelly and the dense-matmul bound.

One network, built in every framework with the same weights and the same input:

    input spikes [T, B, 700] (density 0.05) -> Linear -> LIF -> Linear -> LIF -> Linear readout (20 classes)

LIF: beta 0.9, threshold 1, reset to zero, reset term detached, ATan surrogate (alpha 2). That is one model in all
frameworks: snnTorch ``Leaky(reset_mechanism="zero")`` (default ``reset_delay``) keeps our ``v_pre`` as ``mem``;
SpikingJelly ``LIFNode(tau=10, decay_input=False, v_reset=0, detach_reset=True)`` decays by ``1 - 1/tau = 0.9``;
Norse ``LIFBoxCell`` integrates ``v += dt/tau (i - v)`` with ``dt/tau = 0.1``, so its input weights are the
others' times 10; Norse has no ATan surrogate (it runs its default SuperSpike) and does not
detach the reset, so its row is checked against spikeseq run with those settings (Norse 1.1's SuperSpike backward
ignores its ``alpha``: ``1 / (|x| + 1)^2``, our ``FastSigmoid(slope=1)``). Every framework runs
layer by layer (each Linear over all ``T * B`` rows at once, then the time loop), the fastest way to use each.

spikeseq runs ``kernels.lif_scan`` and ``kernels.spike_linear`` for every Linear (all three take spikes): with
``mode="auto"`` the input and hidden layers (densities 0.05-0.1, 256 outputs) are event-driven (sums of the weight
columns of the spikes, forward and weight gradient), the 20-class readout is a dense matmul that saves its input as
uint8. The row "spikeseq dense mm" runs every matmul dense (``F.linear``; ``spike_linear(mode="dense")`` after the
neurons), which isolates what the fused scans add. The bound is the three dense matmuls over all ``T * B`` rows
with an elementwise surrogate threshold in place of each LIF (no time loop, same autograd): a bound for dense
execution, which the event-driven matmuls can beat.
Rows are timed interleaved (rep 1 of every row, rep 2 of every row, ...), medians reported; forward is
inference (``torch.no_grad``), forward+backward is ``loss.backward()`` on the readout.
Bytes saved for backward: the storage of every tensor autograd saves (``saved_tensors_hooks``), without
parameters and without the input spikes (held by the caller in every framework).
Agreement: each row in float64 against spikeseq with matched settings: readout and all weight gradients.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from spikeseq._args import nonnegative_int
from spikeseq.errors import ParameterError

#: the settings run without --settings
DEFAULT_SETTINGS = "small,medium"
SETTINGS = {
    "small": dict(T=100, B=32, inputs=700, hidden=256, classes=20),
    "medium": dict(T=500, B=16, inputs=700, hidden=512, classes=20),
    "quick": dict(T=12, B=4, inputs=40, hidden=16, classes=5),
}
BETA, V_TH, DENSITY, ATAN_ALPHA, NORSE_ALPHA = 0.9, 1.0, 0.05, 2.0, 100.0
#: dt / tau of the Norse Euler step that gives beta = 0.9 (its input is scaled by it).
NORSE_DT_TAU = 1.0 - BETA
#: spikeseq with every matmul dense (F.linear), to separate the scans' share from the event-driven matmuls'.
DENSE_ROW = "spikeseq dense mm"
TARGETS = {"bound_ratio": 1.3, "vs_snntorch": 4.0, "vs_spikingjelly": 2.5, "bytes_vs_snntorch": 0.5}
#: float64 agreement tolerances: readout absolute, weight gradients relative to their largest entry.
OUT_ATOL, GRAD_RTOL = 1e-9, 1e-9
#: snnTorch's ATan returns float32 spikes even for float64 input, so the gradient reaching every spike is rounded to
#: float32 (relative error ~6e-8): its gradient tolerance is float32's.
GRAD_RTOL_ROW = {"snntorch": 1e-6}


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench sim`` options (settings, repetitions, JSON, check, threads, reference) to ``parser``."""
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="comma list of: small, medium (default both)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke setting, 2 repetitions")
    parser.add_argument("--reps", type=nonnegative_int, default=0,
                        help="timed repetitions per row (default 12 small, 6 medium)")
    parser.add_argument("--json", type=Path, default=None, help="write the table as JSON to this path")
    parser.add_argument("--no-check", action="store_true", help="skip the float64 agreement check")
    parser.add_argument("--threads", type=nonnegative_int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--with-reference", action="store_true",
                        help="also time the pure-torch reference path of spikeseq (as slow as snnTorch)")


# ----------------------------------------------------------------------------------------------- the rows
@dataclass
class Row:
    """One framework's network: ``forward(x)`` on ``[T, B, inputs]``, its modules, and one hidden layer's ``neuron``."""

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    modules: list[nn.Module]
    neuron: Callable[[torch.Tensor], torch.Tensor]  # one hidden layer's neurons on a current [T, B, H]
    note: str = ""


def _linears(cfg: dict, dtype: torch.dtype, seed: int = 0) -> list[nn.Linear]:
    g = torch.Generator().manual_seed(seed)
    sizes = [(cfg["inputs"], cfg["hidden"]), (cfg["hidden"], cfg["hidden"]), (cfg["hidden"], cfg["classes"])]
    layers = []
    for fan_in, fan_out in sizes:
        lin = nn.Linear(fan_in, fan_out, dtype=dtype)
        with torch.no_grad():
            # gain so that a good share of neurons fire at density 0.05 (about 10-20 % of steps)
            lin.weight.copy_(torch.randn(fan_out, fan_in, generator=g, dtype=dtype) * (3.0 / fan_in**0.5))
            lin.bias.copy_(torch.randn(fan_out, generator=g, dtype=dtype) * 0.1)
        layers.append(lin)
    return layers


def spikeseq_row(lins, dtype, name="spikeseq", backend="auto", surrogate=None, detach=True,
                 linear_mode="auto") -> Row:
    """The network on spikeseq's kernels (``backend``, ``linear_mode`` for ``spike_linear``), copying ``lins``."""
    # The kernels API with beta as a number: nn.LIF derives beta from a float32 tau buffer, which is ~1e-8 off 0.9
    # and would blur the float64 agreement check (the time loop is the same code either way).
    from spikeseq import kernels
    from spikeseq import surrogate as sg

    lins = copy.deepcopy(lins)
    kw = dict(beta=BETA, v_th=V_TH, reset="zero", detach_reset=detach, surrogate=surrogate or sg.ATan(ATAN_ALPHA),
              backend=backend)

    def neuron(cur):
        return kernels.lif_scan(cur, **kw)[0]

    def linear(lin, z):  # every Linear here takes spikes (the input and the two hidden layers)
        return kernels.spike_linear(z, lin.weight, lin.bias, mode=linear_mode)

    def first(x):  # dense rows multiply the input as every peer does (nn.Linear keeps the caller's x)
        return lins[0](x) if linear_mode == "dense" else linear(lins[0], x)

    def forward(x):
        return linear(lins[2], neuron(linear(lins[1], neuron(first(x)))))

    return Row(name, forward, lins, neuron, note=f"kernels.lif_scan backend={backend} + spike_linear {linear_mode}")


def bound_row(lins, dtype) -> Row:
    """The dense-matmul bound: the same Linears with only a threshold-and-surrogate between them (no neuron state)."""
    from spikeseq import surrogate as sg

    lins = copy.deepcopy(lins)
    surr = sg.ATan(ATAN_ALPHA)

    def neuron(cur):
        return sg.spike(cur - V_TH, surr)

    def forward(x):
        return lins[2](neuron(lins[1](neuron(lins[0](x)))))

    return Row("dense bound", forward, lins, neuron, note="3 matmuls + elementwise threshold, no time loop")


def snntorch_row(lins, dtype) -> Row:
    """The network on snnTorch ``Leaky`` neurons (``reset_mechanism="zero"``, ATan surrogate), copying ``lins``."""
    import snntorch as snn
    from snntorch import surrogate as ssg

    lins = copy.deepcopy(lins)
    neurons = [snn.Leaky(beta=torch.tensor(BETA, dtype=dtype), threshold=torch.tensor(V_TH, dtype=dtype),
                         spike_grad=ssg.atan(alpha=ATAN_ALPHA), reset_mechanism="zero") for _ in range(2)]

    def layer(lif, cur):
        mem = torch.zeros_like(cur[0])
        out = []
        for t in range(cur.shape[0]):
            spk, mem = lif(cur[t], mem)
            out.append(spk.to(cur.dtype))  # snnTorch's atan returns float32 spikes; a no-op in float32
        return torch.stack(out)

    def forward(x):
        z = layer(neurons[0], lins[0](x))
        z = layer(neurons[1], lins[1](z))
        return lins[2](z)

    return Row("snntorch", forward, lins, lambda cur: layer(neurons[0], cur),
               note="Leaky(reset_mechanism='zero'), atan")


def norse_row(lins, dtype) -> Row:
    """The network on Norse ``LIFBoxCell`` (input weights scaled by ``1 / (dt/tau)``, see the module docstring)."""
    from norse.torch import LIFBoxCell
    from norse.torch.functional.lif_box import LIFBoxParameters

    lins = copy.deepcopy(lins)
    with torch.no_grad():  # Norse scales its input by dt/tau: give it weights / (dt/tau)
        for lin in lins[:2]:
            lin.weight.div_(NORSE_DT_TAU)
            lin.bias.div_(NORSE_DT_TAU)
    dt = 1e-3
    p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(NORSE_DT_TAU / dt, dtype=dtype),
                         v_th=torch.as_tensor(V_TH, dtype=dtype), v_reset=torch.as_tensor(0.0, dtype=dtype),
                         v_leak=torch.as_tensor(0.0, dtype=dtype), method="super",
                         alpha=torch.as_tensor(NORSE_ALPHA, dtype=dtype))
    cells = [LIFBoxCell(p, dt=dt) for _ in range(2)]

    def layer(cell, cur):
        state, out = None, []
        for t in range(cur.shape[0]):
            z, state = cell(cur[t], state)
            out.append(z)
        return torch.stack(out)

    def forward(x):
        z = layer(cells[0], lins[0](x))
        z = layer(cells[1], lins[1](z))
        return lins[2](z)

    return Row("norse", forward, lins, lambda cur: layer(cells[0], cur), note="LIFBoxCell, SuperSpike (slope 1)")


def spikingjelly_row(lins, dtype) -> Row:
    """The network on SpikingJelly ``LIFNode`` (multi-step mode, ``tau = 10``, ``decay_input=False``)."""
    from spikingjelly.activation_based import functional as sjf
    from spikingjelly.activation_based import neuron, surrogate

    lins = copy.deepcopy(lins)
    nodes = [neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=V_TH, v_reset=0.0,
                            surrogate_function=surrogate.ATan(alpha=ATAN_ALPHA), detach_reset=True,
                            step_mode="m") for _ in range(2)]

    def neuron(cur, node=nodes[0]):
        sjf.reset_net(node)
        return node(cur)

    def forward(x):
        for n in nodes:
            sjf.reset_net(n)
        z = nodes[0](lins[0](x))
        z = nodes[1](lins[1](z))
        return lins[2](z)

    return Row("spikingjelly", forward, lins, neuron, note="multi-step LIFNode (2.0: torch autograd path on CPU)")


PEERS = {"snntorch": snntorch_row, "norse": norse_row, "spikingjelly": spikingjelly_row}


def build_rows(cfg: dict, dtype: torch.dtype, with_reference: bool) -> tuple[list[Row], list[str]]:
    """The rows to time for setting ``cfg`` and the names of peers skipped because they are not installed."""
    lins = _linears(cfg, dtype)
    rows = [spikeseq_row(lins, dtype), spikeseq_row(lins, dtype, name=DENSE_ROW, linear_mode="dense")]
    if with_reference:
        rows.append(spikeseq_row(lins, dtype, name="spikeseq (torch reference)", backend="torch"))
    skipped = []
    for name, make in PEERS.items():
        try:
            rows.append(make(lins, dtype))
        except ImportError as err:
            skipped.append(f"{name}: not installed ({err})")
    rows.append(bound_row(lins, dtype))
    return rows, skipped


def make_input(cfg: dict, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    """Bernoulli input spikes ``[T, B, inputs]`` of density ``DENSITY``, seeded."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(cfg["T"], cfg["B"], cfg["inputs"], generator=g) < DENSITY).to(dtype)


# ----------------------------------------------------------------------------------------------- measuring
def saved_bytes(row: Row, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves for backward (no parameters, no input)."""
    skip = {p.untyped_storage().data_ptr() for m in row.modules for p in m.parameters()}
    skip.add(x.untyped_storage().data_ptr())
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = row.forward(x)
    del y
    return sum(seen.values())


def neuron_saved_bytes(row: Row, cfg: dict) -> int:
    """Bytes one hidden layer's neurons save for backward on a current ``[T, B, hidden]`` (the current excluded)."""
    g = torch.Generator().manual_seed(2)
    cur = (torch.randn(cfg["T"], cfg["B"], cfg["hidden"], generator=g) + 0.5).requires_grad_()
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        if s.data_ptr() != cur.untyped_storage().data_ptr():
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z = row.neuron(cur)
    del z
    return sum(seen.values())


def _zero(row: Row) -> None:
    for m in row.modules:
        for p in m.parameters():
            p.grad = None


def time_rows(rows: list[Row], x: torch.Tensor, reps: int, warmup: int = 2) -> dict[str, dict[str, float]]:
    """Median forward and forward+backward times in ms per row, repetitions interleaved over the rows."""
    fwd: dict[str, list[float]] = {r.name: [] for r in rows}
    both: dict[str, list[float]] = {r.name: [] for r in rows}
    for rep in range(warmup + reps):
        for r in rows:  # interleaved: one repetition of every row, then the next
            with torch.no_grad():
                t0 = time.perf_counter()
                r.forward(x)
                t1 = time.perf_counter()
            _zero(r)
            t2 = time.perf_counter()
            r.forward(x).sum().backward()
            t3 = time.perf_counter()
            if rep >= warmup:
                fwd[r.name].append(t1 - t0)
                both[r.name].append(t3 - t2)
    return {r.name: {"forward_ms": 1e3 * statistics.median(fwd[r.name]),
                     "forward_backward_ms": 1e3 * statistics.median(both[r.name])} for r in rows}


def _outputs_and_grads(row: Row, x: torch.Tensor):
    _zero(row)
    y = row.forward(x)
    (y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum().backward()
    return y.detach(), [lin.weight.grad.clone() for lin in row.modules]


def spike_rates(lins: list[nn.Linear], x: torch.Tensor) -> list[float]:
    """Fraction of (t, b, neuron) entries that spike in each hidden layer (shows the check is not vacuous)."""
    from spikeseq import kernels

    with torch.no_grad():
        z1, _ = kernels.lif_scan(lins[0](x), beta=BETA, v_th=V_TH, reset="zero")
        z2, _ = kernels.lif_scan(lins[1](z1), beta=BETA, v_th=V_TH, reset="zero")
    return [float(z1.mean()), float(z2.mean())]


def agreement(cfg: dict) -> dict[str, dict]:
    """float64: each row against spikeseq with matched settings (readout and all weight gradients)."""
    from spikeseq import surrogate as sg

    dtype = torch.float64
    lins = _linears(cfg, dtype)
    x = make_input(cfg, dtype)
    ref_atan = _outputs_and_grads(spikeseq_row(lins, dtype), x)
    result = {"hidden spike rates": spike_rates(lins, x)}
    ref_super = _outputs_and_grads(
        spikeseq_row(lins, dtype, surrogate=sg.FastSigmoid(1.0), detach=False), x)
    candidates = [("spikeseq (torch reference)", lambda: spikeseq_row(lins, dtype, backend="torch"), ref_atan, 1.0),
                  (DENSE_ROW, lambda: spikeseq_row(lins, dtype, linear_mode="dense"), ref_atan, 1.0)]
    candidates += [(n, (lambda m=m: m(lins, dtype)), ref_super if n == "norse" else ref_atan,
                    NORSE_DT_TAU if n == "norse" else 1.0) for n, m in PEERS.items()]
    for name, make, (y_ref, g_ref), gscale in candidates:
        try:
            row = make()
        except ImportError:
            continue
        y, grads = _outputs_and_grads(row, x)
        # Norse's first two weights are the others' / (dt/tau): its gradients are ours * (dt/tau)
        scales = [gscale, gscale, 1.0]
        out_err = float((y - y_ref).abs().max())
        grad_err = max(float((g / s - gr).abs().max() / gr.abs().max().clamp_min(1e-300))
                       for g, gr, s in zip(grads, g_ref, scales, strict=True))
        result[name] = {"readout_max_abs_diff": out_err, "weight_grad_max_rel_diff": grad_err,
                        "grad_rtol": GRAD_RTOL_ROW.get(name, GRAD_RTOL),
                        "ok": out_err <= OUT_ATOL and grad_err <= GRAD_RTOL_ROW.get(name, GRAD_RTOL)}
    return result


# ----------------------------------------------------------------------------------------------- the table
@dataclass
class SettingResult:
    """Results of one setting: times and saved bytes per row, float64 agreement, and the pass/fail of each target."""

    setting: str
    config: dict
    reps: int
    rows: dict[str, dict] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    agreement: dict[str, dict] = field(default_factory=dict)
    targets: dict[str, dict] = field(default_factory=dict)
    load: float = 0.0  # 1-minute load average when the timing finished
    #: the targets' ratios under plain keys (for the README table spec): ``<row>_over_<row>`` of fwd+bwd times,
    #: ``saved_vs_snntorch`` / ``neuron_saved_vs_snntorch`` of saved bytes
    ratios: dict[str, float] = field(default_factory=dict)


def run_setting(name: str, reps: int, check: bool, with_reference: bool = False) -> SettingResult:
    """Build, time and measure every row of setting ``name`` and check the targets (agreement too with ``check``)."""
    cfg = SETTINGS[name]
    res = SettingResult(name, dict(cfg), reps)
    rows, res.skipped = build_rows(cfg, torch.float32, with_reference=with_reference)
    x = make_input(cfg, torch.float32)
    timing = time_rows(rows, x, reps)
    res.load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for r in rows:
        res.rows[r.name] = {**timing[r.name], "saved_bytes": saved_bytes(r, x),
                            "neuron_saved_bytes": neuron_saved_bytes(r, cfg), "note": r.note}
    peers = [n for n in PEERS if n in res.rows]
    ours, bound = res.rows["spikeseq"], res.rows["dense bound"]
    for key in ("forward_ms", "forward_backward_ms"):
        fastest = min((res.rows[p][key] for p in peers), default=float("nan"))
        for r in res.rows.values():
            r[key.replace("_ms", "_vs_fastest_peer")] = r[key] / fastest
            r[key.replace("_ms", "_vs_bound")] = r[key] / bound[key]
    fb = "forward_backward_ms"
    res.ratios["spikeseq_over_bound"] = ours[fb] / bound[fb]
    if "spikeseq dense mm" in res.rows:
        res.ratios["dense_mm_over_bound"] = res.rows["spikeseq dense mm"][fb] / bound[fb]
    for p in peers:
        res.ratios[f"{p}_over_spikeseq"] = res.rows[p][fb] / ours[fb]
    if "snntorch" in res.rows:
        for key, name in (("saved_bytes", "saved_vs_snntorch"), ("neuron_saved_bytes", "neuron_saved_vs_snntorch")):
            res.ratios[name] = ours[key] / res.rows["snntorch"][key]
    res.targets["spikeseq fwd+bwd <= 1.3 x bound"] = _target(ours[fb] / bound[fb], TARGETS["bound_ratio"], "<=")
    if "snntorch" in res.rows:
        res.targets["snntorch / spikeseq fwd+bwd >= 4"] = _target(
            res.rows["snntorch"][fb] / ours[fb], TARGETS["vs_snntorch"], ">=")
        res.targets["spikeseq neuron-layer saved bytes <= 0.5 x snntorch"] = _target(
            ours["neuron_saved_bytes"] / res.rows["snntorch"]["neuron_saved_bytes"], TARGETS["bytes_vs_snntorch"],
            "<=")
        res.targets["spikeseq whole-network saved bytes <= 0.5 x snntorch"] = _target(
            ours["saved_bytes"] / res.rows["snntorch"]["saved_bytes"], TARGETS["bytes_vs_snntorch"], "<=")
    if "spikingjelly" in res.rows:
        res.targets["spikingjelly / spikeseq fwd+bwd >= 2.5"] = _target(
            res.rows["spikingjelly"][fb] / ours[fb], TARGETS["vs_spikingjelly"], ">=")
    if check:
        res.agreement = agreement(cfg)
    return res


def _target(value: float, limit: float, op: str) -> dict:
    ok = value <= limit if op == "<=" else value >= limit
    return {"value": value, "limit": limit, "pass": bool(ok)}


def format_setting(res: SettingResult) -> str:
    """The result of one setting as a plain-text table with ratios and targets."""
    c = res.config
    lines = [f"setting {res.setting}: T={c['T']} B={c['B']} in={c['inputs']} hidden={c['hidden']} "
             f"classes={c['classes']}, float32, {torch.get_num_threads()} threads, median of {res.reps}, "
             f"load average {res.load:.1f} on {os.cpu_count()} CPUs (others' load skews the ratios)"]
    head = (f"{'row':28s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} {'/fastest peer':>14s} {'/bound':>7s} "
            f"{'saved MiB':>9s} {'neuron MiB':>10s}")
    lines += [head, "-" * len(head)]
    for name, r in res.rows.items():
        lines.append(f"{name:28s} {r['forward_ms']:9.2f} {r['forward_backward_ms']:11.2f} "
                     f"{r['forward_backward_vs_fastest_peer']:14.2f} {r['forward_backward_vs_bound']:7.2f} "
                     f"{r['saved_bytes'] / 2**20:9.2f} {r['neuron_saved_bytes'] / 2**20:10.2f}")
    for s in res.skipped:
        lines.append(f"  skipped {s}")
    for name, t in res.targets.items():
        verdict = "" if t["pass"] is None else " -> PASS" if t["pass"] else " -> FAIL"
        lines.append(f"  {'' if t['pass'] is None else 'target '}{name}: {t['value']:.2f}{verdict}")
    if res.agreement:
        lines.append(f"  agreement with spikeseq in float64 (readout atol {OUT_ATOL:g}; weight gradients, relative):")
        rates = res.agreement.get("hidden spike rates", [])
        lines.append(f"    (hidden spike rates {', '.join(f'{r:.3f}' for r in rates)})")
        for name, a in res.agreement.items():
            if not isinstance(a, dict):
                continue
            lines.append(f"    {name:26s} readout {a['readout_max_abs_diff']:.1e}  grads "
                         f"{a['weight_grad_max_rel_diff']:.1e} (tol {a['grad_rtol']:g})  "
                         f"{'OK' if a['ok'] else 'DISAGREE'}")
    return "\n".join(lines)


def _write_json(path: Path, payload: dict) -> None:
    from spikeseq._atomic import write_text

    write_text(path, json.dumps(payload, indent=2))


def run(args: argparse.Namespace) -> int:
    """Run the chosen settings, print tables, write ``--json``; 1 if rows disagree, 2 for an unknown setting."""
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    if args.quick and args.settings != DEFAULT_SETTINGS:
        raise ParameterError(f"--quick runs only the tiny 'quick' setting, so --settings {args.settings!r} would be "
                             "ignored; give one of the two")
    if not names and not args.quick:
        raise ParameterError(f"--settings {args.settings!r} names no setting; give a comma list of small, medium")
    names = ["quick"] if args.quick else names
    for n in names:
        if n not in SETTINGS:
            print(f"unknown setting {n!r}; known: small, medium", file=sys.stderr)
            return 2
    results = []
    for n in names:
        reps = args.reps or (2 if n == "quick" else 12 if n == "small" else 6)
        res = run_setting(n, reps, check=not args.no_check, with_reference=args.with_reference)
        print(format_setting(res), flush=True)
        print()
        results.append(res)
    if args.json:
        from spikeseq.provenance import bench_command, cpu_model, git_commit, git_dirty

        _write_json(args.json, {
            "command": bench_command("sim"),
            "commit": git_commit(), "dirty": git_dirty(),
            "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                        "torch": torch.__version__, "threads": torch.get_num_threads()},
            "targets": TARGETS, "settings": [asdict(r) for r in results]})
        print(f"wrote {args.json}")
    bad = [f"{r.setting}/{n}" for r in results for n, a in r.agreement.items() if isinstance(a, dict) and not a["ok"]]
    if bad:
        print(f"rows disagree numerically: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0
