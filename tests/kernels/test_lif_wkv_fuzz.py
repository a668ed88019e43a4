"""Randomised (fixed-seed) differential tests of the C++ kernels (``backend="cpu"``) against the torch reference:
the LIF-family scans, ``spike_linear`` and the WKV recurrence.

Modelled on :mod:`tests.kernels.test_egru_fuzz`: every configuration is drawn from its own seed with plain
``random.Random`` (the same on every platform), a ``*_seeds_reach_every_path`` test checks that the committed seeds
cover every loop / option, and outputs, final states and every gradient must match within rounding: 1e-10 (float64)
or a few 1e-5 (float32), relative to each tensor's largest magnitude (at least 1).

LIF family (``lif_scan``, ``cuba_lif_scan``, ``alif_scan``, ``li_scan``): every reset mode with and without
``detach_reset``, per-neuron / scalar-tensor / python-float parameters, several surrogates, an initial state or
none, T = 1, neuron counts that are and are not whole vectors (16 float32 / 8 float64), gradients on every input,
state field and tensor parameter (or none, under ``no_grad``), one or two threads (``torch.get_num_threads``
monkeypatched and the per-thread work threshold lowered so that two threads really run), non-contiguous inputs.
A spike may legitimately differ where ``v_pre`` lies within rounding of the threshold: :func:`lif_flip` reports the
distance of the first differing spike; the committed seeds have none.

``spike_linear``: ``mode="sparse"`` (event-driven C++) and ``"auto"`` against ``F.linear`` on spike inputs of
density 0 .. 1 (all-zero and all-one included), with/without bias, row- or column-major weights, empty batches,
gradients on z, weight and bias (or on the parameters only, or none), one or two threads.

WKV: sequence lengths 1..20, extreme decays (w = 0, tiny, huge), large keys, an initial state (including a very
negative running maximum) or none, gradients on every input and state field.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from spikeseq import kernels as K
from spikeseq import surrogate as sg
from spikeseq.functional import ALIFState, CubaLIFState, LIFState, LIState, WKVState
from spikeseq.kernels import spmm
from spikeseq.kernels.lif import cpu as lif_cpu
from spikeseq.kernels.wkv import cpu as wkv_cpu
from tests.kernels._fuzz import ATOL, first_difference

pytestmark = pytest.mark.native


def _close_nan(name: str, a: torch.Tensor | None, b: torch.Tensor | None, tol: float) -> str | None:
    return first_difference(name, a, b, tol, equal_nan=True)


def _strided(t: torch.Tensor) -> torch.Tensor:
    """The same values in a non-contiguous layout (first two axes swapped in memory)."""
    return t.transpose(0, 1).contiguous().transpose(0, 1)


# ---- LIF family ----------------------------------------------------------------------------------------------------

KINDS = ("lif_scan", "cuba_lif_scan", "alif_scan", "li_scan")
RESETS = ("subtract", "zero", "none")
SURROGATES = (sg.DEFAULT, sg.ATan(5.0), sg.Sigmoid(), sg.FastSigmoid(), sg.Triangle(0.5))
#: neurons per step (B x N): whole vectors of 16 / 8 and tails
SHAPES = ((1, 1), (1, 7), (2, 8), (3, 5), (1, 16), (2, 17), (4, 9), (5, 33), (1, 40), (3, 64), (7, 31))
#: parameter form: per-neuron tensor, 0-d tensor, python float, per-neuron with the decays at the edges 0 and 1
PFORMS = ("neuron", "neuron", "scalar", "float", "edge")
STATES = {"lif_scan": LIFState, "cuba_lif_scan": CubaLIFState, "alif_scan": ALIFState, "li_scan": LIState}


@dataclass(frozen=True)
class LifConfig:
    seed: int
    kind: str
    T: int
    B: int
    N: int
    dtype: torch.dtype
    reset: str
    detach: bool
    surrogate: int
    pform: str
    state: bool
    grad: bool
    threads: int
    noncontig: bool
    x_scale: float


def draw_lif(seed: int) -> LifConfig:
    r = random.Random(30_000 + seed)
    B, N = r.choice(SHAPES)
    return LifConfig(seed=seed, kind=KINDS[seed % 4], T=r.choice((1, 1, 2, 3, 7, 12, 25, 60)), B=B, N=N,
                     dtype=r.choice((torch.float32, torch.float64)), reset=r.choice(RESETS), detach=r.random() < 0.3,
                     surrogate=r.randrange(len(SURROGATES)), pform=r.choice(PFORMS), state=r.random() < 0.6,
                     grad=r.random() < 0.7, threads=r.choice((1, 2)), noncontig=r.random() < 0.4,
                     x_scale=r.choice((0.5, 1.5, 3.0)))


def build_lif(c: LifConfig):
    g = torch.Generator().manual_seed(c.seed)
    dt = c.dtype
    x = torch.randn(c.B, c.T, c.N, dtype=dt, generator=g) * c.x_scale + 0.3
    x = x.transpose(0, 1) if c.noncontig else x.transpose(0, 1).contiguous()

    def par(lo, hi):
        if c.pform == "neuron" or (c.pform == "edge" and lo > 0.4):
            return lo + (hi - lo) * torch.rand(c.N, dtype=dt, generator=g)
        if c.pform == "edge":  # decays (and alpha, adapt) at 0 or 1 exactly
            return (torch.rand(c.N, dtype=dt, generator=g) < 0.5).to(dt)
        val = lo + (hi - lo) * float(torch.rand((), generator=g))
        return torch.tensor(val, dtype=dt) if c.pform == "scalar" else val

    p: dict = {"beta": par(0.0, 1.0)}
    if c.kind != "li_scan":
        p["v_th"] = par(0.5, 1.5)
        p.update(reset=c.reset, detach_reset=c.detach, surrogate=SURROGATES[c.surrogate])
    if c.kind == "cuba_lif_scan":
        p["alpha"] = par(0.0, 1.0)
    if c.kind == "alif_scan":
        p["rho"] = par(0.0, 1.0)
        p["adapt"] = par(0.0, 1.0)
    st = None
    if c.state:
        n = {"lif_scan": 1, "li_scan": 1, "cuba_lif_scan": 2, "alif_scan": 2}[c.kind]
        fields = [torch.randn(c.B, c.N, dtype=dt, generator=g) for _ in range(n)]
        if c.kind == "alif_scan":
            fields[1] = fields[1].abs()
        if c.noncontig:
            fields = [f.t().contiguous().t() for f in fields]
        st = STATES[c.kind](*fields)
    return x, st, p


def _leaf(t: torch.Tensor, grad: bool) -> torch.Tensor:
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype).copy_(t).requires_grad_(grad)


def run_lif(c: LifConfig, backend: str, x, st, p):
    x = _leaf(x, c.grad)
    st = None if st is None else type(st)(*(_leaf(s, c.grad) for s in st))
    ps = {k: (_leaf(v, c.grad) if isinstance(v, torch.Tensor) else v) for k, v in p.items()}
    with torch.set_grad_enabled(c.grad):
        z, new = getattr(K, c.kind)(x, st, backend=backend, **ps)
    outs = [z, *new]
    grads: list = []
    if c.grad:
        gen = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs)
        leaves = [x, *([] if st is None else st), *(v for v in ps.values() if isinstance(v, torch.Tensor))]
        grads = list(torch.autograd.grad(loss, leaves, allow_unused=True))
    return [o.detach() for o in outs], grads


def lif_flip(c: LifConfig, x, st, p, z_ref, z_cpu) -> tuple[int, int, float] | None:
    """``(t, flat neuron, |v_pre - threshold|)`` of the first (in time) differing spike of a spiking kind, from the
    float64 reference's own trajectory, or ``None`` when the spikes agree."""
    if c.kind == "li_scan":
        return None
    diff = (z_ref != z_cpu).reshape(c.T, -1).nonzero()
    if diff.numel() == 0:
        return None
    t, n = (int(v) for v in diff[diff[:, 0].argmin()])
    up = {k: (v.double() if isinstance(v, torch.Tensor) else v) for k, v in p.items()}
    st64 = None if st is None else type(st)(*(s.double() for s in st))
    with torch.no_grad():
        x64 = x.double()
        if t > 0:
            _, st64 = getattr(K, c.kind)(x64[:t], st64, backend="torch", **up)
        zeros = torch.zeros(x.shape[1:], dtype=torch.float64)
        fields = list(st64) if st64 is not None else [zeros] * len(STATES[c.kind]._fields)
        beta = torch.as_tensor(up["beta"], dtype=torch.float64)
        th = torch.as_tensor(up["v_th"], dtype=torch.float64) + zeros
        if c.kind == "cuba_lif_scan":
            i = torch.as_tensor(up["alpha"], dtype=torch.float64) * fields[0] + x64[t]
            v_pre = beta * fields[1] + i
        else:
            v_pre = beta * fields[0] + x64[t]
        if c.kind == "alif_scan":
            th = th + torch.as_tensor(up["adapt"], dtype=torch.float64) * fields[1]
    return t, n, float((v_pre - th).reshape(-1)[n].abs())


