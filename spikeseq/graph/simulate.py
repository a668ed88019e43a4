"""Event-driven reference interpreter: ``simulate(graph, inputs, numerics="float" | "loihi" | "spinnaker2")``.

Each step visits the nodes in the graph's schedule (:meth:`~spikeseq.graph.ir.Graph.schedule`). A synapse node fed
with ``"spikes"`` gathers the weight rows of the inputs that spiked (work = events x fan-out); fed with ``"graded"``
events it also scales each row by the payload; only a ``"dense"`` input falls back to a dense product, counted
separately. Conv and pooling synapses are turned once into sparse [in, out] matrices and gathered the same way.

Numerics:

- ``"float"``: float64, the IR's discrete semantics (:mod:`.ir`) = spikeseq's torch semantics; timing ``"nir"``
  (feed-forward same step, an edge closing a cycle reads the previous step) unless ``latency`` says otherwise.
- ``"loihi"``: the graph is quantised (:func:`~spikeseq.graph.quantize.quantize`) and run bit-exactly in integers as
  lava's ``PyLifModelBitAcc`` + ``PyDenseModelBitAcc`` (targets.md §4.2): ``u`` wraps at 24 bits, ``v`` saturates at
  +-(2^23-1), strict threshold ``v > vth << 6``, reset to 0, one step of latency per synapse hop (``d + 1`` with a
  per-synapse delay ``d``). Inputs must be integers (0/1 spikes or integer graded payloads). A readout population
  (``LoihiCUBA.readout``) is the same compartment: it spikes and resets as netx's LIF does (its ``vth`` is the
  largest mantissa, so only a saturated membrane reaches it); its recorded value is ``v`` after that reset.
- ``"spinnaker2"``: quantised to int8 weights, float32 state, one step per hop (targets.md §4.4, best effort); a
  graded population sends ``v' / w_scale`` (float32) with each spike.

With ``align=True`` (default) the run is extended by the largest input-to-node latency and every recorded trace is
shifted back by its node's latency, so traces index the same time steps as the torch model. The result carries
per-node event counts (non-zero values sent), synaptic operations (event-driven accumulates), dense MACs and
neuron updates, for the profiler.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from spikeseq.dynamics import reset_membrane
from spikeseq.errors import DTypeError, ExportError, NonFiniteError, ParameterError, ShapeError
from spikeseq.graph import ir

__all__ = ["SimResult", "egru_cell_step", "egru_params", "hop_latencies", "hop_latency", "simulate", "synapse_matrix"]

MAX_UV = 2**23


@dataclass
class SimResult:
    """``outputs[name]`` and ``traces[node]`` are ``[T, B, *shape]`` arrays (spikes for spiking nodes, values for
    the others); counts are totals over run and batch."""

    outputs: dict[str, np.ndarray]
    traces: dict[str, np.ndarray]
    events: dict[str, int]
    synops: dict[str, int]
    dense_macs: dict[str, int]
    neuron_updates: dict[str, int]
    latency: dict[str, int]
    numerics: str
    steps: int
    graph: ir.Graph = field(repr=False)

    @property
    def output(self) -> np.ndarray:
        """The first (usually only) output, ``[T, B, *shape]``."""
        return next(iter(self.outputs.values()))

    def counts(self) -> dict[str, dict[str, int]]:
        """Per node: ``events``, ``synops``, ``dense_macs`` and ``neuron_updates``, totals over run and batch."""
        names = set(self.events) | set(self.synops) | set(self.dense_macs) | set(self.neuron_updates)
        return {n: {"events": self.events.get(n, 0), "synops": self.synops.get(n, 0),
                    "dense_macs": self.dense_macs.get(n, 0), "neuron_updates": self.neuron_updates.get(n, 0)}
                for n in sorted(names)}


# ------------------------------------------------------------------------------------------------ synapse matrices
def _conv_matrix(in_shape, weight, stride, padding, dilation, groups, out_shape) -> sp.csr_matrix:
    cin, h, w = in_shape
    cout, cin_g, kh, kw = weight.shape
    _, ho, wo = out_shape
    cout_g = cout // groups
    co, ci, ky, kx, oy, ox = np.meshgrid(np.arange(cout), np.arange(cin_g), np.arange(kh), np.arange(kw),
                                         np.arange(ho), np.arange(wo), indexing="ij")
    iy = oy * stride[0] - padding[0] + ky * dilation[0]
    ix = ox * stride[1] - padding[1] + kx * dilation[1]
    cin_abs = (co // cout_g) * cin_g + ci
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    vals = weight[co, ci, ky, kx][ok]
    rows = ((cin_abs * h + iy) * w + ix)[ok]
    cols = ((co * ho + oy) * wo + ox)[ok]
    keep = vals != 0
    m = sp.coo_matrix((vals[keep].astype(np.float64), (rows[keep], cols[keep])), shape=(cin * h * w, cout * ho * wo))
    return m.tocsr()


def synapse_matrix(node: ir.Node) -> np.ndarray | sp.csr_matrix:
    """The [in, out] matrix of a synapse node (dense for Affine/Linear/DelayAffine, sparse CSR otherwise)."""
    if isinstance(node, (ir.Affine, ir.Linear, ir.DelayAffine)):
        return np.ascontiguousarray(node.weight.astype(np.float64).T)
    if isinstance(node, ir.Conv2d):
        return _conv_matrix(node.input_shape, node.weight, node.stride, node.padding, node.dilation, node.groups,
                            node.out_shape)
    if isinstance(node, ir.Conv1d):
        c, n = node.input_shape
        co, ln = node.out_shape
        return _conv_matrix((c, 1, n), node.weight[:, :, None, :], (1, node.stride), (0, node.padding),
                            (1, node.dilation), node.groups, (co, 1, ln))
    if isinstance(node, ir.SumPool2d):
        c = node.input_shape[0]
        kh, kw = node.kernel_size
        val = 1.0 / (kh * kw) if node.divide else 1.0
        wk = np.zeros((c, 1, kh, kw))
        wk[:] = val
        return _conv_matrix(node.input_shape, wk, node.stride, node.padding, (1, 1), c, node.out_shape)
    raise ExportError(f"{node.kind} is not a synapse node")


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(node: ir.Node, integer: bool, name: str = "?"):
    """The [in, out] matrix and per-input fan-out of a synapse node, built once per node object (nodes are not
    mutated after construction; a changed weight needs a new node). Integer (Loihi) numerics refuse fractional
    weights instead of truncating them."""
    per_node = _COMPILED.setdefault(node, {})
    if integer not in per_node:
        m = synapse_matrix(node)
        if integer:
            vals = m.data if sp.issparse(m) else m
            if not np.array_equal(vals, np.round(vals)):
                raise ParameterError(f"synapse {name!r} ({node.kind}) has fractional weights, but Loihi numerics "
                                     "accumulate integer weights (mantissa << weight_exp); quantise the float "
                                     "graph with spikeseq.graph.quantize(graph, 'loihi') first")
            m = m.astype(np.int64)
        fanout = (np.diff(m.indptr) if sp.issparse(m) else np.count_nonzero(m, axis=1)).astype(np.int64)
        per_node[integer] = (m, fanout)
    return per_node[integer]


class _Syn:
    """A compiled synapse: gathers rows of W_T [in, out] for events."""

    def __init__(self, name: str, node: ir.Node, integer: bool, batch: int):
        self.name = name
        self.m, self.fanout = _compiled(node, integer, name)
        self.sparse = sp.issparse(self.m)
        m = self.m
        self.n_in, self.n_out = m.shape
        bias = getattr(node, "bias", None)
        if bias is not None and isinstance(node, (ir.Conv2d, ir.Conv1d)):
            bias = np.repeat(bias.astype(np.float64), math.prod(node.out_shape[1:]))
        self.bias = None if bias is None or not np.any(bias) else np.asarray(bias, np.float64)
        self.delay = node.delay.T.astype(np.int64) if isinstance(node, ir.DelayAffine) else None  # [in, out]
        if self.delay is not None:
            self.depth = int(self.delay.max(initial=0)) + 1
            self.ring = np.zeros((self.depth, batch, self.n_out), np.int64 if integer else np.float64)
        self.dtype = np.int64 if integer else np.float64

    def __call__(self, x: np.ndarray, payload: str, t: int, counts: dict) -> np.ndarray:
        b = x.shape[0]
        if payload == "dense" and self.delay is None:
            y = np.asarray(x @ self.m) if not self.sparse else np.asarray((self.m.T @ x.T).T)
            counts["dense_macs"][self.name] += b * (self.m.nnz if self.sparse else self.n_in * self.n_out)
        else:
            # mostly-nonzero data into per-synapse delays: every nonzero value is a graded event (the delays act
            # per event; a dense matrix product has none)
            bi, ji = np.nonzero(x)
            counts["synops"][self.name] += int(self.fanout[ji].sum())
            y = np.zeros((b, self.n_out), self.dtype)
            if self.delay is not None:
                self._delayed(x, bi, ji, payload, t)
                slot = t % self.depth
                y = self.ring[slot, :b].copy()
                self.ring[slot] = 0
            elif len(ji):
                if self.sparse:
                    vals = np.ones(len(ji), self.dtype) if payload == "spikes" else x[bi, ji]
                    ev = sp.csr_matrix((vals, (bi, ji)), shape=(b, self.n_in))
                    y = np.asarray((ev @ self.m).todense())
                else:
                    rows = self.m[ji]
                    if payload != "spikes":
                        rows = rows * x[bi, ji][:, None]
                    if b == 1:
                        y[0] = rows.sum(axis=0)
                    else:
                        starts = np.flatnonzero(np.r_[True, bi[1:] != bi[:-1]])
                        y[bi[starts]] = np.add.reduceat(rows, starts, axis=0)
        if self.bias is not None:
            y = y + self.bias
        return y

    def _delayed(self, x, bi, ji, payload, t):
        """Scatter each event's weight row into the ring slot of its per-synapse delay (work = events x fan-out)."""
        if not len(ji):
            return
        rows = self.m[ji]
        if payload != "spikes":
            rows = rows * x[bi, ji][:, None]
        slots = (t + self.delay[ji]) % self.depth
        np.add.at(self.ring, (slots, bi[:, None], np.arange(self.n_out)[None, :]), rows)


