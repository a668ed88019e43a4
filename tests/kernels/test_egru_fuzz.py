"""Randomised (fixed-seed) differential test of the C++ EGRU (``backend="cpu"``) against the reference.

Every configuration is drawn from its own seed (:func:`draw`): sizes that are and are not whole blocks of 16 (float32)
or 8 (float64) batch rows, dense, pruned (compressed rows), all-zero and empty-row/column weights, low and high
activity, an initial state or none, a zoneout mask or none, a gradient wanted or not (the saved-gates loop and its
backward, or the fused inference loops ``egru_fwd_infer`` / ``egru_infer_blocks``), one or two threads and a
non-contiguous input. Outputs, final state and (with a gradient) every gradient must match the reference within
rounding.

An event can legitimately differ where ``c~`` lies within rounding of the threshold (the C++ gates use their own
``exp``): :func:`compare` reports such a flip with :func:`first_flip`. The committed seeds (:data:`SEEDS`) have none
(of the first 40,000 seeds only 23881 flips: a float32 ``c~`` equal to its threshold in the reference, where the
float64 reference agrees with the C++ loop). Also: the nn module on pruned weights in inference, and the native CSR
builders against a ``nonzero()`` construction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
import torch

from spikeseq import kernels as K
from spikeseq.functional.egru import EGRUState
from spikeseq.kernels.egru import cpu
from tests.kernels._fuzz import ATOL, first_difference

pytestmark = pytest.mark.native

BATCHES = (1, 2, 15, 16, 17, 33, 40)
HIDDEN = (1, 3, 16, 17, 40)
INPUTS = (1, 5, 16, 33)
#: weight densities; "rowcol": pruned (30 %) with an all-zero row and an all-zero column
DENSITIES = (1.0, 1.0, 0.3, 0.1, 0.0, "rowcol")
#: threshold ranges: high activity, medium, low activity (0.9 .. 0.99), and exactly 0 for every unit
THRESHOLDS = ((0.0, 0.1), (0.0, 0.4), (0.9, 0.99), (0.0, 0.0), "scalar")
#: "all": every input, state, weight and threshold requires a gradient (the saved-gates loop and its backward);
#: "weights": only the parameters; "off": under torch.no_grad; "no-leaf": grad mode on, nothing requires a gradient
#: (the inference loops, like "off")
GRAD_MODES = ("all", "all", "weights", "off", "off", "no-leaf")
# Outputs and state lie in [-1, 1] (plus the initial state's range) and are compared within ATOL; gradients (sums of
# up to T * B = 360 products, magnitudes up to ~100) within ATOL * max(1, max |reference gradient|) (tests/kernels/
# _fuzz.py).


@dataclass(frozen=True)
class Config:
    seed: int
    T: int
    B: int
    H: int
    I: int
    dtype: torch.dtype
    d_hh: float | str
    d_ih: float | str
    theta: tuple[float, float]
    state: bool
    zoneout: bool
    grad: str
    threads: int
    noncontig: bool
    x_density: float
    bias: bool
    eps: float
    weights_t: bool


def draw(seed: int) -> Config:
    """The configuration of one seed (plain ``random.Random``: the same on every platform and torch version)."""
    r = random.Random(seed)
    return Config(seed=seed, T=r.randint(1, 9), B=r.choice(BATCHES), H=r.choice(HIDDEN), I=r.choice(INPUTS),
                  dtype=r.choice((torch.float32, torch.float64)), d_hh=r.choice(DENSITIES), d_ih=r.choice(DENSITIES),
                  theta=r.choice(THRESHOLDS), state=r.random() < 0.6, zoneout=r.random() < 0.35,
                  grad=r.choice(GRAD_MODES), threads=r.choice((1, 2)), noncontig=r.random() < 0.4,
                  x_density=r.choice((1.0, 1.0, 1.0, 0.3, 0.02)), bias=r.random() < 0.85, eps=r.choice((1.0, 3.6)),
                  weights_t=r.random() < 0.2)


def _weight(rows: int, cols: int, density: float | str, scale: float, g: torch.Generator,
            dtype: torch.dtype) -> torch.Tensor:
    w = scale * torch.randn(rows, cols, dtype=dtype, generator=g)
    if density == "rowcol":
        w = w * (torch.rand(rows, cols, generator=g, dtype=dtype) < 0.3)
        w[rows // 2] = 0
        w[:, -1] = 0
    elif density < 1:
        w = w * (torch.rand(rows, cols, generator=g, dtype=dtype) < density)
    return w


def build(c: Config):
    """``x, state, params, mask`` of a configuration (``x`` a transposed view when ``noncontig``)."""
    g = torch.Generator().manual_seed(c.seed)
    dt = c.dtype
    x = torch.randn(c.B, c.T, c.I, dtype=dt, generator=g)
    if c.x_density < 1:
        x = x * (torch.rand(c.B, c.T, c.I, generator=g, dtype=dt) < c.x_density)
    x = x.transpose(0, 1) if c.noncontig else x.transpose(0, 1).contiguous()
    w_ih, w_hh = _weight(3 * c.H, c.I, c.d_ih, 0.8, g, dt), _weight(3 * c.H, c.H, c.d_hh, 0.8, g, dt)
    if c.weights_t:  # the same values with columns contiguous (strided reading of the weights)
        w_ih, w_hh = w_ih.t().contiguous().t(), w_hh.t().contiguous().t()
    if c.theta == "scalar":
        theta = torch.tensor(0.25, dtype=dt)
    else:
        lo, hi = c.theta
        theta = lo + (hi - lo) * torch.rand(c.H, dtype=dt, generator=g)
    p = dict(weight_ih=w_ih, weight_hh=w_hh,
             bias_ih=0.2 * torch.randn(3 * c.H, dtype=dt, generator=g) if c.bias else None,
             bias_hh=0.2 * torch.randn(3 * c.H, dtype=dt, generator=g) if c.bias else None,
             threshold=theta)
    st = None
    if c.state:
        y0 = torch.rand(c.B, c.H, dtype=dt, generator=g) * (torch.rand(c.B, c.H, generator=g, dtype=dt) < 0.4)
        st = EGRUState(0.5 * torch.randn(c.B, c.H, dtype=dt, generator=g), y0)
    mask = torch.rand(c.T, c.B, c.H, dtype=dt, generator=g) if c.zoneout else 0.0
    if c.noncontig:  # the state and the mask as strided views too
        st = None if st is None else EGRUState(*(_strided(s) for s in st))
        mask = _strided(mask) if c.zoneout else mask
    return x, st, p, mask


def _strided(t: torch.Tensor) -> torch.Tensor:
    """The same values in a non-contiguous layout (first two axes swapped in memory)."""
    return t.transpose(0, 1).contiguous().transpose(0, 1)


def reference_ct(x, st, p, mask) -> torch.Tensor:
    """``c~`` of every step of the reference's trajectory ``[T, B, H]`` (the reference's own operations)."""
    import torch.nn.functional as F

    h = p["weight_hh"].shape[1]
    c = torch.zeros(x.shape[1], h, dtype=x.dtype) if st is None else st.c
    y = torch.zeros_like(c) if st is None else st.y
    th = p["threshold"]
    out = []
    for t in range(x.shape[0]):
        a_r, a_z, a_n = F.linear(x[t], p["weight_ih"], p["bias_ih"]).chunk(3, -1)
        h_r, h_z, h_n = F.linear(y, p["weight_hh"], p["bias_hh"]).chunk(3, -1)
        r, z = torch.sigmoid(a_r + h_r), torch.sigmoid(a_z + h_z)
        ct = z * c + (1 - z) * torch.tanh(a_n + r * h_n)
        e = (ct - th > 0).to(ct.dtype)  # the reference's strict comparison
        y, cn = e * ct, ct - e * th
        c = cn if not isinstance(mask, torch.Tensor) else mask[t] * c + (1 - mask[t]) * cn
        out.append(ct)
    return torch.stack(out)


def first_flip(x, st, p, mask, e_ref: torch.Tensor, e_cpu: torch.Tensor, within: float = 1e-5):
    """``(t, b, h, |c~ - theta|)`` of the first (in time) entry where the events differ, or ``None``; the run is a
    legitimate near-threshold flip when that distance is below ``within``."""
    diff = (e_ref != e_cpu).nonzero()
    if diff.numel() == 0:
        return None
    t, b, h = (int(v) for v in diff[diff[:, 0].argmin()])
    with torch.no_grad():
        ct = reference_ct(x, st, p, mask)
    th = p["threshold"].expand(ct.shape[-1])
    return t, b, h, float((ct[t, b, h] - th[h]).abs())


def _clone(t: torch.Tensor) -> torch.Tensor:
    """A copy with the same strides (a column-major weight stays column-major)."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype).copy_(t)