def compare_lif(c: LifConfig, monkeypatch) -> str | None:
    x, st, p = build_lif(c)
    monkeypatch.setattr(torch, "get_num_threads", lambda: c.threads)
    monkeypatch.setattr(lif_cpu, "_ELEMENTS_PER_THREAD", 8)  # two threads really run from tiny scans on
    o_ref, g_ref = run_lif(c, "torch", x, st, p)
    o_cpu, g_cpu = run_lif(c, "cpu", x, st, p)
    flip = lif_flip(c, x, st, p, o_ref[0], o_cpu[0])
    if flip is not None:
        return f"spike flip at (t, n) = {flip[:2]}, |v_pre - theta| = {flip[2]:.3g}"
    names = ["z", *STATES[c.kind]._fields]
    for name, a, b in zip(names, o_ref, o_cpu, strict=True):
        why = _close_nan(name, a, b, ATOL[c.dtype])
        if why:
            return why
    for i, (a, b) in enumerate(zip(g_ref, g_cpu, strict=True)):
        why = _close_nan(f"grad{i}", a, b, ATOL[c.dtype])
        if why:
            return why
    return None


LIF_SEEDS = range(600)


@pytest.mark.parametrize("seed", LIF_SEEDS)
def test_lif_family_cpu_matches_reference(seed, monkeypatch):
    c = draw_lif(seed)
    assert compare_lif(c, monkeypatch) is None, c


