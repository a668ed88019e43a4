"""Target mode: a differentiable torch forward of the *quantised* graph, spike for spike what the bit-exact
interpreter (:func:`spikeseq.graph.simulate`) computes on the exported graph.

    g, bindings = trace_bound(model, dt=dt)            # float IR + the torch tensors its synapse arrays came from
    r = target_forward(g, bindings, x, "loihi")         # r.output: [T, B, ...] readout in float units, with grads

What runs is ``quantize_with_factors(g, target)`` (:mod:`spikeseq.graph.quantize`, the one definition of the
quantisation rules), with the dynamics of :class:`~spikeseq.graph.ir.LoihiCUBA` / :class:`~spikeseq.graph.ir.S2LIF`
and one step of latency per synapse hop (targets.md §4.1, §4.2, §4.4):

- Loihi: integers carried exactly in float64 (every product and sum stays below 2**53); ``dec(x, d) =
  trunc(x * (4096 - d) / 4096)`` (the product is exact, so this is lava's ``sign(x) * ((|x| * (4096 - d)) >> 12)``),
  ``u`` wraps at 24 bits, ``v`` saturates at ``+-(2**23 - 1)``, spike iff ``v > vth << 6``, ``v = 0`` after a spike;
  a readout population's value is ``v / (64 * scale)``. Real-valued inputs are graded payloads
  ``quantize_input(x, k, bits)`` into synapses whose float weights were divided by ``2**k``.
- SpiNNaker2: float32 in the interpreter's operation order (``i = exc * i + a``; ``v' = alpha * v + i + i_offset``;
  spike iff ``v' > threshold``; the population's reset), so results are bitwise equal; synaptic sums are exact
  integers (or float64 for real-valued inputs, as the interpreter) before the cast to float32.

Gradients: every quantised array (weights, biases) is the integer/float32 array ``quantize`` produced in the
forward pass and ``factor * d(loss)/d(array)`` backward (straight-through estimator, the factors of
:class:`~spikeseq.graph.quantize.QuantFactors`) into the bound torch tensors, hence into the model's parameters;
``dec``, the 24-bit wrap and the saturation pass gradients straight through (``dec`` with its factor
``(4096 - d) / 4096``); a spike ``v > th`` has the surrogate derivative ``surrogate.grad((v - th) / unit) / unit``
where ``unit`` is the population's float-to-state factor (``64 * scale`` on Loihi, ``w_scale`` on SpiNNaker2), so
gradients have the float model's scale. Each population differentiates its spikes as the module it came from does
in float training (:func:`~spikeseq.graph.trace.bind_spiking`): that module's surrogate, and its reset with the
spike's gradient unless the module has ``detach_reset`` (``dv/dv' = 1 - th * sg`` for a subtractive reset,
``(1 - z) - (v' - v_reset) * sg`` for a reset to ``v_reset``, both unit-free; detached: ``1`` and ``1 - z``), so
the gradient that target-mode epochs follow is the one the float epochs followed. Populations with no recorded
module (a lowering that builds its neuron nodes itself) use ``surrogate`` and the detached reset. Decays and
thresholds are constants of the quantised graph (not trained in target mode).

Speed: a population outside any cycle gets its synaptic input for the whole sequence at once (one matmul over
``[steps * B, n]``, shifted by the hop latency); only the populations of a strongly connected component (recurrent
edges) are stepped together, as one population whose block weight matrix is multiplied only where it holds
synapses (:class:`_RecurrentScanFn`). Integer synaptic sums below ``2**24`` run as float32 matmuls (exact there),
and binary spikes leave a recurrent component in float32 (exact). The neuron update is one autograd function per
sequence (:class:`_ScanFn`, :class:`_RecurrentScanFn`) or per step (:class:`_StepFn`) with the backward written
out (:meth:`_LoihiPop.back`, :meth:`_S2Pop.back`); the Loihi sequence backward runs in float32
(:meth:`_LoihiPop.for_grad`). Tests compare it with autograd through the same forward.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from spikeseq import surrogate as sg
from spikeseq.errors import DTypeError, ExportError, ParameterError, ShapeError
from spikeseq.graph import ir
from spikeseq.graph.quantize import (
    incoming_synapses,
    input_synapses,
    quantize_input,
    quantize_with_factors,
    scale_input_synapses,
)
from spikeseq.graph.simulate import hop_latencies
from spikeseq.graph.ste import straight_through
from spikeseq.graph.target_cells import egru_graph_forward
from spikeseq.graph.trace import Bindings

__all__ = ["TARGETS", "TargetResult", "straight_through", "target_forward"]

#: the targets target mode can train for
TARGETS: tuple[str, ...] = ("loihi", "spinnaker2")
MAX_UV = 2.0**23
EXACT_F32 = 2.0**24


@dataclass
class TargetResult:
    """``output``: the graph output ``[T, B, *shape]`` aligned to the input steps (float units: a readout's value is
    its state divided by its scale); ``traces``: per neuron node its aligned spikes (spiking) or values (readout),
    when recorded; ``graph``: the quantised graph that ran (what the exporter writes); ``steps``: steps run
    (input steps plus the largest hop latency)."""

    output: torch.Tensor
    traces: dict[str, torch.Tensor]
    graph: ir.Graph
    steps: int


# --------------------------------------------------------------------------------------------- compiled pieces
def _source(g: ir.Graph, name: str) -> str:
    """The neuron or input node whose output reaches synapse ``name`` (through Flatten nodes)."""
    preds = g.predecessors(name)
    if len(preds) != 1:
        raise ExportError(f"target mode: synapse {name!r} has {len(preds)} inputs {preds}; it needs exactly one")
    return g.behind_flatten(preds[0])


class _Synapse:
    """A quantised synapse with its straight-through weight: ``apply(x [..., n_in]) -> [..., n_out]``."""

    def __init__(self, name: str, node: ir.Node, factor: np.ndarray, bound: dict | None, in_div: float,
                 exact_f32: bool):
        self.name, self.node = name, node
        self.exact32 = exact_f32       # integer sums below 2**24: the whole synapse in float32 (exact)
        npd, dtype = (np.float32, torch.float32) if exact_f32 else (np.float64, torch.float64)
        w_int = torch.from_numpy(np.asarray(node.weight, npd))
        proxy = None
        if bound is not None and bound.get("weight") is not None:
            bw = bound["weight"]
            if tuple(bw.shape) != tuple(w_int.shape):
                raise ShapeError(f"target mode: binding of {name!r} has shape {tuple(bw.shape)}, the node's weight "
                                 f"{tuple(w_int.shape)}")
            proxy = bw.to(dtype) * torch.from_numpy(np.asarray(factor, npd))
            if in_div != 1.0:
                proxy = proxy / in_div
        self.w = straight_through(w_int, proxy)
        self.delay = torch.from_numpy(node.delay.astype(np.int64)) if isinstance(node, ir.DelayAffine) else None
        self.n_in = math.prod(node.in_shape)
        self.n_out = math.prod(node.out_shape)

    def _mm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        node = self.node
        if isinstance(node, ir.Conv2d):
            lead = x.shape[:-1]
            y = F.conv2d(x.reshape(-1, *node.input_shape), w, None, node.stride, node.padding, node.dilation,
                         node.groups)
            return y.reshape(*lead, self.n_out)
        if isinstance(node, ir.Conv1d):
            lead = x.shape[:-1]
            y = F.conv1d(x.reshape(-1, *node.input_shape), w, None, node.stride, node.padding, node.dilation,
                         node.groups)
            return y.reshape(*lead, self.n_out)
        return x @ w.t()

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Synaptic sums of ``x`` (no delays: :meth:`apply_seq` handles those), float64."""
        if self.exact32:
            return self._mm(x.float(), self.w).double()
        return self._mm(x.double(), self.w)

    def weight_for(self, d: int) -> torch.Tensor:
        """The weights of the synapses with delay ``d`` (others zero)."""
        return self.w * (self.delay == d).to(self.w.dtype)

    def apply_seq(self, x: torch.Tensor) -> torch.Tensor:
        """``y[t] = sum_j W_ij x_j[t - D_ij]`` over a whole sequence ``x [S, B, n_in]``."""
        if self.delay is None:
            return self.apply(x)
        y = x.new_zeros(x.shape[0], x.shape[1], self.n_out, dtype=torch.float64)
        for d in torch.unique(self.delay).tolist():
            if d >= x.shape[0]:
                continue
            w = self.weight_for(int(d))
            y[d:] = y[d:] + (x[: x.shape[0] - d].to(w.dtype) @ w.t()).double()
        return y