# ------------------------------------------------------------------------------------------------ neuron updates
def _dec(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Loihi decay: sign(x) * ((|x| * (4096 - d)) >> 12), int64 product, magnitude floored."""
    p = np.abs(x) * (4096 - d)
    return np.sign(x) * (p >> 12)


def _check_loihi_compartment(name: str, node: ir.LoihiCUBA) -> None:
    """Refuse a Loihi compartment whose integer parameters the chip cannot hold (targets.md §2.3, §4.2): ``i_decay``
    and ``v_decay`` in 0..4096 (12-bit du/dv; netx writes iDecay/vDecay up to 4096), ``vth`` in 0..131071 (17-bit
    mantissa), ``bias`` in -4096..4095 (13-bit signed mantissa), ``bias_exp`` in 0..7, all whole numbers. Outside
    them the bit-exact update is meaningless (a decay above 4096 flips the sign of ``u``; a fractional one was
    truncated), so the interpreter raises instead of simulating it."""
    from spikeseq.graph import targets

    lim = targets.limits("loihi")
    for field_name, lo, hi in (("i_decay", 0, lim.decay_max), ("v_decay", 0, lim.decay_max),
                               ("vth", 0, lim.vth_mant_max), ("bias", lim.bias_mant_min, lim.bias_mant_max)):
        a = np.asarray(getattr(node, field_name), np.float64)
        if a.size and (not np.array_equal(a, np.round(a)) or a.min() < lo or a.max() > hi):
            raise ParameterError(
                f"Loihi compartment {name!r}: {field_name} must hold whole numbers in {lo}..{hi}, got values in "
                f"[{a.min():g}, {a.max():g}]{'' if np.array_equal(a, np.round(a)) else ' (fractional)'}; quantise "
                "the float graph with spikeseq.graph.quantize(graph, 'loihi'), which keeps every parameter in range"
            )
    if isinstance(node.bias_exp, bool) or not isinstance(node.bias_exp, (int, np.integer)) \
            or not 0 <= node.bias_exp <= 7:
        raise ParameterError(f"Loihi compartment {name!r}: bias_exp must be an integer in 0..7, got {node.bias_exp!r}")


class _Cell:
    def __init__(self, name: str, node: ir.Node, g: ir.Graph, batch: int, numerics: str):
        self.name, self.node = name, node
        self.n = math.prod(node.out_shape)
        self.spiking = node.sends("spikes") in ("spikes", "graded") and node.role == "neuron"
        f = lambda a: np.asarray(a, np.float64).reshape(-1)  # noqa: E731
        self.state: dict[str, np.ndarray] = {}
        zeros = lambda dtype=np.float64: np.zeros((batch, self.n), dtype)  # noqa: E731
        if isinstance(node, ir.LIF):
            beta = f(g.decay(node.tau))
            self.p = dict(beta=beta, gain=(1 - beta) * f(node.r), leak=(1 - beta) * f(node.v_leak),
                          th=f(node.v_threshold), vr=f(node.v_reset))
            self.state["v"] = zeros()
        elif isinstance(node, ir.IF):
            self.p = dict(beta=np.ones(self.n), gain=g.dt * f(node.r), leak=np.zeros(self.n),
                          th=f(node.v_threshold), vr=f(node.v_reset))
            self.state["v"] = zeros()
        elif isinstance(node, ir.LI):
            beta = f(g.decay(node.tau))
            self.p = dict(beta=beta, gain=(1 - beta) * f(node.r), leak=(1 - beta) * f(node.v_leak))
            self.state["v"] = zeros()
        elif isinstance(node, ir.I):
            self.p = dict(gain=g.dt * f(node.r))
            self.state["v"] = zeros()
        elif isinstance(node, (ir.CubaLIF, ir.CubaLI)):
            alpha, beta = f(g.decay(node.tau_syn)), f(g.decay(node.tau_mem))
            self.p = dict(alpha=alpha, gin=(1 - alpha) * f(node.w_in), beta=beta, gain=(1 - beta) * f(node.r),
                          leak=(1 - beta) * f(node.v_leak))
            if isinstance(node, ir.CubaLIF):
                self.p.update(th=f(node.v_threshold), vr=f(node.v_reset))
            self.state["i"], self.state["v"] = zeros(), zeros()
        elif isinstance(node, ir.Threshold):
            self.p = dict(th=f(node.threshold))
        elif isinstance(node, ir.LMUMemory):
            self.p = dict(A_T=node.A.T.copy(), B_T=node.B.T.copy())
            self.state["m"] = zeros()
        elif isinstance(node, ir.LoihiCUBA):
            _check_loihi_compartment(name, node)
            i = lambda a: np.asarray(a, np.int64).reshape(-1)  # noqa: E731
            self.p = dict(du=i(node.i_decay), dv=i(node.v_decay), vth=i(node.vth) << 6,
                          bias=i(node.bias) << node.bias_exp, scale=node.scale * 64.0)
            self.state["u"], self.state["v"] = zeros(np.int64), zeros(np.int64)
        elif isinstance(node, ir.S2LIF):
            f32 = lambda a: np.asarray(a, np.float32).reshape(-1)  # noqa: E731
            self.p = dict(alpha=f32(node.alpha_decay), th=f32(node.threshold), off=f32(node.i_offset),
                          exc=None if node.exc_decay is None else f32(node.exc_decay), vr=f32(node.v_reset),
                          ws=np.float32(node.w_scale))
            self.state["i"], self.state["v"] = zeros(np.float32), zeros(np.float32)
        elif isinstance(node, ir.EGRUCell):
            self.p = egru_params(node)
            self.state["c"], self.state["y"] = zeros(), zeros()
        elif isinstance(node, ir.Delay):
            steps = np.rint(f(node.delay) / g.dt).astype(np.int64)
            self.p = dict(steps=steps)
            self.depth = int(steps.max(initial=0)) + 1
            self.state["ring"] = np.zeros((self.depth, batch, self.n))
        elif isinstance(node, ir.Scale):
            self.p = dict(s=f(node.scale))
        elif not isinstance(node, (ir.Flatten, ir.Output)):
            raise ExportError(f"the interpreter has no semantics for node {name!r} of kind {node.kind}")

    def _spike(self, v_pre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, node = self.p, self.node
        z = v_pre > p["th"]
        v = reset_membrane(v_pre, z.astype(v_pre.dtype), p["th"], getattr(node, "reset", "zero"), p["vr"])
        out = np.where(z, v_pre, 0.0) if getattr(node, "graded", False) else z.astype(np.float64)
        return out, v

    def __call__(self, x: np.ndarray, t: int) -> np.ndarray:
        node, p, s = self.node, getattr(self, "p", {}), self.state
        if isinstance(node, (ir.LIF, ir.IF)):
            out, s["v"] = self._spike(p["beta"] * s["v"] + p["gain"] * x + p["leak"])
            return out
        if isinstance(node, ir.LI):
            s["v"] = p["beta"] * s["v"] + p["gain"] * x + p["leak"]
            return s["v"]
        if isinstance(node, ir.I):
            s["v"] = s["v"] + p["gain"] * x
            return s["v"]
        if isinstance(node, (ir.CubaLIF, ir.CubaLI)):
            s["i"] = p["alpha"] * s["i"] + p["gin"] * x
            v_pre = p["beta"] * s["v"] + p["gain"] * s["i"] + p["leak"]
            if isinstance(node, ir.CubaLI):
                s["v"] = v_pre
                return v_pre
            out, s["v"] = self._spike(v_pre)
            return out
        if isinstance(node, ir.Threshold):
            return (x > p["th"]).astype(np.float64)
        if isinstance(node, ir.LMUMemory):
            s["m"] = s["m"] @ p["A_T"] + x @ p["B_T"]
            return s["m"]
        if isinstance(node, ir.LoihiCUBA):
            u = _dec(s["u"], p["du"]) + (x.astype(np.int64) << 6)
            u = np.where(u > MAX_UV, u - 2 * MAX_UV, u)
            u = np.where(u <= -MAX_UV, u + 2 * MAX_UV, u)
            v = np.clip(_dec(s["v"], p["dv"]) + u + p["bias"], -(MAX_UV - 1), MAX_UV - 1)
            s["u"] = u
            z = v > p["vth"]
            s["v"] = np.where(z, 0, v)
            if node.readout:   # same compartment as netx/Lava: spikes and resets; the value read is v after reset
                return s["v"]
            return z.astype(np.int64)
        if isinstance(node, ir.S2LIF):
            xi = x.astype(np.float32)
            if p["exc"] is not None:
                s["i"] = p["exc"] * s["i"] + xi
                xi = s["i"]
            v_pre = (p["alpha"] * s["v"] + xi + p["off"]).astype(np.float32)
            if node.readout:
                s["v"] = v_pre
                return v_pre
            z = (v_pre > p["th"]).astype(np.float32)
            s["v"] = np.asarray(reset_membrane(v_pre, z, p["th"], node.reset, p["vr"]), np.float32)
            if node.graded:   # the spike carries v' in float units (float32, or int8 fixed point)
                val = v_pre / p["ws"]
                if node.payload_frac_bits is not None:
                    val = np.clip(np.round(val * np.float32(2.0**node.payload_frac_bits)), -127, 127)
                return np.where(z > 0, val, np.float32(0)).astype(np.float32)
            return z
        if isinstance(node, ir.EGRUCell):   # synaptic events: input events and own previous events x stored fan-out
            self.synops = getattr(self, "synops", 0) + int((x != 0).sum(0) @ p["nnz_W"]
                                                           + (s["y"] != 0).sum(0) @ p["nnz_R"])
            out, s["c"], s["y"] = egru_cell_step(p, x, s["c"], s["y"])
            return out
        if isinstance(node, ir.Delay):
            ring = s["ring"]
            slots = (t + p["steps"]) % self.depth
            ring[slots, :, np.arange(self.n)] += x.T
            y = ring[t % self.depth].copy()
            ring[t % self.depth] = 0
            return y
        if isinstance(node, ir.Scale):
            return x * p["s"]
        return x  # Flatten, Output

    def value(self, out: np.ndarray) -> np.ndarray:
        """A recorded value in float units (fixed-point readouts are divided by their scale)."""
        if isinstance(self.node, ir.LoihiCUBA) and self.node.readout:
            return out / self.p["scale"]
        if isinstance(self.node, ir.S2LIF) and self.node.readout:
            return out / self.p["ws"]
        if isinstance(self.node, ir.EGRUCell) and self.node.payload_frac_bits is not None:
            return out / 2.0 ** self.node.payload_frac_bits
        return out


# ------------------------------------------------------------------------------------------------ EGRU PE program
def egru_params(node: ir.EGRUCell) -> dict:
    """The arrays one :class:`~spikeseq.graph.ir.EGRUCell` step reads: transposed weights ``[in, 3H]`` (float64;
    integers with per-gate column factors in fixed point), biases, threshold, payload format."""
    fixed = node.ih_scale is not None
    dt = np.float32 if fixed else np.float64
    h = node.hidden
    p = dict(W_T=np.ascontiguousarray(node.weight_ih.T, np.float64),
             R_T=np.ascontiguousarray(node.weight_hh.T, np.float64),
             b_i=node.bias_ih.astype(dt), b_h=node.bias_hh.astype(dt), th=node.threshold.astype(dt), dtype=dt,
             frac=node.payload_frac_bits, nnz_W=np.count_nonzero(node.weight_ih, axis=0).astype(np.int64),
             nnz_R=np.count_nonzero(node.weight_hh, axis=0).astype(np.int64))
    if fixed:
        p["ki"] = np.repeat(1.0 / node.ih_scale, h).astype(dt)
        p["kh"] = np.repeat(1.0 / node.hh_scale, h).astype(dt)
    return p


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-a))`` in float64, rounded once to ``a``'s dtype."""
    return (1.0 / (1.0 + np.exp(-a.astype(np.float64)))).astype(a.dtype)


def _tanh(a: np.ndarray) -> np.ndarray:
    """``tanh(a)`` in float64, rounded once to ``a``'s dtype."""
    return np.tanh(a.astype(np.float64)).astype(a.dtype)


def egru_cell_step(p: dict, x: np.ndarray, c: np.ndarray, y: np.ndarray):
    """One step of an EGRUCell population: ``(payload, c, payload)`` from the input events ``x`` [B, I], the state
    ``c`` and the previous payload ``y`` [B, H] (the recurrent input is the payload as received). The equations are
    :func:`spikeseq.functional.egru.egru_step`'s, in float64, or in fixed point: the products of the float32 events
    with the int8 weights summed in float64 and rounded once to float32 (exact for integer events; independent of
    summation order and batch size otherwise), then the gates in float32 with ``sigmoid`` / ``tanh`` evaluated in
    float64 and rounded once (a correctly rounded single-precision libm). Target mode
    (:mod:`spikeseq.graph.target_cells`) computes the same operations in torch."""
    dt = p["dtype"]
    h = p["th"].shape[0]
    gi = np.asarray(x, dt).astype(np.float64) @ p["W_T"]
    gh = np.asarray(y, dt).astype(np.float64) @ p["R_T"]
    gi, gh = gi.astype(dt), gh.astype(dt)
    if "ki" in p:
        gi, gh = gi * p["ki"], gh * p["kh"]
    gi, gh = gi + p["b_i"], gh + p["b_h"]
    r = _sigmoid(gi[:, :h] + gh[:, :h])
    z = _sigmoid(gi[:, h:2 * h] + gh[:, h:2 * h])
    n = _tanh(gi[:, 2 * h:] + r * gh[:, 2 * h:])
    ct = z * c + (1 - z) * n
    e = ct > p["th"]
    out = np.where(e, ct, dt(0)).astype(dt)
    c = (ct - e * p["th"]).astype(dt)
    if p["frac"] is not None:
        out = np.clip(np.round(out * dt(2.0 ** p["frac"])), -127, 127).astype(dt)
    return out, c, out


# ------------------------------------------------------------------------------------------------ driver
def _latencies(g: ir.Graph, order: list[str], delayed: set, latency: str) -> dict[str, int]:
    back = g.recurrent_edges()
    lat: dict[str, int] = {}
    for k in g._toposort([e for e in g.edges if e not in back]):
        preds = [a for a in g.predecessors(k) if (a, k) not in back]
        lat[k] = max((lat[a] + (1 if (latency == "hop" and g.nodes[a].role == "synapse") else 0) for a in preds),
                     default=0)
    return lat


def hop_latencies(graph: ir.Graph) -> dict[str, int]:
    """Per node of the flattened graph, its input-to-node latency in steps with one step per synapse hop
    (recurrent edges excluded): the shift by which ``simulate(..., align=True)`` aligns the node's trace."""
    g = graph.flat()
    order, delayed = g.schedule("hop")
    return _latencies(g, order, delayed, "hop")


def hop_latency(graph: ir.Graph) -> int:
    """The largest input-to-node latency in steps with one step per synapse hop (recurrent edges excluded): a
    hardware run of an input of ``T`` steps needs ``T + hop_latency`` steps for every node to produce its response
    to the last input step (the aligned interpreter runs exactly that many)."""
    g = graph.flat()
    order, delayed = g.schedule("hop")
    return max(_latencies(g, order, delayed, "hop").values(), default=0)


def data_payload(x: np.ndarray) -> str:
    """How the interpreter feeds an input array: 0/1 values as ``"spikes"``, mostly-zero values as ``"graded"``
    events, anything else ``"dense"`` (the declared Input payload is only a description; the data decide)."""
    if np.isin(x, (0, 1)).all():
        return "spikes"
    return "graded" if np.count_nonzero(x) < 0.5 * x.size else "dense"


def _as_inputs(g: ir.Graph, inputs) -> dict[str, np.ndarray]:
    names = g.inputs()
    if not isinstance(inputs, dict):
        if len(names) != 1:
            raise ParameterError(f"the graph has inputs {names}; pass a dict name -> [T, B, ...] array")
        inputs = {names[0]: inputs}
    out = {}
    for k, v in inputs.items():
        if k not in names:
            raise ParameterError(f"{k!r} is not an input of the graph (inputs: {names})")
        a = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        shape = g.nodes[k].out_shape
        if a.ndim != 2 + len(shape) or tuple(a.shape[2:]) != tuple(shape):
            raise ShapeError(f"input {k!r} must be [T, B, {', '.join(map(str, shape))}], got {tuple(a.shape)}")
        out[k] = a.reshape(a.shape[0], a.shape[1], -1)
    missing = set(names) - set(out)
    if missing:
        raise ParameterError(f"missing inputs {sorted(missing)}")
    return out


def simulate(graph: ir.Graph, inputs, *, numerics: str = "float", latency: str | None = None, align: bool = True,
             record: str | list[str] = "all", quantize_kwargs: dict | None = None) -> SimResult:
    """Run ``graph`` on ``inputs`` ``[T, B, *input_shape]`` (array, tensor or dict per input node).

    ``numerics``: ``"float"``, ``"loihi"`` or ``"spinnaker2"`` (see the module docstring). ``latency``: ``"nir"``
    (default for float) or ``"hop"`` (default, and forced, for the hardware numerics). ``record``: ``"all"``
    (every neuron and output node), ``"outputs"``, or a list of node names.
    """
    if numerics not in ("float", "loihi", "spinnaker2"):
        raise ParameterError(f"numerics must be 'float', 'loihi' or 'spinnaker2', got {numerics!r}")
    g = graph.flat()
    if numerics != "float":
        from spikeseq.graph.quantize import quantize

        g = quantize(g, numerics, **(quantize_kwargs or {}))
        if latency not in (None, "hop"):
            raise ParameterError(f"{numerics} numerics has one step of latency per synapse hop; latency must be 'hop'")
        latency = "hop"
    elif g.metadata.get("numerics") not in (None, "float"):
        raise ParameterError(f"graph is quantised for {g.metadata['numerics']!r}; simulate it with that numerics")
    latency = latency or "nir"
    g.check_shapes()
    g.check_finite()
    for k, a in (inputs.items() if isinstance(inputs, dict) else [("input", inputs)]):
        shape = tuple(np.shape(a))
        if len(shape) < 2 or shape[0] == 0:
            raise ShapeError(f"input {k!r} must be [T, B, ...] with T >= 1 steps, got shape {shape}")
    xs = _as_inputs(g, inputs)
    for k, a in xs.items():
        if np.issubdtype(np.asarray(a).dtype, np.floating) and not np.isfinite(a).all():
            raise NonFiniteError(f"input {k!r} holds NaN or Inf; the interpreter needs finite inputs")
    order, delayed = g.schedule(latency)
    payload = g.payloads(latency, inputs={k: data_payload(a) for k, a in xs.items()})
    lat = _latencies(g, order, delayed, latency) if align else {k: 0 for k in g.nodes}
    t_in = next(iter(xs.values())).shape[0]
    batch = next(iter(xs.values())).shape[1]
    extra = max(lat.values(), default=0) if align else 0
    steps = t_in + extra
    integer = numerics == "loihi"
    if integer:
        for k, a in xs.items():
            if not np.array_equal(a, np.round(a)):
                raise DTypeError(f"Loihi numerics needs integer inputs (0/1 spikes or integer graded values); input "
                                 f"{k!r} has fractional values")
    syn = {k: _Syn(k, n, integer, batch) for k, n in g.nodes.items() if n.role == "synapse"}
    cells = {k: _Cell(k, n, g, batch, numerics) for k, n in g.nodes.items()
             if n.role not in ("synapse",) and not isinstance(n, ir.Input)}
    if record == "all":
        rec = [k for k, n in g.nodes.items() if n.role == "neuron" or isinstance(n, ir.Output)]
    elif record == "outputs":
        rec = g.outputs()
    else:
        rec = list(record)
    traces = {k: np.zeros((t_in, batch, cells[k].n) if k in cells else (t_in, batch, syn[k].n_out)) for k in rec}
    counts = {"synops": {k: 0 for k in syn}, "dense_macs": {k: 0 for k in syn}}
    events = {k: 0 for k in g.nodes if g.nodes[k].role in ("neuron", "io")}
    updates = {k: 0 for k in cells if g.nodes[k].role == "neuron"}
    preds = {k: g.predecessors(k) for k in g.nodes}
    zero = {k: np.zeros((batch, math.prod(g.nodes[k].out_shape)), np.int64 if integer else np.float64)
            for k in g.nodes}
    prev = dict(zero)
    for k, sy in syn.items():  # a synapse read before its first step sees silence: its output is its bias
        if sy.bias is not None:
            prev[k] = np.broadcast_to(sy.bias, zero[k].shape).astype(zero[k].dtype)
    for t in range(steps):
        cur: dict[str, np.ndarray] = {}
        for k in order:
            node = g.nodes[k]
            if isinstance(node, ir.Input):
                y = xs[k][t] if t < t_in else np.zeros_like(xs[k][0])
                y = y.astype(np.int64) if integer else y.astype(np.float64)
            else:
                srcs = [(prev if (a, k) in delayed else cur)[a] for a in preds[k]]
                if k in syn:
                    y = None
                    for a, xa in zip(preds[k], srcs):
                        ya = syn[k](xa, payload[a], t, counts)
                        y = ya if y is None else y + ya
                    if y is None:
                        y = zero[k]
                else:
                    x = srcs[0] if len(srcs) == 1 else (sum(srcs) if srcs else zero[k])
                    y = cells[k](x, t)
                    if k in updates:
                        updates[k] += batch * cells[k].n
            cur[k] = y
            if k in events:
                events[k] += int(np.count_nonzero(y))
            if k in traces:
                tt = t - lat[k]
                if 0 <= tt < t_in:
                    src = preds[k][0] if isinstance(node, ir.Output) and len(preds[k]) == 1 else k
                    traces[k][tt] = cells[src].value(y) if src in cells else y
        prev = cur
    for k, c in cells.items():   # EGRUCell populations hold their synapses: their event-driven accumulates
        if hasattr(c, "synops"):
            counts["synops"][k] = c.synops
    shaped = {k: v.reshape(t_in, batch, *g.nodes[k].out_shape) for k, v in traces.items()}
    outputs = {k: shaped[k] for k in g.outputs() if k in shaped}
    return SimResult(outputs=outputs, traces=shaped, events=events, synops=counts["synops"],
                     dense_macs=counts["dense_macs"], neuron_updates=updates, latency=lat, numerics=numerics,
                     steps=steps, graph=g)
