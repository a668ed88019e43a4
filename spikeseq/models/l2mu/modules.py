"""L2MU: the Legendre Memory Unit rebuilt from LIF or CuBa-LIF populations (Fra et al., ICANN 2024).

Populations (specs/models.md section 2; ``neuromorphic-polito/L2MU-Braille`` ``l2mu_cell.py``): input ``x``,
encoder ``u`` (``memory_size`` neurons), memory ``m`` (``memory_size x order``), hidden ``h``, output ``o``.
Recurrence uses the spikes of step t-1:

    s_x     = input module(x[t])                        raw sensor values, or LIF(W_in x[t]) spikes
    I_u     = e_x s_x + e_h s_h[t-1] + e_m s_m[t-1]      s_u = N_u(I_u)
    I_m     = A_bar s_m[t-1] + B_bar s_u                 per encoder channel (frozen ZOH Legendre A_bar, B_bar)
    s_m     = N_m(I_m)
    I_h     = W_x s_x + W_h s_h[t-1] + W_m s_m[t]        s_h = N_h(I_h)
    s_o     = N_o(W_o s_h)

``N_*`` are :class:`spikeseq.nn.LIF` or :class:`spikeseq.nn.CubaLIF` populations with a learnable decay and
threshold each (one per population by default, as snnTorch ``Leaky(learn_beta=True, learn_threshold=True)``),
stepped with :func:`spikeseq.functional.lif_step` / :func:`~spikeseq.functional.cuba_lif_step`. The reset is
spikeseq's subtractive reset by default (snnTorch subtracts one step later; see :mod:`spikeseq.functional.lif`);
``reset="zero"`` trains with Loihi's reset (see ``spikeseq.verify.error_budget``). No biases;
``e_x``, ``e_h`` LeCun-uniform, ``e_m`` zero, ``W_*`` Xavier-normal (as the reference code).

Because of the h->u and m->u feedback the cell is stepped in time; the input and output populations have no
feedback and run as scans over the whole sequence. The "encoding-free" input module of the paper feeds raw values
into the first spiking population: ``input_module="lif"`` drives a LIF population with ``W_in x`` (real currents,
spikes out), ``"direct"`` feeds ``x`` itself to ``e_x``/``W_x`` (then those two are MACs, not ACs).

Output: ``y, state = model(x [T, B, C])`` with ``y`` ``[T, B, classes]``: ``y[t]`` is the readout after seeing
``x[0..t]`` (the output spike count so far for ``readout="spike_count"``, the mean output membrane so far for
``readout="membrane"``); ``y[-1]`` classifies the whole window, and the earlier rows give streaming accuracy.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from spikeseq import surrogate as sg
from spikeseq.checks import check_window
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional import cuba_lif_step, lif_step
from spikeseq.functional.lmu import check_lmu_args, lmu_matrices, lmu_update
from spikeseq.nn import LI, LIF, CubaLIF, StatefulModule

#: Braille follow-up best configuration (L2MU-Braille README, 27 classes; specs/models.md section 2).
BRAILLE_BEST = dict(order=4, theta=7.0, hidden_size=160, memory_size=250,
                    beta_u=0.65, v_th_u=0.1, beta_h=0.15, v_th_h=0.75, beta_m=0.35, v_th_m=0.4,
                    beta_out=0.15, v_th_out=0.1)


#: Per-step decays used when a population gets neither ``tau_<pop>`` nor ``beta_<pop>``: the Braille follow-up's
#: best configuration (:data:`BRAILLE_BEST`; input population and CuBa synapse 0.5 as the reference code's default).
DEFAULT_DECAYS = {"in": 0.5, "u": 0.65, "m": 0.35, "h": 0.15, "out": 0.15, "syn": 0.5}


def time_constant(name: str, tau: float | None, beta: float | None) -> dict[str, float | None]:
    """The neuron keyword arguments of population ``name``: its time constant ``tau`` in seconds (converted to a
    decay by the neuron, with its ``dt``) or its decay per step ``beta``, at most one of them; neither: the
    default decay :data:`DEFAULT_DECAYS`."""
    if tau is not None and beta is not None:
        raise ParameterError(f"L2MU population {name!r}: give tau_{name} (seconds) or its decay per step, not both "
                             f"(got tau={tau}, decay={beta})")
    if tau is None and beta is None:
        beta = DEFAULT_DECAYS[name]
    return {"tau_mem": tau, "beta": beta}


class L2MUState(NamedTuple):
    """State of :class:`L2MU`: each population's neuron state, the last hidden and memory spikes, and the readout
    accumulated over the ``steps`` seen so far (for streaming).
    """

    x: object  #: input population state (None for ``input_module="direct"``)
    u: object
    m: object
    h: object
    out: object
    s_h: torch.Tensor  #: hidden spikes of the last step ``[B, hidden]``
    s_m: torch.Tensor  #: memory spikes of the last step ``[B, memory_size * order]``
    acc: torch.Tensor  #: readout accumulated so far ``[B, classes]``
    steps: torch.Tensor  #: steps seen so far (0-d int64 tensor)


def lecun_uniform_(w: torch.Tensor) -> torch.Tensor:
    """LeCun-uniform init in place: ``U(-sqrt(3 / fan_in), sqrt(3 / fan_in))`` with ``fan_in = w.shape[1]``."""
    bound = math.sqrt(3.0 / w.shape[1])
    with torch.no_grad():
        return w.uniform_(-bound, bound)


class _Pop:
    """Per-forward view of one population: decays/thresholds read once, then cheap functional steps."""

    def __init__(self, pop: nn.Module) -> None:
        self.cuba = isinstance(pop, CubaLIF)
        self.kw = dict(beta=pop.beta, v_th=pop.v_th, reset=pop.reset, detach_reset=pop.detach_reset,
                       surrogate=pop.surrogate)
        if self.cuba:
            self.kw["alpha"] = pop.alpha

    def step(self, x, state):
        return (cuba_lif_step if self.cuba else lif_step)(x, state, **self.kw)


class L2MU(StatefulModule):
    """All-spiking LMU classifier for ``[T, B, input_size]`` windows (see the module docstring).

    Time is physical, as for the neurons: each population ``in``, ``u``, ``m``, ``h``, ``out`` takes its time
    constant ``tau_<pop>`` in seconds (the CuBa synapse ``tau_syn``) and the module's ``dt``; the neuron turns it into
    a decay once (:func:`spikeseq.functional.decay_from_tau`). A decay per step ``beta_<pop>`` (``alpha``) may be
    given instead, as the neurons allow; neither gives :data:`DEFAULT_DECAYS`.
    """

    def __init__(
        self,
        input_size: int,
        n_classes: int,
        *,
        order: int = 4,
        theta: float = 7.0,
        hidden_size: int = 160,
        memory_size: int = 250,
        neuron: str = "lif",
        input_module: str = "lif",
        input_pop_size: int = 64,
        readout: str = "spike_count",
        tau_in: float | None = None, v_th_in: float = 0.5,
        tau_u: float | None = None, v_th_u: float = 0.1,
        tau_m: float | None = None, v_th_m: float = 0.4,
        tau_h: float | None = None, v_th_h: float = 0.75,
        tau_out: float | None = None, v_th_out: float = 0.1,
        tau_syn: float | None = None,
        beta_in: float | None = None, beta_u: float | None = None, beta_m: float | None = None,
        beta_h: float | None = None, beta_out: float | None = None, alpha: float | None = None,
        per_neuron: bool = False,
        reset: str = "subtract",
        surrogate: sg.Surrogate = sg.DEFAULT,
        dt: float = 0.02,
    ) -> None:
        super().__init__()
        check_lmu_args(order, theta)
        for name, v in (("input_size", input_size), ("n_classes", n_classes), ("hidden_size", hidden_size),
                        ("memory_size", memory_size), ("input_pop_size", input_pop_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ParameterError(f"L2MU {name} must be an integer >= 1, got {v!r}")
        if neuron not in ("lif", "cuba"):
            raise ParameterError(f"neuron must be 'lif' or 'cuba' (CuBa-LIF), got {neuron!r}")
        if input_module not in ("lif", "direct"):
            raise ParameterError(f"input_module must be 'lif' or 'direct', got {input_module!r}")
        if readout not in ("spike_count", "membrane"):
            raise ParameterError(f"readout must be 'spike_count' or 'membrane', got {readout!r}")
        self.input_size, self.n_classes = input_size, n_classes
        self.input_shape = (input_size,)  #: per-sample input shape (read by spikeseq.graph.trace)
        self.order, self.theta, self.hidden_size, self.memory_size = order, float(theta), hidden_size, memory_size
        self.neuron, self.input_module, self.readout = neuron, input_module, readout
        a_bar, b_bar = lmu_matrices(order, theta)
        self.register_buffer("a_bar", a_bar, persistent=False)
        self.register_buffer("b_bar", b_bar, persistent=False)

        syn = time_constant("syn", tau_syn, alpha)

        def pop(size, name, tau, beta, v_th):
            kw = dict(**time_constant(name, tau, beta), v_th=v_th, dt=dt, surrogate=surrogate, learn="beta",
                      learn_threshold=True, reset=reset)
            n = size if per_neuron else None
            if neuron == "cuba":
                return CubaLIF(n, tau_syn=syn["tau_mem"], alpha=syn["beta"], **kw)
            return LIF(n, **kw)

        n_x = input_pop_size if input_module == "lif" else input_size
        if input_module == "lif":
            self.w_in = nn.Linear(input_size, input_pop_size, bias=False)
            self.pop_x = pop(input_pop_size, "in", tau_in, beta_in, v_th_in)
        nm = memory_size * order
        self.e_x = nn.Linear(n_x, memory_size, bias=False)
        self.e_h = nn.Linear(hidden_size, memory_size, bias=False)
        self.e_m = nn.Linear(nm, memory_size, bias=False)
        self.w_x = nn.Linear(n_x, hidden_size, bias=False)
        self.w_h = nn.Linear(hidden_size, hidden_size, bias=False)
        self.w_m = nn.Linear(nm, hidden_size, bias=False)
        self.w_out = nn.Linear(hidden_size, n_classes, bias=False)
        self.pop_u = pop(memory_size, "u", tau_u, beta_u, v_th_u)
        self.pop_m = pop(nm, "m", tau_m, beta_m, v_th_m)
        self.pop_h = pop(hidden_size, "h", tau_h, beta_h, v_th_h)
        if readout == "spike_count":
            self.pop_out = pop(n_classes, "out", tau_out, beta_out, v_th_out)
        else:
            self.pop_out = LI(None, **time_constant("out", tau_out, beta_out), dt=dt, learn="beta")
        lecun_uniform_(self.e_x.weight)
        lecun_uniform_(self.e_h.weight)
        nn.init.zeros_(self.e_m.weight)
        for lin in (self.w_x, self.w_h, self.w_m, self.w_out):
            nn.init.xavier_normal_(lin.weight)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named groups for :mod:`spikeseq.train.optim`: ``weights`` (the synapses) and ``neurons`` (each
        population's learnable threshold and decay, one scalar each by default).

        A recipe can give ``neurons`` its own learning rate (``[train.groups.neurons] lr``): Adam moves every
        parameter by about ``lr`` per step whatever its gradient's scale, so at a peak of 5e-3 a scalar threshold of
        0.2 can be gone in 40 consistent steps; a population whose threshold reaches 0 with a decay clamped at 1
        fires on every step (HAPT seed 0 of examples/l2mu/l2mu_hapt.toml at a single lr: ``v_th_m`` 0.2 -> -0.02).
        """
        neurons = [p for n, p in self.named_parameters() if n.startswith("pop_") and p.requires_grad]
        ids = {id(p) for p in neurons}
        return {"weights": [p for p in self.parameters() if p.requires_grad and id(p) not in ids],
                "neurons": neurons}

    def train_step_end(self) -> None:
        """Training-loop hook after each optimizer step: every population's decay back into [0, 1] and threshold to
        >= 0 (``project_`` of the neuron modules; projected gradient descent, so a decay pushed past 1 can come back
        instead of sitting under the forward pass's clamp with no gradient)."""
        for name in ("pop_x", "pop_u", "pop_m", "pop_h", "pop_out"):
            pop = getattr(self, name, None)     # pop_x only with the spiking input module
            if pop is not None:
                pop.project_()

    def fanout(self) -> dict[str, int]:
        """Synapses driven by one spike of each population (for synaptic-operation counts)."""
        m, h, k, d = self.memory_size, self.hidden_size, self.n_classes, self.order
        return {"x": m + h, "u": d, "m": d + m + h, "h": m + h + k, "out": 0}

    def forward(self, x: torch.Tensor, state: L2MUState | None = None):
        """``y [T, B, classes]`` and the state (see the module docstring)."""
        y, st, _ = self._run(x, state, None)
        return y, st

    def forward_with_spike_counts(self, x: torch.Tensor, state: L2MUState | None = None):
        """``y, state, counts``: :meth:`forward` plus the spike count and neuron-step count of every population,
        ``counts = {name: (spikes, neuron_steps)}`` (``x``, ``u``, ``m``, ``h``, ``out``; ``x`` only with the LIF
        input module, ``out`` only with the spike-count readout)."""
        counts: dict[str, tuple[float, int]] = {}
        y, st, _ = self._run(x, state, counts)
        return y, st, counts

    def _run(self, x: torch.Tensor, state: L2MUState | None, stats: dict | None):
        check_window(x, self.input_size, "L2MU")
        if state is not None and not isinstance(state, L2MUState):
            raise ShapeError(f"L2MU state must be an L2MUState (the state a call returned) or None, got "
                             f"{type(state).__name__}")
        t_len, bsz = x.shape[:2]
        st = state if state is not None else L2MUState(
            None, None, None, None, None, x.new_zeros(bsz, self.hidden_size),
            x.new_zeros(bsz, self.memory_size * self.order), x.new_zeros(bsz, self.n_classes),
            torch.zeros((), dtype=torch.long, device=x.device))
        if self.input_module == "lif":
            s_x, sx = self.pop_x(self.w_in(x), st.x)
        else:
            s_x, sx = x, None
        xu, xh = self.e_x(s_x), self.w_x(s_x)  # input currents for all steps at once (no feedback into x)
        eh, em = self.e_h.weight.t(), self.e_m.weight.t()
        wh, wm = self.w_h.weight.t(), self.w_m.weight.t()
        a_bar, b_bar = self.a_bar.to(x), self.b_bar.to(x)
        pu, pm, ph = _Pop(self.pop_u), _Pop(self.pop_m), _Pop(self.pop_h)
        su, sm, sh, s_h, s_m = st.u, st.m, st.h, st.s_h, st.s_m
        m, d = self.memory_size, self.order
        hs, n_u, n_m = [], 0.0, 0.0
        # unbind, not xu[t]: the backward of t-indexing would zero-fill a [T, B, N] gradient at every step
        for xu_t, xh_t in zip(xu.unbind(0), xh.unbind(0)):
            s_u, su = pu.step(xu_t + s_h @ eh + s_m @ em, su)
            i_m = lmu_update(s_m.view(bsz, m, d), s_u, a_bar, b_bar).reshape(bsz, m * d)
            s_m, sm = pm.step(i_m, sm)
            s_h, sh = ph.step(xh_t + s_h @ wh + s_m @ wm, sh)
            hs.append(s_h)
            if stats is not None:
                n_u += float(s_u.detach().sum())
                n_m += float(s_m.detach().sum())
        h = torch.stack(hs)
        o, so = self.pop_out(self.w_out(h), st.out)
        csum = st.acc + torch.cumsum(o, dim=0)
        if self.readout == "spike_count":
            y = csum
        else:
            steps = st.steps + torch.arange(1, t_len + 1, device=x.device)
            y = csum / steps.to(x.dtype).view(-1, 1, 1)
        if stats is not None:
            if self.input_module == "lif":
                _add(stats, "x", float(s_x.detach().sum()), s_x.numel())
            _add(stats, "u", n_u, t_len * bsz * m)
            _add(stats, "m", n_m, t_len * bsz * m * d)
            _add(stats, "h", float(h.detach().sum()), h.numel())
            if self.readout == "spike_count":
                _add(stats, "out", float(o.detach().sum()), o.numel())
        return y, L2MUState(sx, su, sm, sh, so, s_h, s_m, csum[-1], st.steps + t_len), stats


def _add(stats: dict, name: str, spikes: float, steps: int) -> None:
    s0, n0 = stats.get(name, (0.0, 0))
    stats[name] = (s0 + spikes, n0 + steps)


def build_l2mu(input_size: int = 6, n_classes: int = 6, **cfg) -> L2MU:
    """L2MU classifier; defaults follow the Braille follow-up's best configuration (:data:`BRAILLE_BEST`)."""
    return L2MU(input_size, n_classes, **cfg)