def _exact_f32(node: ir.Node, xmax: float) -> bool:
    """Whether every partial synaptic sum is an integer below ``2**24`` (float32 then sums exactly)."""
    w = np.asarray(node.weight, np.float64)
    if not np.array_equal(w, np.round(w)):
        return False
    rows = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0.0)
    if isinstance(node, ir.Conv2d | ir.Conv1d):
        rows = np.abs(w).sum()
    return bool(rows * xmax < EXACT_F32)


class _Population:
    """A quantised population: parameters, the one-step update (:meth:`fwd`, no autograd) and its hand-written
    backward (:meth:`back`), run over a whole sequence (:class:`_ScanFn`), a recurrent component
    (:class:`_RecurrentScanFn`) or step by step (:class:`_StepFn`, components of mixed kinds).

    ``prep`` maps synaptic sums to what :meth:`fwd` adds (Loihi: ``64 * a``; SpiNNaker2: the float32 cast), so it
    runs once per sequence; :meth:`plan` drops the 24-bit wrap and the saturation when the input's size proves they
    cannot happen. :meth:`fwd` returns the spike mask; the surrogate derivative ``sg`` of every step is computed
    over the whole sequence before the backward loop."""

    readout: bool
    unit: float | torch.Tensor
    surrogate: sg.Surrogate
    detach_reset: bool = True
    th: torch.Tensor
    bias: torch.Tensor
    dtype: torch.dtype

    def resets_with_gradient(self) -> bool:
        """Whether the reset carries the spike's gradient (the module trained without ``detach_reset``); :meth:`back`
        then gets each step's ``v'`` and plain surrogate derivative."""
        return not (self.readout or self.detach_reset)

    #: the dtype :meth:`sg` computes in
    sg_dtype: torch.dtype = torch.float64

    def sg(self, v_pre: torch.Tensor) -> torch.Tensor:
        """Surrogate derivative of the spike ``v_pre > th`` with respect to ``v_pre`` (float units)."""
        x = (v_pre - self.th).to(self.sg_dtype).div_(self.unit)
        return self.surrogate.grad_(x).div_(self.unit).to(v_pre.dtype)

    def for_grad(self) -> _Population:
        """The population whose :meth:`back` runs the backward pass (:class:`_LoihiPop`: a float32 copy)."""
        return self

    def plan(self, amax: float) -> None:
        """Prepare for inputs (after :meth:`prep`) of magnitude at most ``amax`` (``inf``: unknown)."""

    graded: bool = False

    def payload(self, zb: torch.Tensor, v_pre: torch.Tensor) -> torch.Tensor:
        """A graded population's events: ``v'`` in float units where it spikes, else 0."""
        raise NotImplementedError

    def sent(self, zb: torch.Tensor, v: torch.Tensor, v_pre: torch.Tensor) -> torch.Tensor:
        """What the population sends: its membrane (readout), its graded events or its spikes."""
        if self.readout:
            return v
        return self.payload(zb, v_pre) if self.graded else zb.to(self.dtype)

    def step(self, a: torch.Tensor, st: tuple[torch.Tensor, torch.Tensor]):
        """One step with autograd: ``(sent, new state)``."""
        self.plan(math.inf)
        out, s1, s2 = _StepFn.apply(a, st[0], st[1], self.bias, self)
        return out, (s1, s2)

    def scan(self, a: torch.Tensor) -> torch.Tensor:
        """A whole sequence ``a [S, B, n]`` from the zero state, with autograd: what the population sends."""
        return _ScanFn.apply(a, self.bias, self)

    def value(self, out: torch.Tensor) -> torch.Tensor:
        """A recorded value in float units."""
        return out / self.unit if self.readout else out