def _scan(backend: str, c: Config, x, st, p, mask, gen_seed: int = 1):
    """Outputs + final state (and gradients of every leaf when ``c.grad``) of one backend."""
    x = _clone(x.detach())
    ps = {k: None if v is None else _clone(v.detach()) for k, v in p.items()}
    st = None if st is None else EGRUState(*(_clone(s.detach()) for s in st))
    leaves = [v for v in ps.values() if v is not None]
    if c.grad == "all":
        leaves = [x, *([] if st is None else st), *leaves]
    leaves = leaves if c.grad in ("all", "weights") else []
    for v in leaves:
        v.requires_grad_()
    with torch.set_grad_enabled(c.grad != "off"):
        out, new = K.egru_scan(x, st, backend=backend, zoneout=mask, eps=c.eps, **ps)
    outs = [*out, *new]
    grads = []
    if leaves:
        g = torch.Generator().manual_seed(gen_seed)
        loss = sum((o * torch.randn(o.shape, generator=g).to(o.dtype)).sum() for o in outs)
        grads = list(torch.autograd.grad(loss, leaves))
    return [o.detach() for o in outs], grads


def compare(c: Config, monkeypatch=None) -> str | None:
    """``None`` when the backends agree, else a description of the first difference (with the flip check)."""
    x, st, p, mask = build(c)
    real = torch.get_num_threads
    if monkeypatch is not None:
        monkeypatch.setattr(torch, "get_num_threads", lambda: c.threads)
    else:
        torch.get_num_threads = lambda: c.threads
    try:
        o_ref, g_ref = _scan("torch", c, x, st, p, mask)
        o_cpu, g_cpu = _scan("cpu", c, x, st, p, mask)
    finally:
        if monkeypatch is None:
            torch.get_num_threads = real
    names = ("y", "e", "c", "y_last")
    flip = first_flip(x, st, p, mask, o_ref[1], o_cpu[1])
    if flip is not None:
        return f"event flip at (t, b, h) = {flip[:3]}, |c~ - theta| = {flip[3]:.3g}"
    for name, a, b in zip(names + tuple(f"grad{i}" for i in range(len(g_ref))), o_ref + g_ref, o_cpu + g_cpu,
                          strict=True):
        why = first_difference(name, a, b, ATOL[c.dtype], scaled=name not in names)
        if why:
            return why
    return None