def test_lif_seeds_reach_every_path():
    seen = set()
    for s in LIF_SEEDS:
        c = draw_lif(s)
        seen.add((c.kind, c.dtype, c.grad))
        if c.kind != "li_scan":
            seen.add((c.kind, c.reset, c.detach))
        if c.T == 1:
            seen.add(("T1", c.kind))
        seen |= {("state", c.kind, c.state), ("threads", c.threads, c.dtype), ("noncontig", c.noncontig),
                 ("pform", c.pform), ("surrogate", c.surrogate)}
        width = 16 if c.dtype == torch.float32 else 8
        seen.add(("whole-vectors" if (c.B * c.N) % width == 0 else "tail", c.dtype))
    for kind in KINDS:
        assert ("T1", kind) in seen
        for dt in (torch.float32, torch.float64):
            assert {(kind, dt, True), (kind, dt, False)} <= seen, kind
        assert {("state", kind, True), ("state", kind, False)} <= seen
        if kind != "li_scan":
            assert {(kind, r, d) for r in RESETS for d in (False, True)} <= seen, kind
    for dt in (torch.float32, torch.float64):
        assert {("threads", 1, dt), ("threads", 2, dt), ("whole-vectors", dt), ("tail", dt)} <= seen
    assert {("noncontig", True), ("noncontig", False)} <= seen
    assert {("pform", f) for f in PFORMS} <= seen
    assert {("surrogate", i) for i in range(len(SURROGATES))} <= seen


def test_lif_flip_diagnosis_reports_the_first_differing_spike():
    c = next(draw_lif(s) for s in LIF_SEEDS if draw_lif(s).kind == "alif_scan" and draw_lif(s).T > 3)
    x, st, p = build_lif(c)
    with torch.no_grad():
        z, _ = getattr(K, c.kind)(x, st, backend="torch", **p)
    assert lif_flip(c, x, st, p, z, z.clone()) is None
    z2 = z.clone()
    z2[2].reshape(-1)[0] = 1 - z2[2].reshape(-1)[0]
    t, n, dist = lif_flip(c, x, st, p, z, z2)
    assert (t, n) == (2, 0) and dist >= 0


# ---- spike_linear --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpikeConfig:
    seed: int
    lead: tuple[int, ...]
    K: int
    O: int
    density: float
    dtype: torch.dtype
    bias: bool
    mode: str
    threads: int
    noncontig: bool
    grad: str
    weight_t: bool


def draw_spike(seed: int) -> SpikeConfig:
    r = random.Random(40_000 + seed)
    lead = r.choice(((1,), (3,), (17,), (4, 5), (2, 9), (0, 3), (33,)))
    return SpikeConfig(seed=seed, lead=lead, K=r.choice((1, 5, 16, 17, 40, 64)), O=r.choice((1, 7, 16, 33, 48, 70)),
                       density=r.choice((0.0, 0.01, 0.05, 0.1, 0.3, 0.7, 1.0)),
                       dtype=r.choice((torch.float32, torch.float64)), bias=r.random() < 0.7,
                       mode=r.choice(("sparse", "sparse", "auto")), threads=r.choice((1, 2)),
                       noncontig=r.random() < 0.3, grad=r.choice(("all", "all", "weights", "off")),
                       weight_t=r.random() < 0.25)