class _LoihiPop(_Population):
    """A :class:`~spikeseq.graph.ir.LoihiCUBA` population in exact float64 integers (module docstring)."""

    def __init__(self, node: ir.LoihiCUBA, bias_proxy: torch.Tensor | None, surrogate: sg.Surrogate,
                 detach_reset: bool = True):
        f = lambda a: torch.from_numpy(np.asarray(a, np.float64).reshape(-1))  # noqa: E731
        self.node = node
        self.cu = (4096.0 - f(node.i_decay)) / 4096.0
        self.cv = (4096.0 - f(node.v_decay)) / 4096.0
        self.th = f(node.vth) * 64.0
        b = f(node.bias) * float(2**node.bias_exp)
        self.bias = straight_through(b, None if bias_proxy is None else bias_proxy * float(2**node.bias_exp))
        self.unit = 64.0 * float(node.scale)
        self.surrogate = surrogate
        self.detach_reset = detach_reset
        self.readout = bool(node.readout)
        self.dtype = torch.float64
        self.wrap = self.sat = True

    def init(self, batch: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero state ``(u, v)``."""
        z = torch.zeros(batch, n, dtype=torch.float64)
        return z, z

    @property
    def no_current(self) -> bool:
        """``iDecay = 4096``: ``u`` is this step's input only."""
        nc = getattr(self, "_no_current", None)
        if nc is None:
            nc = self._no_current = bool((self.cu == 0).all())
        return nc

    def prep(self, a: torch.Tensor) -> torch.Tensor:
        """``a << 6``."""
        return a * 64.0

    def plan(self, amax: float) -> None:
        """The wrap of ``u`` is needed only if ``|u| <= amax / (1 - max cu)`` can pass ``2**23``, the saturation of
        ``v`` only if ``(max |u| + max |bias|) / (1 - max cv)`` can reach ``2**23 - 1``."""
        self._no_current = None
        cu, cv = float(self.cu.max()), float(self.cv.max())
        umax = amax if cu == 0 else (amax / (1 - cu) if cu < 1 else math.inf)
        self.wrap = not umax < MAX_UV
        vmax = (umax + float(self.bias.detach().abs().max())) / (1 - cv) if cv < 1 else math.inf
        self.sat = not vmax < MAX_UV - 1

    def fwd(self, a, u, v, bias):
        """One step on prepared input ``a = 64 * sums``: ``(spike mask, u, v, v')``; ``dec`` is ``trunc`` of an
        exact product, ``u`` wraps at 24 bits, ``v'`` saturates, spike iff ``v' > vth << 6``, reset to 0."""
        u = a if self.no_current else torch.trunc(u * self.cu).add_(a)
        if self.wrap:
            u = u - (2 * MAX_UV) * (u > MAX_UV).to(u.dtype) + (2 * MAX_UV) * (u <= -MAX_UV).to(u.dtype)
        v_pre = torch.trunc(v * self.cv).add_(u).add_(bias)
        if self.sat:
            v_pre.clamp_(-(MAX_UV - 1), MAX_UV - 1)
        zb = v_pre > self.th
        return zb, u, v_pre.masked_fill(zb, 0.0), v_pre

    def back(self, g_sent, sg_t, gu, gv, zb, v_t=None, r_t=None):
        """Gradients ``(d u, d u_prev, d v_prev, d bias)`` of one step from those of (sent, u, v), ``sg_t`` the
        surrogate derivative of its spikes: straight through ``trunc`` (factor ``(4096 - d) / 4096``), the wrap and
        the saturation, the reset to 0 (``dv/dv' = 1 - z``, and ``- v' * sg`` with the step's ``v_t`` and plain
        surrogate derivative ``r_t`` when the reset carries the spike's gradient) (``d a = 64 d u``)."""
        if self.readout:
            gvp = (gv + g_sent).masked_fill_(zb, 0.0)
        else:
            gvp = gv.masked_fill(zb, 0.0)
            if r_t is not None:
                gvp.addcmul_(gv * v_t, r_t, value=-1.0)
            gvp.addcmul_(g_sent, sg_t)
        if self.no_current:
            return gvp, None, gvp * self.cv, gvp
        gut = gvp + gu
        return gut, gut * self.cu, gvp * self.cv, gvp

    def grad_input(self, gu: torch.Tensor) -> torch.Tensor:
        """``d a`` from ``d u``."""
        return gu * 64.0

    def for_grad(self) -> _LoihiPop:
        """This population with its constants in float32 for the backward pass: gradients need no exact integers,
        and the forward's ``v'`` (integers below ``2**23``) are exact in float32, so the backward moves half the
        bytes of float64."""
        g = copy.copy(self)
        g.cu, g.cv, g.th, g.bias = self.cu.float(), self.cv.float(), self.th.float(), self.bias.detach().float()
        g.unit = self.unit.float() if isinstance(self.unit, torch.Tensor) else self.unit
        g.dtype = g.sg_dtype = torch.float32
        return g


class _S2Pop(_Population):
    """A :class:`~spikeseq.graph.ir.S2LIF` population in float32, the interpreter's operation order."""

    def __init__(self, node: ir.S2LIF, bias_proxy: torch.Tensor | None, surrogate: sg.Surrogate,
                 detach_reset: bool = True):
        f = lambda a: torch.from_numpy(np.asarray(a, np.float32).reshape(-1))  # noqa: E731
        self.node = node
        self.alpha, self.th, self.vr = f(node.alpha_decay), f(node.threshold), f(node.v_reset)
        self.exc = None if node.exc_decay is None else f(node.exc_decay)
        self.bias = straight_through(f(node.i_offset), None if bias_proxy is None else bias_proxy.float())
        self.unit = float(node.w_scale)
        self.surrogate = surrogate
        self.detach_reset = detach_reset
        self.readout = bool(node.readout)
        self.graded = bool(node.graded)
        self.ws32 = torch.tensor(np.float32(node.w_scale))
        f = node.payload_frac_bits
        self.payload_scale = None if f is None else torch.tensor(np.float32(2.0**f))
        self.reset = node.reset
        self.dtype = torch.float32

    def init(self, batch: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero state ``(i, v)``."""
        z = torch.zeros(batch, n, dtype=torch.float32)
        return z, z

    def prep(self, a: torch.Tensor) -> torch.Tensor:
        """The float64 synaptic sums cast to float32, as the interpreter."""
        return a.float()

    def payload(self, zb: torch.Tensor, v_pre: torch.Tensor) -> torch.Tensor:
        """``v' / w_scale`` (float32 division, as the interpreter; int8 fixed point with ``payload_frac_bits``)
        where it spikes, else 0."""
        val = v_pre / self.ws32
        if self.payload_scale is not None:
            val = torch.round(val * self.payload_scale).clamp_(-127, 127)
        return torch.where(zb, val, torch.zeros((), dtype=torch.float32))

    def fwd(self, xi, i, v, off):
        """One step on float32 input ``xi``: ``(spike mask, i, v, v')`` (``i = exc * i + xi``; ``v' = alpha * v +
        i + i_offset``; spike iff ``v' > threshold``; the population's reset with the values of
        :func:`spikeseq.dynamics.reset_membrane`)."""
        if self.exc is not None:
            i = self.exc * i + xi
            xi = i
        v_pre = self.alpha * v + xi + off
        if self.readout:
            return None, i, v_pre, v_pre
        zb = v_pre > self.th
        if self.reset == "zero":
            v = torch.where(zb, self.vr, v_pre)
        elif self.reset == "subtract":
            v = torch.where(zb, v_pre - self.th, v_pre)
        else:
            v = v_pre
        return zb, i, v, v_pre

    def resets_with_gradient(self) -> bool:
        """As the base class; a population without reset has none to differentiate."""
        return super().resets_with_gradient() and self.reset in ("zero", "subtract")

    def back(self, g_sent, sg_t, gi, gv, zb, v_t=None, r_t=None):
        """Gradients ``(d i, d i_prev, d v_prev, d i_offset)`` of one step (surrogate spike; the reset's ``dv/dv'``:
        subtractive ``1``, to ``v_reset`` ``1 - z``, and ``- th * sg`` / ``- (v' - v_reset) * sg`` with the step's
        ``v_t`` and plain surrogate derivative ``r_t`` when the reset carries the spike's gradient)."""
        if self.readout:
            gvp = gv + g_sent
        else:
            if self.reset == "zero":
                gvp = gv.masked_fill(zb, 0.0)
                if r_t is not None:
                    gvp.addcmul_(gv * (v_t - self.vr), r_t, value=-1.0)
            else:
                gvp = gv if r_t is None else gv.addcmul(gv * self.th, r_t, value=-1.0)
            gvp = gvp + g_sent * sg_t
        if self.exc is not None:
            git = gi + gvp
            return git, git * self.exc, gvp * self.alpha, gvp
        return gvp, None, gvp * self.alpha, gvp

    def grad_input(self, gi: torch.Tensor) -> torch.Tensor:
        """``d a`` (float64 sums) from ``d xi``."""
        return gi.double()


def _spike_grads(pop: _Population, v_pre: torch.Tensor, zb: torch.Tensor | None) -> torch.Tensor | None:
    """d(sent)/d(v'): the surrogate derivative of a spike; for graded events ``z * v' / w`` also the gate's value
    (``z / w + v' / w * surrogate``)."""
    if pop.readout:
        return None
    if pop.graded:   # fixed-point payloads: the rounding passes straight through, the 2**f factor does not
        scale = 1.0 if getattr(pop, "payload_scale", None) is None else float(pop.payload_scale)
        return (zb.to(v_pre.dtype) / pop.unit + v_pre / pop.unit * pop.sg(v_pre)) * scale
    return pop.sg(v_pre)


def _reset_sg(pop: _Population, v_pre: torch.Tensor, zb: torch.Tensor | None,
              spike_grads: torch.Tensor | None) -> torch.Tensor | None:
    """The plain surrogate derivative of the spikes where the reset carries it (:meth:`_Population.
    resets_with_gradient`), else ``None``: ``spike_grads`` itself for binary spikes (graded events carry more)."""
    if zb is None or not pop.resets_with_gradient():
        return None
    return pop.sg(v_pre) if pop.graded else spike_grads


class _StepFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, s1, s2, bias, pop: _Population):  # type: ignore[override]
        zb, s1, s2, v_pre = pop.fwd(pop.prep(a), s1, s2, bias)
        ctx.pop = pop
        ctx.save_for_backward(v_pre, torch.zeros(0) if zb is None else zb)
        out = pop.sent(zb, s2, v_pre)
        return (out.clone() if out is s2 else out), s1, s2

    @staticmethod
    def backward(ctx, g_out, g1, g2):  # type: ignore[override]
        v_pre, zb = ctx.saved_tensors
        pop = ctx.pop
        zbn = zb if zb.numel() else None
        sgs = _spike_grads(pop, v_pre, zbn)
        rsg = _reset_sg(pop, v_pre, zbn, sgs)
        gi, g1, g2, gb = pop.back(g_out, sgs, g1, g2, zbn, None if rsg is None else v_pre, rsg)
        return pop.grad_input(gi), g1, g2, gb.sum(0), None


def _backward_loop(pop: _Population, g_sent_of, v_pre: torch.Tensor, zb: torch.Tensor | None):
    """The reverse loop shared by the sequence functions: ``g_sent_of(t, d_input_of_step_t_plus_1)`` gives the
    gradient of what step ``t`` sent; returns ``(d prepared inputs [S, B, n], d bias [n])``."""
    sgs = _spike_grads(pop, v_pre, zb)
    rsg = _reset_sg(pop, v_pre, zb, sgs)
    g1 = g2 = torch.zeros_like(v_pre[0])
    gi_all = torch.empty_like(v_pre)
    gb = torch.zeros_like(v_pre[0])
    gi = None
    for t in range(v_pre.shape[0] - 1, -1, -1):
        gi, g1, g2, gvp = pop.back(g_sent_of(t, gi), None if sgs is None else sgs[t], g1, g2,
                                   None if zb is None else zb[t], None if rsg is None else v_pre[t],
                                   None if rsg is None else rsg[t])
        if g1 is None:
            g1 = torch.zeros_like(gvp)
        gi_all[t] = gi
        gb += gvp
    return gi_all, gb.sum(0)


class _ScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, bias, pop: _Population):  # type: ignore[override]
        ap = pop.prep(a)
        pop.plan(_absmax(ap))
        s1, s2 = pop.init(a.shape[1], a.shape[2])
        outs, vps, zs = [], [], []
        exact32 = isinstance(pop, _LoihiPop)   # Loihi's v' are integers below 2**23: float32 keeps them exactly
        for t in range(a.shape[0]):
            zb, s1, s2, v_pre = pop.fwd(ap[t], s1, s2, bias)
            outs.append(pop.sent(zb, s2, v_pre) if pop.readout or pop.graded else zb)
            vps.append(v_pre.float() if exact32 else v_pre)
            zs.append(zb)
        ctx.pop = pop
        zb_all = None if zs[0] is None else torch.stack(zs)
        ctx.save_for_backward(torch.stack(vps), torch.zeros(0) if zb_all is None else zb_all)
        return torch.stack(outs) if pop.readout or pop.graded else zb_all.to(pop.dtype)

    @staticmethod
    def backward(ctx, g_out):  # type: ignore[override]
        v_pre, zb = ctx.saved_tensors
        pop = ctx.pop.for_grad()
        v_pre = v_pre.to(pop.dtype)
        g_out = g_out.to(pop.dtype)
        gi, gb = _backward_loop(pop, lambda t, _g: g_out[t], v_pre, zb if zb.numel() else None)
        return pop.grad_input(gi), gb, None


def _sccs(pops: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of the population graph (``edges[src]`` = destinations), sources first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        work = [(v, iter(sorted(edges.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(comp)

    for p in pops:
        if p not in index:
            visit(p)
    return out[::-1]


# --------------------------------------------------------------------------------------------------- forward
def target_forward(graph: ir.Graph, bindings: Bindings, x: torch.Tensor, target: str, *, weight_exp: int = 0,
                   reset_policy: str = "strict", payload_frac_bits: int | None = None,
                   input_frac_bits: int | None = None, input_bits: int = 8,
                   surrogate: sg.Surrogate | None = None, record: bool = False,
                   integer_inputs: bool | None = None) -> TargetResult:
    """Run the float IR ``graph`` (from :func:`~spikeseq.graph.trace.trace_bound`) quantised for ``target`` on
    ``x`` ``[T, B, *input_shape]`` with the target's arithmetic (module docstring); gradients reach the tensors of
    ``bindings``.

    ``weight_exp`` / ``reset_policy`` / ``payload_frac_bits``: as :func:`~spikeseq.graph.quantize.quantize`.
    ``surrogate``: every population's spike surrogate (``None``: the one of the module each population came from,
    recorded in ``bindings``, else :data:`spikeseq.surrogate.DEFAULT`).
    ``input_frac_bits``: Loihi only, real-valued inputs become graded payloads ``quantize_input(x, k, input_bits)``
    and the input synapses' weights are divided by ``2**k`` (``None``: the inputs must be integers).
    ``integer_inputs``: whether ``x`` holds integers (``None``: checked here; callers that checked their data once
    say so and save a pass over it; ``True`` also vouches that they are finite, so the NaN/Inf check is skipped).
    ``record``: also return every neuron node's aligned trace. The spikes equal
    ``simulate(graph_q, x_q, numerics=target)`` on every node, where ``graph_q`` is :attr:`TargetResult.graph`."""
    if target not in TARGETS:
        raise ParameterError(f"unknown target {target!r}; target mode trains for one of {', '.join(TARGETS)}")
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    g = graph.flat()
    ins = g.inputs()
    if len(ins) != 1:
        raise ParameterError(f"target mode needs a graph with one input, got {ins}")
    in_shape = g.nodes[ins[0]].out_shape
    if x.dim() != 2 + len(in_shape) or tuple(x.shape[2:]) != tuple(in_shape):
        raise ShapeError(f"input must be [T, B, {', '.join(map(str, in_shape))}], got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"target mode needs at least one step and one sample, got input {tuple(x.shape)}")
    xd = x.detach().reshape(x.shape[0], x.shape[1], -1)
    if not xd.is_floating_point():
        xd = xd.float()
    if integer_inputs is not True and not bool(torch.isfinite(xd).all()):   # known integers are finite
        raise DTypeError(f"target mode: the input holds NaN or Inf ({target} sends finite values); clean the data "
                         "or check its normalisation")
    in_div = {}
    if target == "loihi" and input_frac_bits is not None:
        k = int(input_frac_bits)
        g = scale_input_synapses(g, k)
        in_div = {s: 2.0**k for s in input_synapses(g)}
        xd = quantize_input(xd.double(), k, input_bits).to(xd.dtype)   # integers below 2**23: exact in float32
    elif target == "loihi" and not _integers(xd, integer_inputs):
        raise DTypeError("Loihi numerics needs integer inputs (0/1 spikes or integer graded values); pass "
                         "input_frac_bits to send real values as graded fixed-point payloads")
    q, factors = quantize_with_factors(g, target, weight_exp=weight_exp, reset_policy=reset_policy,
                                       payload_frac_bits=payload_frac_bits)
    lat = hop_latencies(q)
    t_in, batch = xd.shape[0], xd.shape[1]
    steps = t_in + max(lat.values(), default=0)
    if any(isinstance(n, ir.EGRUCell) for n in q.nodes.values()):   # gated cells: a PE program of their own
        y, traces = egru_graph_forward(q, factors, bindings, xd, surrogate=surrogate, record=record)
        return TargetResult(output=y, traces=traces, graph=q, steps=steps)
    lo, hi = torch.aminmax(xd) if xd.numel() else (torch.zeros(()), torch.zeros(()))
    xmax = max(-float(lo), float(hi))
    if target != "loihi" and not _integers(xd, integer_inputs):
        xmax = math.inf      # real values (SpiNNaker2): float64 sums, as the interpreter
        xd = xd.double()

    pops = [k for k, n in q.nodes.items() if n.role == "neuron"]
    other = [f"{k!r} ({q.nodes[k].kind})" for k in pops if not isinstance(q.nodes[k], ir.LoihiCUBA | ir.S2LIF)]
    if other:   # the dynamics _cell knows
        raise ExportError(f"target mode has no training forward for node {', '.join(other)} on {target} yet (the "
                          "exporter runs it: train in float and export, or leave train.target unset)")
    syn: dict[str, _Synapse] = {}
    feeds: dict[str, list[tuple[str, str]]] = {}  # population -> [(synapse, source)]
    for p in pops:
        feeds[p] = []
        for s in incoming_synapses(q, p):
            src = _source(q, s)
            src_max = xmax if src in ins else _send_max(q.nodes[src])
            syn[s] = _Synapse(s, q.nodes[s], factors.weight[s], bindings.get(s), in_div.get(s, 1.0),
                              exact_f32=_exact_f32(q.nodes[s], src_max) if math.isfinite(src_max) else False)
            feeds[p].append((s, src))
    cells = {p: _cell(q, p, feeds[p], factors, bindings, syn, surrogate) for p in pops}
    edges: dict[str, set[str]] = {}
    for p in pops:
        for _, src in feeds[p]:
            if src in cells:
                edges.setdefault(src, set()).add(p)
    sends: dict[str, torch.Tensor] = {ins[0]: xd}   # the input's T steps (silence after: _shift pads)
    for comp in _sccs(pops, edges):
        internal = {p: [(s, src) for s, src in feeds[p] if src in comp] for p in comp}
        ext = {}
        for p in comp:
            a = torch.zeros(steps, batch, math.prod(q.nodes[p].out_shape), dtype=torch.float64)
            for s, src in feeds[p]:
                if src in comp:
                    continue
                a = a + _shift(syn[s].apply_seq(sends[src]), steps)
            ext[p] = a
        if not any(internal.values()):
            (p,) = comp
            sends[p] = cells[p].scan(ext[p])
            continue
        merged = _merge([cells[p] for p in comp])
        if merged is not None and all(syn[s].delay is None and isinstance(syn[s].node, ir.Affine | ir.Linear)
                                      for p in comp for s, _ in internal[p]):
            sends.update(_recurrent_component(comp, internal, ext, syn, cells, merged))
            continue
        sts = {p: cells[p].init(batch, ext[p].shape[2]) for p in comp}
        hist: dict[str, list[torch.Tensor]] = {p: [] for p in comp}
        for t in range(steps):
            cur = {}
            for p in comp:
                a = ext[p][t]
                for s, src in internal[p]:
                    a = a + _recurrent_input(syn[s], hist[src], t)
                cur[p] = a
            for p in comp:
                o, sts[p] = cells[p].step(cur[p], sts[p])
                hist[p].append(o)
        for p in comp:
            sends[p] = torch.stack(hist[p])
    traces = {}
    if record:
        traces = {p: cells[p].value(sends[p][lat[p]:lat[p] + t_in]).reshape(t_in, batch, *q.nodes[p].out_shape)
                  for p in pops}
    out_name = q.outputs()[0]
    (src,) = q.predecessors(out_name)
    src = q.behind_flatten(src)
    if src not in cells:
        raise ExportError(f"target mode: the output is fed by {src!r}, not by a neuron population")
    y = cells[src].value(sends[src][lat[src]:lat[src] + t_in]).reshape(t_in, batch, *q.nodes[out_name].out_shape)
    return TargetResult(output=y, traces=traces, graph=q, steps=steps)


def _merge(pops: list[_Population]) -> _Population | None:
    """One population holding ``pops`` side by side (per-neuron parameters concatenated), or ``None`` when they
    differ in kind, readout, reset or current model (then the component is stepped population by population)."""
    first = pops[0]
    if any(type(p) is not type(first) or p.readout != first.readout or p.graded != first.graded
           or p.surrogate != first.surrogate or p.detach_reset != first.detach_reset for p in pops):
        return None
    if isinstance(first, _S2Pop) and any(p.reset != first.reset or (p.exc is None) != (first.exc is None)
                                         for p in pops):
        return None
    if first.graded and len(pops) > 1:     # each graded population divides by its own scale
        return None
    m = copy.copy(first)
    cat = lambda name: torch.cat([getattr(p, name) for p in pops])  # noqa: E731
    names = ("cu", "cv", "th") if isinstance(first, _LoihiPop) else ("alpha", "th", "vr")
    for name in names:
        setattr(m, name, cat(name))
    if isinstance(first, _S2Pop) and first.exc is not None:
        m.exc = cat("exc")
    m.bias = cat("bias")
    m.unit = torch.cat([torch.full((p.th.numel(),), float(p.unit), dtype=torch.float64) for p in pops])
    return m


def _recurrent_component(comp, internal, ext, syn, cells, merged) -> dict[str, torch.Tensor]:
    """A strongly connected component as one population with one block weight matrix of its internal synapses
    (``a[t] = ext[t] + W sent[t - 1]``), run by :class:`_RecurrentScanFn`; returns what each population sends.
    Only the blocks that hold synapses are multiplied (:func:`_block_spans`)."""
    sizes = [ext[p].shape[2] for p in comp]
    offs = dict(zip(comp, np.cumsum([0, *sizes[:-1]]).tolist()))
    rows = []
    for p, n in zip(comp, sizes):
        blocks = [torch.zeros(n, m, dtype=torch.float64) for m in sizes]
        for s, src in internal[p]:
            blocks[comp.index(src)] = blocks[comp.index(src)] + syn[s].w
        rows.append(torch.cat(blocks, dim=1))
    w = torch.cat(rows, dim=0)
    wd = w.detach()
    rowsum = float(wd.abs().sum(1).max()) if w.numel() else 0.0
    fac = 64.0 if isinstance(merged, _LoihiPop) else 1.0   # Loihi sums enter as 64 * a
    exact32 = (not merged.readout and not merged.graded and bool(torch.equal(wd, torch.round(wd)))
               and rowsum * fac < EXACT_F32)
    spans = _block_spans(comp, internal, sizes, offs)
    out = _RecurrentScanFn.apply(torch.cat([ext[p] for p in comp], dim=2), w, merged.bias, merged, exact32, spans)
    return {p: out[:, :, offs[p]:offs[p] + n] for p, n in zip(comp, sizes)}


#: ``(rows, [(cols, ...)])``: a destination population's neurons and the source neuron ranges it reads
Spans = tuple[tuple[tuple[int, int], tuple[tuple[int, int], ...]], ...]


def _block_spans(comp: list[str], internal: dict, sizes: list[int], offs: dict[str, int]) -> Spans:
    """Per population of ``comp`` (in order, so the rows tile ``0..n``): its neuron range and the column ranges of
    the component's populations it has synapses from, adjacent sources merged into one range (an L2MU's
    ``u <- m, h``; ``m <- u, m``; ``h <- m, h`` is 3 products of 76 % of the dense block's size)."""
    out = []
    for p, n in zip(comp, sizes):
        idx = sorted({comp.index(src) for _, src in internal[p]})
        runs: list[list[int]] = []
        for i in idx:
            if runs and runs[-1][1] == i:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
        cols = tuple((offs[comp[a]], offs[comp[b - 1]] + sizes[b - 1]) for a, b in runs)
        out.append(((offs[p], offs[p] + n), cols))
    return tuple(out)


class _BlockMatmul:
    """``x @ W.T`` and ``g @ (back_scale * W)`` for a block weight matrix ``W [n, n]``, multiplying only its blocks
    that hold synapses (:data:`Spans`)."""

    def __init__(self, w: torch.Tensor, spans: Spans, back_scale: float = 1.0):
        n = w.shape[0]
        self.n = n
        self.dense = len(spans) == 1 and spans[0][1] == ((0, n),)
        wb = w * back_scale if back_scale != 1.0 else w
        self.wt = w.t().contiguous() if self.dense else None
        self.w = wb if self.dense else None
        self.rows = [(r, [(c, w[r[0]:r[1], c[0]:c[1]].t().contiguous(), wb[r[0]:r[1], c[0]:c[1]].contiguous())
                          for c in cols]) for r, cols in spans]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, n] @ W.T``."""
        if self.dense:
            return x @ self.wt
        parts = []
        for _, cols in self.rows:
            acc = None
            for (c0, c1), wt, _ in cols:
                y = x[:, c0:c1] @ wt
                acc = y if acc is None else acc.add_(y)
            parts.append(acc)
        return torch.cat(parts, dim=1)

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        """``g [B, n] @ W``."""
        if self.dense:
            return g @ self.w
        out = g.new_zeros(g.shape[0], self.n)
        for (r0, r1), cols in self.rows:
            for (c0, c1), _, wb in cols:
                out[:, c0:c1].addmm_(g[:, r0:r1], wb)
        return out

    def weight_grad(self, ga: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
        """``ga.T @ sent`` (``[M, n]`` each) on the blocks that hold synapses, zero elsewhere."""
        if self.dense:
            return ga.t() @ sent
        gw = ga.new_zeros(self.n, self.n)
        for (r0, r1), cols in self.rows:
            for (c0, c1), _, _ in cols:
                gw[r0:r1, c0:c1] = ga[:, r0:r1].t() @ sent[:, c0:c1]
        return gw


class _RecurrentScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ext, w, bias, pop: _Population, exact32: bool, spans: Spans):  # type: ignore[override]
        steps, batch, n = ext.shape
        s1, s2 = pop.init(batch, n)
        loihi = isinstance(pop, _LoihiPop)
        # Loihi's prepared input is 64 * (ext + W sent): d sent = W.T (64 d u)
        mm = _BlockMatmul(w.float() if exact32 else w, spans, back_scale=64.0 if loihi else 1.0)
        if loihi and not pop.readout:         # bound |a| by the inputs and the weights' row sums (spikes are 0/1)
            pop.plan(64.0 * (_absmax(ext) + float(w.detach().abs().sum(1).max())))
        else:
            pop.plan(math.inf)
        spikes = not (pop.readout or pop.graded)
        mdt = torch.float32 if exact32 else torch.float64
        sent_m = torch.empty(steps, batch, n, dtype=mdt)          # what is sent, in the matmul's dtype
        vps = torch.empty(steps, batch, n, dtype=torch.float32 if loihi else pop.dtype)  # Loihi's v': exact
        zs = None if pop.readout else torch.empty(steps, batch, n, dtype=torch.bool)
        for t in range(steps):
            a = ext[t] if t == 0 else ext[t] + mm.forward(sent_m[t - 1])   # float32 sums promote exactly
            zb, s1, s2, v_pre = pop.fwd(pop.prep(a), s1, s2, bias)
            if zs is not None:
                zs[t] = zb
            sent_m[t] = zb if spikes else pop.sent(zb, s2, v_pre)
            vps[t] = v_pre
        sent = sent_m if spikes else sent_m.to(pop.dtype)   # spikes 0/1: exact in the matmul's dtype
        ctx.pop, ctx.mm = pop, mm
        ctx.save_for_backward(sent_m, vps, torch.zeros(0) if zs is None else zs)
        return sent

    @staticmethod
    def backward(ctx, g_out):  # type: ignore[override]
        sent_m, v_pre, zb = ctx.saved_tensors
        pop, mm = ctx.pop.for_grad(), ctx.mm
        dtype = pop.dtype
        v_pre = v_pre.to(dtype)
        g_out = g_out.to(dtype)
        mdt = sent_m.dtype

        def g_sent(t: int, gi_next):    # d sent[t] = g_out[t] + W.T d a[t + 1]  (d a = fac * d prepared input)
            if gi_next is None:
                return g_out[t]
            return g_out[t] + mm.backward(gi_next.to(mdt))

        gi, gb = _backward_loop(pop, g_sent, v_pre, zb if zb.numel() else None)
        ga = pop.grad_input(gi)
        n = sent_m.shape[2]
        gw = mm.weight_grad(ga[1:].reshape(-1, n).to(mdt), sent_m[:-1].reshape(-1, n)).double()
        return ga, gw, gb, None, None, None


def _absmax(x: torch.Tensor) -> float:
    """``max |x|`` (0 for an empty tensor) without a temporary ``|x|``."""
    if not x.numel():
        return 0.0
    lo, hi = torch.aminmax(x)
    return max(-float(lo), float(hi))


def _integers(x: torch.Tensor, known: bool | None) -> bool:
    """Whether ``x`` holds integers: ``known`` when the caller knows, else checked."""
    return bool(known) if known is not None else not bool(torch.frac(x).any())


def _send_max(node: ir.Node) -> float:
    """The largest magnitude a population sends: 1 for spikes, 127 for int8 graded payloads, unbounded for a
    membrane or float graded events."""
    if getattr(node, "readout", False):
        return math.inf
    if getattr(node, "graded", False):
        return 127.0 if getattr(node, "payload_frac_bits", None) is not None else math.inf
    return 1.0


def _shift(y: torch.Tensor, steps: int) -> torch.Tensor:
    """One step of synaptic latency over ``steps`` steps: ``out[t] = y[t - 1]``, silence at ``t = 0`` and after
    ``y`` ends."""
    n = min(y.shape[0], steps - 1)
    return torch.cat([y.new_zeros(1, *y.shape[1:]), y[:n], y.new_zeros(steps - 1 - n, *y.shape[1:])])


def _recurrent_input(s: _Synapse, hist: list[torch.Tensor], t: int) -> torch.Tensor:
    """Input at step ``t`` through synapse ``s`` from a population of the same component: its output at
    ``t - 1 - d`` per delay ``d`` (silence before the start)."""
    if s.delay is None:
        if t == 0:
            return torch.zeros(1, dtype=torch.float64)
        return s.apply(hist[t - 1])
    total = torch.zeros(1, dtype=torch.float64)
    for d in torch.unique(s.delay).tolist():
        if t - 1 - d >= 0:
            w = s.weight_for(int(d))
            total = total + (hist[t - 1 - d].to(w.dtype) @ w.t()).double()
    return total


def _cell(q: ir.Graph, p: str, feeds: list[tuple[str, str]], factors, bindings: Bindings,
          syn: dict[str, _Synapse], surrogate: sg.Surrogate | None):
    node = q.nodes[p]
    trained = bindings.get(p) or {}     # the module's own spike gradient (trace.bind_spiking)
    kw = {"surrogate": surrogate if surrogate is not None else trained.get("surrogate", sg.DEFAULT),
          "detach_reset": bool(trained.get("detach_reset", True))}
    n = math.prod(node.out_shape)
    proxy = None
    for s, _ in feeds:
        f = factors.bias.get(p, {}).get(s)
        b = (bindings.get(s) or {}).get("bias")
        if f is None or b is None:
            continue
        reps = n // b.numel()
        bb = b.double().repeat_interleave(reps) if reps > 1 else b.double().reshape(-1)
        term = bb * torch.from_numpy(np.asarray(f, np.float64).reshape(-1))
        proxy = term if proxy is None else proxy + term
    if isinstance(node, ir.LoihiCUBA):
        return _LoihiPop(node, proxy, **kw)
    if isinstance(node, ir.S2LIF):
        return _S2Pop(node, proxy, **kw)
    raise ExportError(f"target mode: node {p!r} of kind {node.kind} has no target dynamics")