def path(c: Config) -> str:
    """Which loop of ``cpu.py`` / ``egru.cpp`` a configuration takes (the same conditions as ``cpu.egru_scan``)."""
    x, st, p, mask = build(c)
    rec = "csr" if cpu.density(p["weight_hh"]) < cpu.CSR_DENSITY else "dense"
    if c.grad in ("all", "weights"):
        return f"saved-gates/{rec}"
    if not cpu.fused_input(x, p["weight_ih"]):
        return f"unfused-inference/{rec}"
    if rec == "csr" and not c.zoneout:
        return "infer-blocks"
    return f"fused-inference/{rec}/{'mask' if c.zoneout else 'no-mask'}"


#: the configurations of the committed run (no near-threshold event flip occurs in any of them)
SEEDS = range(300)


@pytest.mark.parametrize("seed", SEEDS)
def test_cpu_matches_reference(seed, monkeypatch):
    c = draw(seed)
    assert compare(c, monkeypatch) is None, c


def test_the_seeds_take_every_path():
    # each loop of the C++ backend is compared on several configurations, in both dtypes
    seen: dict[str, set[torch.dtype]] = {}
    for s in SEEDS:
        c = draw(s)
        seen.setdefault(path(c), set()).add(c.dtype)
    want = {"saved-gates/csr", "saved-gates/dense", "unfused-inference/csr", "unfused-inference/dense",
            "infer-blocks", "fused-inference/csr/mask", "fused-inference/dense/mask", "fused-inference/dense/no-mask"}
    assert set(seen) == want
    assert all(v == {torch.float32, torch.float64} for v in seen.values()), seen


