"""RWKV-4 building blocks, spiking (SpikeGPT) or not: token shift, time mix (WKV), channel mix, the pre-LayerNorm
residual block with an optional LIF on each branch output, the binary spiking embedding and L2Wrap.

Equations (RWKV-4: Peng et al. 2023, §3-4; SpikeGPT: Zhu et al. TMLR 2024, §3, as read in ``src/model.py``, see
``specs/models.md`` §1). Token shift ``xx[t] = x[t-1]`` (``x_prev`` for the first token), per-channel mixes
``x_k = mu_k x + (1 - mu_k) xx`` (same for ``v``, ``r``):

    time mix:     k = W_k x_k,  v = W_v x_v,  r = sigmoid(W_r x_r),  out = W_o (r * wkv(k, v; w = e^{time_decay},
                  u = time_first))                               (wkv: :mod:`spikeseq.functional.wkv`)
    channel mix:  out = sigmoid(W_r x_r) * W_v relu(W_k x_k)^2   (hidden width 4 C)
    block:        x <- x + S1(TimeMix(LN1(x))),  x <- x + S2(ChannelMix(LN2(x)))     (LN0 on the input of block 0)

``S1``, ``S2`` are LIF populations in SpikeGPT (SpikingJelly ``MultiStepLIFNode``: tau = 2 steps, input scaled by
1/tau, v_th = 1, hard reset to 0, ATan(alpha = 2), reset not detached) and the identity in RWKV-4. SpikingJelly's
update ``H = V + (X - V)/tau`` is spikeseq's LIF with ``beta = 1 - dt/tau`` (forward Euler) fed ``(1 - beta) X``.

The state of a block (RNN mode carries it token to token) is :class:`RWKVBlockState`: the token-shift inputs of
both mixes, the WKV state and the two LIF membranes (zeros, unused, when the block does not spike).
"""

from __future__ import annotations

import math
import weakref
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq import kernels
from spikeseq import surrogate as sg
from spikeseq.errors import ShapeError
from spikeseq.functional.discretize import decay_from_tau
from spikeseq.functional.lif import LIFState, lif_update
from spikeseq.functional.wkv import WKVState, initial_wkv_state, wkv_compute_dtype, wkv_update
from spikeseq.kernels.wkv import block_step
from spikeseq.kernels.wkv import cpu as wkv_cpu
from spikeseq.nn.base import StatefulModule
from spikeseq.nn.neurons import LIF

#: The surrogate of SpikeGPT's spiking embedding and LIF nodes (SpikingJelly ATan, alpha = 2; specs/models.md §1).
RWKV_SPIKE_SURROGATE = sg.ATan(alpha=2.0)


class RWKVBlockState(NamedTuple):
    """RNN state of one block, every field ``[B, C]``: token-shift inputs (``att_x``, ``ffn_x``), WKV ``(a, b, p)``
    and the LIF membranes after each branch (``v_att``, ``v_ffn``)."""

    att_x: torch.Tensor
    wkv_a: torch.Tensor
    wkv_b: torch.Tensor
    wkv_p: torch.Tensor
    ffn_x: torch.Tensor
    v_att: torch.Tensor
    v_ffn: torch.Tensor


def initial_block_state(batch: int, channels: int, *, dtype: torch.dtype = torch.float32,
                        device: torch.device | str | None = None) -> RWKVBlockState:
    """The state before the first token (zeros; WKV ``p = -1e38``, or -65504 in float16:
    :func:`~spikeseq.functional.wkv.initial_p`)."""
    z = torch.zeros(batch, channels, dtype=dtype, device=device)
    w = initial_wkv_state(batch, channels, dtype=dtype, device=device)
    return RWKVBlockState(z, w.a, w.b, w.p, z.clone(), z.clone(), z.clone())


def check_block_state(s: object, batch: int, channels: int, layer: int = 0) -> None:
    """Raise :class:`~spikeseq.errors.ShapeError` unless ``s`` is an :class:`RWKVBlockState` whose fields are all
    ``[batch, channels]`` (the input step's shape)."""
    if not isinstance(s, RWKVBlockState):
        raise ShapeError(f"the state of RWKV block {layer} must be an RWKVBlockState (7 tensors [B, C]), got "
                         f"{type(s).__name__}; pass state=None to start from the beginning, or the state a call "
                         "returned")
    for name, t in zip(RWKVBlockState._fields, s, strict=True):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (batch, channels):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ShapeError(f"state field {name} of RWKV block {layer} has shape {got} but the input is "
                             f"[B, C] = [{batch}, {channels}]; pass state=None to start from the beginning, or the "
                             "state returned for the same batch size and model width")