def run_spike(c: SpikeConfig, fn):
    g = torch.Generator().manual_seed(c.seed)
    z = (torch.rand(*c.lead, c.K, generator=g) < c.density).to(c.dtype)
    if c.density == 1.0:
        assert bool((z == 1).all())
    if c.noncontig:
        z = z.transpose(-1, -2).contiguous().transpose(-1, -2) if len(c.lead) else z
    w = torch.randn(c.O, c.K, generator=g, dtype=c.dtype)
    if c.weight_t:  # the same values, column-major
        w = w.t().contiguous().t()
    b = torch.randn(c.O, generator=g, dtype=c.dtype) if c.bias else None
    gy = torch.randn(*c.lead, c.O, generator=g, dtype=c.dtype)
    z = z.clone().requires_grad_(c.grad == "all")
    w = _leaf(w, c.grad != "off")
    b = None if b is None else b.clone().requires_grad_(c.grad != "off")
    with torch.set_grad_enabled(c.grad != "off"):
        y = fn(z, w, b)
    leaves = [t for t in (z, w, b) if t is not None and t.requires_grad]
    grads = list(torch.autograd.grad((y * gy).sum(), leaves)) if leaves else []
    return [y.detach(), *grads]


def compare_spike(c: SpikeConfig, monkeypatch) -> str | None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: c.threads)
    monkeypatch.setattr(spmm, "ADDS_PER_THREAD", 4)
    ref = run_spike(c, F.linear)
    got = run_spike(c, lambda z, w, b: K.spike_linear(z, w, b, mode=c.mode))
    for i, (a, b) in enumerate(zip(ref, got, strict=True)):
        why = _close_nan("y" if i == 0 else f"grad{i}", a, b, ATOL[c.dtype])
        if why:
            return why
    return None


SPIKE_SEEDS = range(400)


@pytest.mark.parametrize("seed", SPIKE_SEEDS)
def test_spike_linear_matches_f_linear(seed, monkeypatch):
    c = draw_spike(seed)
    assert compare_spike(c, monkeypatch) is None, c


def test_spike_seeds_reach_every_path():
    seen = set()
    for s in SPIKE_SEEDS:
        c = draw_spike(s)
        seen |= {("density", c.density), ("dtype-grad", c.dtype, c.grad), ("mode", c.mode), ("bias", c.bias),
                 ("threads", c.threads), ("noncontig", c.noncontig), ("empty", 0 in c.lead),
                 ("weight_t", c.weight_t)}
    assert {("density", d) for d in (0.0, 0.01, 0.05, 0.1, 0.3, 0.7, 1.0)} <= seen
    assert {("dtype-grad", d, g) for d in (torch.float32, torch.float64) for g in ("all", "weights", "off")} <= seen
    assert {("mode", "sparse"), ("mode", "auto"), ("threads", 1), ("threads", 2), ("noncontig", True),
            ("empty", True), ("bias", False), ("weight_t", True)} <= seen


# ---- WKV -----------------------------------------------------------------------------------------------------------

#: decay regimes (w >= 0, w = exp(time_decay)): ordinary, none, tiny, huge, mixed per channel
DECAYS = ("exp-randn", "zero", "tiny", "huge", "mixed")


@dataclass(frozen=True)
class WKVConfig:
    seed: int
    T: int
    B: int
    C: int
    dtype: torch.dtype
    decay: str
    k_scale: float
    u_scale: float
    state: str
    grad: bool
    threads: int
    noncontig: bool


def draw_wkv(seed: int) -> WKVConfig:
    r = random.Random(50_000 + seed)
    return WKVConfig(seed=seed, T=1 + seed % 20, B=r.choice((1, 2, 3)), C=r.choice((1, 5, 8, 16, 17)),
                     dtype=r.choice((torch.float32, torch.float64)), decay=r.choice(DECAYS),
                     k_scale=r.choice((1.0, 1.0, 5.0, 30.0)), u_scale=r.choice((1.0, 10.0)),
                     state=r.choice(("none", "random", "random", "far")), grad=r.random() < 0.75,
                     threads=r.choice((1, 2)), noncontig=r.random() < 0.3)