def test_first_flip_reports_the_first_differing_event_and_its_distance():
    c = draw(3)
    x, st, p, mask = build(c)
    with torch.no_grad():
        out, _ = K.egru_scan(x, st, backend="torch", zoneout=mask, **p)
        ct = reference_ct(x, st, p, mask)
    torch.testing.assert_close(out.y, out.e * ct, rtol=0, atol=ATOL[c.dtype])  # reference_ct follows the reference
    e = out.e.clone()
    assert first_flip(x, st, p, mask, out.e, e) is None
    e[-1, 0, 0] = 1 - e[-1, 0, 0]
    e[0, -1, -1] = 1 - e[0, -1, -1]
    t, b, h, dist = first_flip(x, st, p, mask, out.e, e)
    assert (t, b, h) == (0, x.shape[1] - 1, p["weight_hh"].shape[1] - 1)
    assert dist == pytest.approx(float((ct[0, -1, -1] - p["threshold"].expand(ct.shape[-1])[-1]).abs()))


@pytest.mark.parametrize("where", ["recurrent", "input"])
def test_a_nan_weight_that_only_meets_zeros_raises_like_the_reference(where):
    # the activity-sparse products skip the weights of a silent unit (or of an input that is always 0): without the
    # up-front weight check the reference raised (0 * NaN reaches the state) while the C++ backend returned finite
    # outputs or raised, depending on which product the batch's activity picked
    from spikeseq.errors import NonFiniteError

    g = torch.Generator().manual_seed(0)
    H, I, T, B = 16, 6, 4, 3
    dt = torch.float64
    x = torch.randn(T, B, I, dtype=dt, generator=g)
    w_hh = torch.randn(3 * H, H, dtype=dt, generator=g) * (torch.rand(3 * H, H, generator=g, dtype=dt) < 0.2)
    p = dict(weight_ih=torch.randn(3 * H, I, dtype=dt, generator=g), weight_hh=w_hh,
             threshold=torch.full((H,), 0.99, dtype=dt))
    if where == "recurrent":  # what unit 5 sends; it never fires
        p["weight_hh"][:, 5] = float("nan")
        p["threshold"][5] = 0.999
    else:  # input 2 is always 0 in a sparse input (the event-driven projection)
        x = x * (torch.rand(T, B, I, generator=g, dtype=dt) < 0.15)
        x[..., 2] = 0
        p["weight_ih"][:, 2] = float("nan")
    name = "weight_hh" if where == "recurrent" else "weight_ih"
    with pytest.raises(NonFiniteError, match=name):
        K.egru_scan(x, None, backend="torch", **p)
    with pytest.raises(NonFiniteError, match=name):
        K.egru_scan(x, None, backend="cpu", **p)


# ---- nn.EGRU: stacked layers in inference on pruned weights -------------------------------------------------------

@dataclass(frozen=True)
class StackConfig:
    seed: int
    layers: int
    batch_first: bool
    I: int
    H: int
    T: int
    B: int
    dtype: torch.dtype
    thr_mean: float
    state: bool
    threads: int
    zoneout: float


def draw_stack(seed: int) -> StackConfig:
    r = random.Random(10_000 + seed)
    return StackConfig(seed=seed, layers=r.choice((2, 3)), batch_first=r.random() < 0.5, I=r.choice(INPUTS),
                       H=r.choice(HIDDEN), T=r.randint(1, 9), B=r.choice(BATCHES),
                       dtype=r.choice((torch.float32, torch.float64)), thr_mean=r.choice((0.05, 0.3, 0.7)),
                       state=r.random() < 0.5, threads=r.choice((1, 2)), zoneout=r.choice((0.0, 0.0, 0.3)))