def token_shift(x: torch.Tensor, x_prev: torch.Tensor | None) -> torch.Tensor:
    """``xx[t] = x[t-1]`` for ``x`` ``[T, B, C]``, with ``xx[0] = x_prev`` (zeros when ``None``)."""
    first = torch.zeros_like(x[:1]) if x_prev is None else x_prev.unsqueeze(0).to(x.dtype)
    return torch.cat((first, x[:-1]), dim=0)


def _mix(x: torch.Tensor, xx: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return x * mu + xx * (1 - mu)


class StepWeights(NamedTuple):
    """A block's weights as :meth:`RWKVBlock.step` uses them, transposed to ``[in, out]`` (a row vector times a
    contiguous ``[in, out]`` matrix takes about half the time of ``F.linear`` at these sizes): the time mix's ``k,
    v, r`` projections stacked (``kvr``, ``[3, C, C]``, one batched product) with their mixes (``mu_kvr``,
    ``[3, C]``), its ``output``, the channel mix's ``key``, ``receptance`` and ``value`` with their mixes
    (``mu_kr``, ``[2, C]``), and ``w = e^{time_decay}``; ``packed``: all of the block's weights as the C++ step
    takes them (:mod:`spikeseq.kernels.wkv.block_step`; ``None`` where it cannot run); ``made``: what they were
    made from (:class:`_Made`). (Folding each mix into its projection would save the mixes but double the
    matrices' bytes, and one token's step is bound by reading them.)"""

    made: _Made
    kvr: torch.Tensor
    mu_kvr: torch.Tensor
    out: torch.Tensor
    key: torch.Tensor
    receptance: torch.Tensor
    value: torch.Tensor
    mu_kr: torch.Tensor
    w: torch.Tensor
    packed: object = None


def _slots(module: nn.Module) -> list[tuple[dict, str]]:
    """``(dict, key)`` of every parameter, buffer and submodule under ``module``, from the modules' own dicts."""
    out: list[tuple[dict, str]] = []
    for d in (module._parameters, module._buffers, module._modules):
        for k, v in d.items():
            if v is not None:
                out.append((d, k))
                if isinstance(v, nn.Module):
                    out += _slots(v)
    return out


#: Each block's :class:`StepWeights`, kept beside the module rather than in it (so that copying or pickling a
#: module never sees the C pointers of the packed weights).
_STEP_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Made(NamedTuple):
    """What a block's :class:`StepWeights` were made from: the slots of its parameters, buffers and submodules,
    the objects in them, and ``(data_ptr, version)`` of each tensor (a replaced, moved or in-place changed tensor
    changes one of them)."""

    slots: list
    objects: list
    tensors: list
    versions: list

    @classmethod
    def of(cls, module: nn.Module) -> _Made:
        slots = _slots(module)
        objects = [d[k] for d, k in slots]
        tensors = [o for o in objects if isinstance(o, torch.Tensor)]
        return cls(slots, objects, tensors, [(t.data_ptr(), t._version) for t in tensors])

    def still(self) -> bool:
        """Whether every slot holds the same object, and every tensor the same values, as when this was made."""
        return all(d[k] is o for (d, k), o in zip(self.slots, self.objects, strict=True)) and \
            [(t.data_ptr(), t._version) for t in self.tensors] == self.versions


class RWKVTimeMix(nn.Module):
    """RWKV-4 time mix ("SRWKV" in SpikeGPT): ``y, (x_last, wkv_state) = tm(x [T, B, C], x_prev, wkv_state)``.

    Parameters named as in RWKV-4 checkpoints (``time_decay``, ``time_first``, ``time_mix_k/v/r``, ``key``,
    ``value``, ``receptance``, ``output``). Initialisation: :meth:`reset_parameters`.
    """

    def __init__(self, channels: int, layer_id: int = 0, n_layer: int = 1, backend: str = "auto") -> None:
        super().__init__()
        self.channels, self.layer_id, self.n_layer, self.backend = channels, layer_id, n_layer, backend
        self.time_decay = nn.Parameter(torch.empty(channels))
        self.time_first = nn.Parameter(torch.empty(channels))
        self.time_mix_k = nn.Parameter(torch.empty(channels))
        self.time_mix_v = nn.Parameter(torch.empty(channels))
        self.time_mix_r = nn.Parameter(torch.empty(channels))
        self.key = nn.Linear(channels, channels, bias=False)
        self.value = nn.Linear(channels, channels, bias=False)
        self.receptance = nn.Linear(channels, channels, bias=False)
        self.output = nn.Linear(channels, channels, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """RWKV-4 initialisation (RWKV-LM v4 ``model.py``; specs/models.md §1): with ``h = c/(C-1)`` and layer
        ratios ``r0 = l/(L-1)``, ``r1 = 1 - l/L``: ``time_decay = -5 + 8 h^(0.7 + 1.3 r0)``, ``time_first =
        ln 0.3 + 0.5 ((c+1) mod 3 - 1)`` (the zig-zag), ``mu_k = (c/C)^r1``, ``mu_v = (c/C)^r1 + 0.3 r0``,
        ``mu_r = (c/C)^(r1/2)``; ``value`` orthogonal, ``key``, ``receptance`` and ``output`` zero."""
        C, l_, L = self.channels, self.layer_id, self.n_layer
        r0 = l_ / (L - 1) if L > 1 else 0.0
        r1 = 1.0 - l_ / L
        h = torch.arange(C, dtype=torch.float64) / max(C - 1, 1)
        self.time_decay.copy_(-5 + 8 * h ** (0.7 + 1.3 * r0))
        zigzag = torch.tensor([((c + 1) % 3 - 1) * 0.5 for c in range(C)], dtype=torch.float64)
        self.time_first.copy_(math.log(0.3) + zigzag)
        x = torch.arange(C, dtype=torch.float64) / C
        self.time_mix_k.copy_(x ** r1)
        self.time_mix_v.copy_(x ** r1 + 0.3 * r0)
        self.time_mix_r.copy_(x ** (0.5 * r1))
        nn.init.orthogonal_(self.value.weight)
        for lin in (self.key, self.receptance, self.output):
            nn.init.zeros_(lin.weight)

    def decay(self) -> torch.Tensor:
        """The WKV decay rate ``w = exp(time_decay)`` (> 0)."""
        return torch.exp(self.time_decay)

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor | None = None, state: WKVState | None = None):
        """``x`` ``[T, B, C]`` -> output ``[T, B, C]`` and ``(x[-1], wkv state)`` for the next call."""
        xx = token_shift(x, x_prev)
        k = self.key(_mix(x, xx, self.time_mix_k))
        v = self.value(_mix(x, xx, self.time_mix_v))
        r = torch.sigmoid(self.receptance(_mix(x, xx, self.time_mix_r)))
        wkv, st = kernels.wkv(k, v, state, w=self.decay(), u=self.time_first, backend=self.backend)
        return self.output(r * wkv), (x[-1], st)


class RWKVChannelMix(nn.Module):
    """RWKV-4 channel mix ("SRFFN"): ``y, x_last = cm(x [T, B, C], x_prev)``; hidden width ``hidden`` (4 C)."""

    def __init__(self, channels: int, hidden: int | None = None, layer_id: int = 0, n_layer: int = 1) -> None:
        super().__init__()
        self.channels, self.layer_id, self.n_layer = channels, layer_id, n_layer
        self.hidden = 4 * channels if hidden is None else hidden
        self.time_mix_k = nn.Parameter(torch.empty(channels))
        self.time_mix_r = nn.Parameter(torch.empty(channels))
        self.key = nn.Linear(channels, self.hidden, bias=False)
        self.receptance = nn.Linear(channels, channels, bias=False)
        self.value = nn.Linear(self.hidden, channels, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """RWKV-4 initialisation: ``mu_k = mu_r = (c/C)^(1 - l/L)``; ``key`` orthogonal with gain
        ``sqrt(hidden/C)``; ``receptance`` and ``value`` zero."""
        r1 = 1.0 - self.layer_id / self.n_layer
        x = torch.arange(self.channels, dtype=torch.float64) / self.channels
        self.time_mix_k.copy_(x ** r1)
        self.time_mix_r.copy_(x ** r1)
        nn.init.orthogonal_(self.key.weight, gain=math.sqrt(max(1.0, self.hidden / self.channels)))
        nn.init.zeros_(self.receptance.weight)
        nn.init.zeros_(self.value.weight)

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor | None = None):
        """``x`` ``[T, B, C]`` -> output ``[T, B, C]`` and ``x[-1]`` (the next call's token-shift input)."""
        xx = token_shift(x, x_prev)
        k = torch.square(torch.relu(self.key(_mix(x, xx, self.time_mix_k))))
        r = torch.sigmoid(self.receptance(_mix(x, xx, self.time_mix_r)))
        return r * self.value(k), x[-1]


class BranchLIF(LIF):
    """The LIF on a SpikeGPT branch output: :class:`~spikeseq.nn.neurons.LIF` made from ``beta`` (SpikingJelly's
    tau = 2 steps: ``beta = 1 - dt/tau_mem`` = 0.5), whose :attr:`beta` is that number exactly in every dtype.

    :class:`LIF` keeps its decay as a float32 time constant ``tau = -dt / ln(beta)`` and recomputes ``exp(-dt /
    tau)``: 0.5 in float32, but 0.49999999895 once the model is float64, where the membranes then drifted from
    SpikingJelly's ``H = V + (X - V)/tau`` by about 1e-8. While the LIF's own decay is within 1e-6 of ``beta`` and
    not trainable (SpikeGPT's is not), ``beta`` itself is returned; otherwise (made trainable, or its time constant
    changed) the LIF's own."""

    def __init__(self, *, beta: float, **kw) -> None:
        super().__init__(beta=beta, **kw)
        self.exact_beta = float(beta)

    @property
    def beta(self) -> torch.Tensor:
        """The decay per step: the exact ``beta`` the LIF was made from, or the LIF's own (class docstring)."""
        b = super().beta
        if b.requires_grad or b.numel() != 1:
            return b
        # chosen on the device (no host sync per call): the exact value where the LIF's own is within 1e-6 of it
        return torch.where((b - self.exact_beta).abs() <= 1e-6, torch.full_like(b, self.exact_beta), b)


class RWKVBlock(StatefulModule):
    """Pre-LayerNorm residual RWKV-4 block, spiking (SpikeGPT) when ``spiking``: ``y, state = blk(x [T, B, C],
    state)``. LIF on each branch output: ``tau_mem`` and ``dt`` in seconds, forward-Euler decay (SpikingJelly's
    discretisation: tau = 2 steps gives beta = 0.5), input scaled by ``1 - beta``, ``v_th``, hard reset."""

    def __init__(self, channels: int, layer_id: int = 0, n_layer: int = 1, *, hidden: int | None = None,
                 spiking: bool = True, tau_mem: float = 2e-3, dt: float = 1e-3, v_th: float = 1.0,
                 surrogate: sg.Surrogate = RWKV_SPIKE_SURROGATE, backend: str = "auto") -> None:
        super().__init__()
        self.channels, self.layer_id, self.spiking = channels, layer_id, bool(spiking)
        self.ln0 = nn.LayerNorm(channels) if layer_id == 0 else None
        self.ln1 = nn.LayerNorm(channels)
        self.ln2 = nn.LayerNorm(channels)
        self.att = RWKVTimeMix(channels, layer_id, n_layer, backend=backend)
        self.ffn = RWKVChannelMix(channels, hidden, layer_id, n_layer)
        self.beta = float(decay_from_tau(tau_mem, dt, "euler"))
        self.tau_mem, self.dt = float(tau_mem), float(dt)
        if self.spiking:
            self.lif_att = BranchLIF(beta=self.beta, dt=dt, v_th=v_th, reset="zero", surrogate=surrogate)
            self.lif_ffn = BranchLIF(beta=self.beta, dt=dt, v_th=v_th, reset="zero", surrogate=surrogate)

    @torch.no_grad()
    def step_weights(self) -> StepWeights:
        """The weights of :meth:`step` rearranged (:class:`StepWeights`), made again whenever a parameter or buffer
        of the block changed (in place, as an optimiser does, moved, or replaced)."""
        cached = _STEP_WEIGHTS.get(self)
        if cached is not None and cached.made.still():
            return cached
        att, ffn = self.att, self.ffn
        fields = (torch.stack([m.weight.t() for m in (att.key, att.value, att.receptance)]).contiguous(),
                  torch.stack((att.time_mix_k, att.time_mix_v, att.time_mix_r)),
                  *(m.weight.t().contiguous() for m in (att.output, ffn.key, ffn.receptance, ffn.value)),
                  torch.stack((ffn.time_mix_k, ffn.time_mix_r)),
                  torch.exp(att.time_decay))
        weights = StepWeights(_Made.of(self), *fields, self._fused_pack(fields))
        _STEP_WEIGHTS[self] = weights
        return weights

    def _branch(self, lif_name: str, y: torch.Tensor, v: torch.Tensor | None):
        if not self.spiking:
            return y, v
        z, st = getattr(self, lif_name)(y * (1 - self.beta), None if v is None else LIFState(v))
        return z, st.v

    def forward(self, x: torch.Tensor, state: RWKVBlockState | None = None):
        """The residual stream ``x`` ``[T, B, C]`` through the block; returns it and the block's new state."""
        if state is not None:
            check_block_state(state, x.shape[-2], x.shape[-1], self.layer_id)
        if self.ln0 is not None:
            x = self.ln0(x)
        s = state
        wkv_in = None if s is None else WKVState(s.wkv_a, s.wkv_b, s.wkv_p)
        y, (att_x, wkv) = self.att(self.ln1(x), None if s is None else s.att_x, wkv_in)
        y, v_att = self._branch("lif_att", y, None if s is None else s.v_att)
        x = x + y
        y, ffn_x = self.ffn(self.ln2(x), None if s is None else s.ffn_x)
        y, v_ffn = self._branch("lif_ffn", y, None if s is None else s.v_ffn)
        x = x + y
        zero = torch.zeros_like(att_x)
        return x, RWKVBlockState(att_x, wkv.a, wkv.b, wkv.p, ffn_x, zero if v_att is None else v_att,
                                 zero if v_ffn is None else v_ffn)


    @torch.no_grad()
    def step(self, x: torch.Tensor, s: RWKVBlockState) -> tuple[torch.Tensor, RWKVBlockState]:
        """One token (RNN mode, inference only): ``x`` ``[B, C]`` and the state -> ``x`` and the new state.

        The same equations as :meth:`forward` written for one token (no dispatch, no autograd): one C++ call where
        the loops run (:mod:`spikeseq.kernels.wkv.block_step`, with the weights :meth:`step_weights` packed), else
        a few torch calls: the mixes of ``k, v, r`` at once and their projections as one batched product, the WKV
        step in the C++ loops of the ``"cpu"`` backend where they run (:func:`spikeseq.kernels.wkv.cpu.step`; else
        :func:`spikeseq.functional.wkv.wkv_update`) and :func:`spikeseq.functional.lif.lif_update`.
        """
        fw = self.step_weights()
        fused = None if fw.packed is None or not block_step.pays(fw.packed) else block_step.run(fw.packed, x, s)
        if fused is not None:
            return fused[0], RWKVBlockState(*fused[1])
        check_block_state(s, x.shape[0], self.channels, self.layer_id)  # the C++ step checked them itself
        if self.ln0 is not None:
            x = F.layer_norm(x, (self.channels,), self.ln0.weight, self.ln0.bias, self.ln0.eps)
        att, C = self.att, self.channels
        h = F.layer_norm(x, (C,), self.ln1.weight, self.ln1.bias, self.ln1.eps)
        # mu h + (1 - mu) x_prev for mu_k, mu_v, mu_r at once, then the three projections
        k, v, r = torch.bmm(_mix(h, s.att_x, fw.mu_kvr[:, None]), fw.kvr)
        # the WKV step in float32 for half-precision models, its state kept in float32 (as the parallel form
        # returns it, and as the rwkv package keeps it): a bfloat16 ``b`` (about 1/(1 - e^-w), 150 at w = e^-5)
        # cannot take the next term (spacing 1 above 128), and drifted to twice its value over 1000 tokens
        wd = wkv_compute_dtype(k)
        args = [t.to(wd) for t in (k, v, s.wkv_a, s.wkv_b, s.wkv_p, fw.w, att.time_first)]
        out = wkv_cpu.step(*args)
        y, a, b, p = wkv_update(*args) if out is None else out
        y = torch.matmul(torch.sigmoid(r) * y.to(k.dtype), fw.out)
        v_att = s.v_att
        if self.spiking:
            y, v_att = self._lif_step(self.lif_att, y, v_att)
        x = x + y
        g = F.layer_norm(x, (C,), self.ln2.weight, self.ln2.bias, self.ln2.eps)
        xk, xr = _mix(g, s.ffn_x, fw.mu_kr[:, None])
        kk = torch.square(torch.relu(torch.matmul(xk, fw.key)))
        y = torch.sigmoid(torch.matmul(xr, fw.receptance)) * torch.matmul(kk, fw.value)
        v_ffn = s.v_ffn
        if self.spiking:
            y, v_ffn = self._lif_step(self.lif_ffn, y, v_ffn)
        return x + y, RWKVBlockState(h, a, b, p, g, v_att, v_ffn)

    def _fused_pack(self, fw_fields: tuple):
        """The block's weights packed for the C++ step (:func:`spikeseq.kernels.wkv.block_step.pack`), or
        ``None`` where it cannot run them. ``fw_fields``: the :class:`StepWeights` fields but ``versions`` and
        ``packed``."""
        kvr, mu_kvr, out, key, receptance, value, mu_kr, w = fw_fields
        lns = [None if ln is None else (ln.weight, ln.bias, ln.eps) for ln in (self.ln0, self.ln1, self.ln2)]
        lif = None
        if self.spiking:
            la, lf = self.lif_att, self.lif_ffn
            if not (torch.equal(la.beta, lf.beta) and torch.equal(la.v_th, lf.v_th)) or la.reset != "zero" \
                    or lf.reset != "zero":
                return None
            lif = (1 - self.beta, la.beta.detach(), la.v_th.detach())
        return block_step.pack(*lns, kvr, mu_kvr, w, self.att.time_first.detach(), out, mu_kr, key, receptance,
                               value, lif)

    def _lif_step(self, lif: LIF, y: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return lif_update(v, y * (1 - self.beta), lif.beta.to(y.dtype), lif.v_th.to(y.dtype), lif.reset,
                          lif.detach_reset, lif.surrogate)


class SpikingEmbedding(nn.Module):
    """Token embedding followed by a Heaviside spike (``z = emb > 0``; ATan(alpha = 2) surrogate backward), the
    binary input layer of SpikeGPT; ``spiking=False`` gives the plain embedding. Time-first ids ``[T, B]`` ->
    ``[T, B, C]``.
    Initialised uniform in +-1e-4 (RWKV-4's embedding scale, specs/models.md §1)."""

    def __init__(self, vocab: int, channels: int, *, spiking: bool = True,
                 surrogate: sg.Surrogate = RWKV_SPIKE_SURROGATE) -> None:
        super().__init__()
        self.vocab, self.spiking, self.surrogate = vocab, bool(spiking), surrogate
        self.weight = nn.Parameter(torch.empty(vocab, channels))
        nn.init.uniform_(self.weight, -1e-4, 1e-4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``[T, B]`` -> binary spikes (or embeddings) ``[T, B, C]``."""
        x = F.embedding(ids, self.weight)
        return sg.spike(x, self.surrogate) if self.spiking else x


class _L2Wrap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits):  # type: ignore[override]
        ctx.save_for_backward(logits)
        return logits.view_as(logits)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (logits,) = ctx.saved_tensors
        if logits.numel() == 0:  # no tokens (an empty batch): nothing to pull
            return grad
        factor = 1e-4 / (logits.numel() // logits.shape[-1])
        mx, ids = logits.max(-1, keepdim=True)
        return grad + torch.zeros_like(logits).scatter_(-1, ids, mx * factor)


def l2wrap(logits: torch.Tensor) -> torch.Tensor:
    """RWKV's L2Wrap (RWKV-LM ``model.py``; specs/models.md §1): the identity on ``logits`` ``[..., V]`` whose
    backward adds ``1e-4 / tokens * max_logit`` to the gradient of each token's largest logit, pulling the logits
    towards small values. RWKV's loss is a mean over the ``tokens`` positions; under a loss summed over tokens
    (spikeseq's ``language_modelling`` task) the pull is relatively ``T`` times weaker."""
    return _L2Wrap.apply(logits)