def build_wkv(c: WKVConfig):
    g = torch.Generator().manual_seed(c.seed)
    dt = c.dtype
    k = torch.randn(c.B, c.T, c.C, generator=g, dtype=dt) * c.k_scale
    v = torch.randn(c.B, c.T, c.C, generator=g, dtype=dt)
    k, v = (t.transpose(0, 1) if c.noncontig else t.transpose(0, 1).contiguous() for t in (k, v))
    if c.decay == "exp-randn":
        w = torch.exp(torch.randn(c.C, generator=g, dtype=dt))
    elif c.decay == "zero":
        w = torch.zeros(c.C, dtype=dt)
    elif c.decay == "tiny":
        w = torch.full((c.C,), 1e-7, dtype=dt)
    elif c.decay == "huge":
        w = torch.full((c.C,), 200.0, dtype=dt)
    else:
        w = torch.tensor([(0.0, 1e-7, 0.5, 50.0, 1e3)[i % 5] for i in range(c.C)], dtype=dt)
    u = torch.randn(c.C, generator=g, dtype=dt) * c.u_scale
    st = None
    if c.state != "none":
        p = torch.randn(c.B, c.C, generator=g, dtype=dt) * (40.0 if c.state == "far" else 1.0)
        st = WKVState(torch.randn(c.B, c.C, generator=g, dtype=dt), torch.rand(c.B, c.C, generator=g, dtype=dt) + 0.5,
                      p)
    return k, v, w, u, st


def run_wkv(c: WKVConfig, backend: str, k, v, w, u, st, upcast: bool):
    cast = (lambda t: t.double()) if upcast else (lambda t: t)
    leaves = [_leaf(cast(t), c.grad) for t in (k, v, w, u)]
    sl = None if st is None else WKVState(*(_leaf(cast(s), c.grad) for s in st))
    with torch.set_grad_enabled(c.grad):
        y, new = K.wkv(leaves[0], leaves[1], sl, w=leaves[2], u=leaves[3], backend=backend)
    outs = [y, *new]
    grads: list = []
    if c.grad:
        gen = torch.Generator().manual_seed(1)
        loss = sum((o.double() * torch.randn(o.shape, generator=gen, dtype=torch.float64)).sum() for o in outs)
        grads = list(torch.autograd.grad(loss, leaves + ([] if sl is None else list(sl))))
    return [o.detach() for o in outs], grads


def compare_wkv(c: WKVConfig, monkeypatch) -> str | None:
    """float64: cpu vs the reference at 1e-10; float32: cpu vs the float64 reference (as ``_wkv_compare`` does: the
    float32 reference loop itself is off by ~1e-6) at 1e-5 of each tensor's largest magnitude."""
    k, v, w, u, st = build_wkv(c)
    monkeypatch.setattr(torch, "get_num_threads", lambda: c.threads)
    monkeypatch.setattr(wkv_cpu, "_ELEMENTS_PER_THREAD", 2)
    o_ref, g_ref = run_wkv(c, "torch", k, v, w, u, st, upcast=True)
    o_cpu, g_cpu = run_wkv(c, "cpu", k, v, w, u, st, upcast=False)
    tol = 1e-10 if c.dtype == torch.float64 else 1e-5
    names = ["y", "a", "b", "p"] + [f"grad_{n}" for n in ("k", "v", "w", "u", "a0", "b0", "p0")]
    ref, got = o_ref + g_ref, o_cpu + g_cpu
    assert len(ref) == len(got) == 4 + (4 + 3 * (st is not None)) * c.grad
    for name, a, b in zip(names[:len(ref)], ref, got, strict=True):
        if b.dtype != c.dtype:
            return f"{name}: dtype {b.dtype}"
        why = _close_nan(name, a, b.double(), tol)
        if why:
            return why
    return None


WKV_SEEDS = range(400)


@pytest.mark.parametrize("seed", WKV_SEEDS)
def test_wkv_cpu_matches_reference(seed, monkeypatch):
    c = draw_wkv(seed)
    assert compare_wkv(c, monkeypatch) is None, c


def test_wkv_seeds_reach_every_path():
    seen = set()
    for s in WKV_SEEDS:
        c = draw_wkv(s)
        seen |= {("T", c.T), ("decay", c.decay, c.dtype), ("state", c.state), ("grad", c.grad, c.dtype),
                 ("threads", c.threads), ("noncontig", c.noncontig), ("k", c.k_scale)}
    assert {("T", t) for t in range(1, 21)} <= seen
    assert {("decay", d, dt) for d in DECAYS for dt in (torch.float32, torch.float64)} <= seen
    assert {("state", s) for s in ("none", "random", "far")} <= seen
    assert {("grad", g, dt) for g in (True, False) for dt in (torch.float32, torch.float64)} <= seen
    assert {("threads", 1), ("threads", 2), ("noncontig", True), ("k", 30.0)} <= seen