@pytest.mark.parametrize("seed", range(40))
def test_stacked_module_on_pruned_weights_matches_reference_in_inference(seed, monkeypatch):
    from spikeseq.nn.egru import EGRU

    c = draw_stack(seed)
    mods = [EGRU(c.I, c.H, num_layers=c.layers, batch_first=c.batch_first, dropout=0.3, thr_mean=c.thr_mean,
                 zoneout=c.zoneout, backend=b, seed=seed).to(c.dtype).eval() for b in ("torch", "cpu")]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for (name, a), (_, b) in zip(mods[0].named_parameters(), mods[1].named_parameters(), strict=True):
            if name.startswith("weight"):  # 90 % of every weight matrix pruned, the same entries in both
                keep = (torch.rand(a.shape, generator=g) >= 0.9).to(c.dtype)
                a.mul_(keep)
                b.mul_(keep)
    shape = (c.B, c.T, c.I) if c.batch_first else (c.T, c.B, c.I)
    x = torch.randn(shape, generator=g, dtype=c.dtype)
    st = None
    if c.state:
        lbh = (c.layers, c.B, c.H)
        st = EGRUState(0.5 * torch.randn(lbh, generator=g, dtype=c.dtype),
                       torch.rand(lbh, generator=g, dtype=c.dtype) * (torch.rand(lbh, generator=g) < 0.4))
    monkeypatch.setattr(torch, "get_num_threads", lambda: c.threads)
    with torch.no_grad():
        (ref, ref_st), (out, out_st) = (m(x, st) for m in mods)
    assert out.events.shape == (c.layers, *shape[:2], c.H)
    assert torch.equal(out.events, ref.events), c
    for a, b in ((out.y, ref.y), (out_st.c, ref_st.c), (out_st.y, ref_st.y)):
        torch.testing.assert_close(a, b, atol=ATOL[c.dtype], rtol=0)


# ---- the native CSR builders -------------------------------------------------------------------------------------

def csr_reference(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compressed rows from ``nonzero()``: NaN counts as a nonzero, -0.0 does not (it compares equal to 0)."""
    nz = w != 0
    rowptr = torch.zeros(w.shape[0] + 1, dtype=torch.int64)
    rowptr[1:] = nz.sum(1).cumsum(0)
    rows, cols = nz.nonzero().unbind(1)
    return rowptr, cols.to(torch.int32), w[rows, cols]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not a.is_floating_point():
        return torch.equal(a, b)
    return torch.equal(a.nan_to_num(7.0), b.nan_to_num(7.0)) and torch.equal(a.signbit(), b.signbit())


@pytest.mark.parametrize("seed", range(60))
def test_csr_builders_match_a_nonzero_construction(seed):
    r = random.Random(20_000 + seed)
    sizes = (1, 2, 3, 15, 16, 17, 31, 32, 33, 48, 100)  # whole vectors of 16 / 8 entries, and tails
    rows, cols = r.choice(sizes), r.choice(sizes)
    dt = r.choice((torch.float32, torch.float64))
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, dtype=dt, generator=g)
    w = w * (torch.rand(rows, cols, generator=g, dtype=dt) < r.choice((0.0, 0.05, 0.3, 0.9, 1.0)))
    for special in (float("nan"), -0.0, float("inf"), -float("inf"), torch.finfo(dt).tiny / 4):  # a subnormal
        if r.random() < 0.5:
            w.view(-1)[torch.randint(0, w.numel(), (max(1, w.numel() // 10),), generator=g)] = special
    if r.random() < 0.3:
        w[r.randrange(rows)] = 0
    if r.random() < 0.3:
        w[:, r.randrange(cols)] = -0.0
    layout = r.choice(("rows", "columns", "slice"))
    if layout == "columns":  # column-major: the strided reading
        v = w.t().contiguous().t()
    elif layout == "slice":  # contiguous rows further apart than their length
        v = torch.full((rows, cols + 5), 3.0, dtype=dt)[:, 2:2 + cols].copy_(w)
    else:
        v = w
    got = cpu._csr(v)
    assert all(_same(a, b) for a, b in zip(got, csr_reference(w), strict=True)), (rows, cols, dt, layout)
    assert all(_same(a, b) for a, b in zip(cpu._csr_transpose(*got, cols), csr_reference(w.t().contiguous()),
                                             strict=True)), (rows, cols, dt, layout)
    assert cpu.density(v) == int(torch.count_nonzero(w)) / w.numel()
