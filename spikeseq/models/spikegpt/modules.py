"""SpikeGPT (Zhu et al., TMLR 2024) and the non-spiking RWKV-4 of the same shape: config and model.

The network (blocks: :mod:`spikeseq.nn.rwkv`): ids -> embedding (binary spikes in SpikeGPT) -> LN0 -> ``n_layer``
RWKV blocks (LIF on each branch output in SpikeGPT) -> LN -> head. ``model(ids [T, B], state)`` returns logits
``[T, B, vocab]`` and :class:`SpikeGPTState`; the same call with ``T = 1`` and the returned state is RNN mode
(generation; constant memory, no length limit). The parallel form refuses ``T > ctx_len`` (the training context).
During training the logits pass through RWKV's L2Wrap (:func:`spikeseq.nn.rwkv.l2wrap`).

Presets (``size``): the paper's ``"46m"`` (12 x 512, ctx 1024, enwik8) and ``"216m"`` (18 x 768, ctx 1024,
GPT-NeoX vocabulary 50,277), specs/models.md §1; ``"cpu_small"`` (4 x 128, ctx 64: nanoGPT's CPU Shakespeare
size) and ``"tiny"`` (2 x 32, ctx 32, for tests).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.errors import ConfigError, NonFiniteError, ShapeError
from spikeseq.nn.rwkv import RWKVBlock, RWKVBlockState, SpikingEmbedding, initial_block_state, l2wrap

PRESETS: dict[str, dict[str, int]] = {
    "46m": {"n_layer": 12, "n_embd": 512, "ctx_len": 1024},
    "216m": {"n_layer": 18, "n_embd": 768, "ctx_len": 1024, "vocab": 50277},
    "cpu_small": {"n_layer": 4, "n_embd": 128, "ctx_len": 64},
    "tiny": {"n_layer": 2, "n_embd": 32, "ctx_len": 32},
}


@dataclass(frozen=True)
class SpikeGPTConfig:
    """Shape and neuron constants. ``tau_mem``/``dt`` in seconds (SpikingJelly's tau = 2 steps: 2 ms at 1 ms,
    forward-Euler decay 0.5), ``v_th`` the LIF threshold; ``spiking=False`` is RWKV-4 (same code, spikes off)."""

    vocab: int = 256
    n_layer: int = 4
    n_embd: int = 128
    ctx_len: int = 64
    hidden: int | None = None
    spiking: bool = True
    tau_mem: float = 2e-3
    dt: float = 1e-3
    v_th: float = 1.0
    l2wrap: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab", "n_layer", "n_embd", "ctx_len", "hidden"):
            v = getattr(self, name)
            if name == "hidden" and v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"SpikeGPT config: {name} must be a positive integer, got {v!r}"
                                  + (" (or leave hidden unset for 4 x n_embd)" if name == "hidden" else ""))

    @classmethod
    def from_kwargs(cls, size: str | None = None, **kw: Any) -> SpikeGPTConfig:
        """A preset (``size``) overridden by keyword arguments; unknown keys name the known ones."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(kw) - known)
        if bad:
            raise ConfigError(f"unknown SpikeGPT option(s) {', '.join(bad)}; known: size, {', '.join(sorted(known))}")
        base: dict[str, Any] = {}
        if size is not None:
            if size not in PRESETS:
                raise ConfigError(f"unknown SpikeGPT size {size!r}; known: {', '.join(PRESETS)}")
            base = dict(PRESETS[size])
        base.update(kw)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints)."""
        return asdict(self)


class SpikeGPTState(NamedTuple):
    """RNN state of the whole model: one :class:`~spikeseq.nn.rwkv.RWKVBlockState` per block."""

    blocks: tuple[RWKVBlockState, ...]


def check_state_finite(state: SpikeGPTState) -> None:
    """Raise :class:`~spikeseq.errors.NonFiniteError` naming the field (``state.blocks[i].<field>``) when a
    SpikeGPT state holds a NaN or an Inf; ``wkv_p`` may be ``-inf`` (an empty WKV history, like its initial
    ``-1e38``, -65504 in float16). Checked before any computation, the same for :meth:`SpikeGPT.forward` and
    :meth:`SpikeGPT.step` on every path: otherwise the fused C++ step and the torch step would run on silently (a
    NaN membrane never spikes, so the logits stay finite while the state stays NaN) and the non-spiking model would
    return NaN logits, where the parallel form's LIF raised. One reduction over all fields at once (a few
    microseconds per token); field by field only when it finds something (or the fields cannot be stacked)."""
    try:
        with torch.no_grad():
            lo, hi = torch.aminmax(torch.stack([t for blk in state.blocks for t in blk]))
        if math.isfinite(float(lo)) and math.isfinite(float(hi)):
            return
    except (RuntimeError, TypeError):  # not all tensors, or of other shapes, dtypes, devices: field by field below
        pass
    for i, blk in enumerate(state.blocks):
        if not isinstance(blk, RWKVBlockState):
            continue
        for name, t in zip(RWKVBlockState._fields, blk, strict=True):
            if not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
                continue
            t = t.detach()
            bad = torch.isnan(t) | (t == math.inf) if name == "wkv_p" else ~torch.isfinite(t)
            if bool(bad.any()):
                rows = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten().tolist() if bad.dim() else []
                raise NonFiniteError(
                    f"SpikeGPT state.blocks[{i}].{name} contains NaN or Inf (batch rows {rows[:10]}); pass the "
                    "state a call of this model returned, or state=None (model.initial_state(B)) to start again, "
                    "and find where it became non-finite (the weights, or a state edited by hand)")


class SpikeGPT(nn.Module):
    """SpikeGPT / RWKV-4 language model: ``logits, state = model(ids [T, B], state=None)`` (see module docstring)."""

    def __init__(self, config: SpikeGPTConfig) -> None:
        super().__init__()
        c = self.config = config
        self.input_shape = (1,)  # one token id per step (for spikeseq.graph.trace, whose lowering refuses)
        self.emb = SpikingEmbedding(c.vocab, c.n_embd, spiking=c.spiking)
        self.blocks = nn.ModuleList(
            RWKVBlock(c.n_embd, i, c.n_layer, hidden=c.hidden, spiking=c.spiking, tau_mem=c.tau_mem, dt=c.dt,
                      v_th=c.v_th) for i in range(c.n_layer))
        self.ln_out = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, c.vocab, bias=False)
        nn.init.orthogonal_(self.head.weight, gain=0.5 * (c.vocab / c.n_embd) ** 0.5 if c.vocab > c.n_embd else 0.5)

    def initial_state(self, batch: int, *, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> SpikeGPTState:
        """The state before the first token (in the model's dtype unless ``dtype`` is given)."""
        dtype = self.emb.weight.dtype if dtype is None else dtype
        return SpikeGPTState(tuple(initial_block_state(batch, self.config.n_embd, dtype=dtype, device=device)
                                   for _ in self.blocks))

    def check_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` as int64, or :class:`~spikeseq.errors.ShapeError` / ConfigError naming what is wrong."""
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
            raise ShapeError(f"SpikeGPT takes time-first token ids [T, B], got "
                             f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
        if ids.shape[0] == 0:
            raise ShapeError(f"SpikeGPT got no tokens (ids of shape {tuple(ids.shape)}, time-first [T, B]); T must "
                             "be >= 1")
        if ids.dtype == torch.bool or ids.is_complex():
            raise ShapeError(f"SpikeGPT takes integer token ids, got dtype {ids.dtype}; encode the text with the "
                             "run's vocabulary (spikeseq.data.charlm.encode) and pass int64 ids")
        if ids.is_floating_point():
            if not bool((ids == ids.round()).all()):
                raise ShapeError("SpikeGPT takes integer token ids; got non-integer values")
        ids = ids.long()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab):
            bad = ids[(ids < 0) | (ids >= self.config.vocab)]
            raise ConfigError(f"token id {int(bad[0])} is outside the vocabulary [0, {self.config.vocab}); the "
                              f"model was built for vocab = {self.config.vocab}: encode with the run's vocabulary or "
                              "build the model with a larger vocab")
        return ids

    def forward(self, ids: torch.Tensor, state: SpikeGPTState | None = None):
        """Logits ``[T, B, vocab]`` and the state after the last token; ``T > ctx_len`` is refused (use RNN mode:
        call with chunks of at most ``ctx_len`` tokens, or one token at a time, carrying the state)."""
        ids = self.check_ids(ids)
        T = ids.shape[0]
        if T > self.config.ctx_len:
            raise ConfigError(f"{T} tokens exceed the parallel form's context ctx_len = {self.config.ctx_len}; "
                              "feed them in pieces of at most ctx_len tokens (or one at a time) carrying the state: "
                              "the RNN form has no length limit")
        self._check_state(state)
        x = self.emb(ids)
        new = []
        for i, blk in enumerate(self.blocks):
            x, s = blk(x, None if state is None else state.blocks[i])
            new.append(s)
        logits = self.head(self.ln_out(x))
        if self.training and self.config.l2wrap and torch.is_grad_enabled():
            logits = l2wrap(logits)
        return logits, SpikeGPTState(tuple(new))


    def _check_state(self, state: object) -> None:
        """ShapeError unless ``state`` is ``None`` or a :class:`SpikeGPTState` with one block state per block (the
        blocks check their fields' shapes against the input); NonFiniteError naming the field when it holds a NaN
        or an Inf (:func:`check_state_finite`)."""
        if state is None:
            return
        if not isinstance(state, SpikeGPTState):
            raise ShapeError(f"state must be a SpikeGPTState (the state a call returned) or None, got "
                             f"{type(state).__name__}")
        if len(state.blocks) != len(self.blocks):
            raise ShapeError(f"state has {len(state.blocks)} blocks, the model {len(self.blocks)}; pass state=None "
                             "or the state returned by this model")
        check_state_finite(state)

    def rwkv_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as the ``rwkv`` package's RWKV-4 checkpoint (non-spiking only; see :mod:`.interop`)."""
        from spikeseq.models.spikegpt.interop import rwkv_state_dict

        return rwkv_state_dict(self)

    @torch.no_grad()
    def step(self, ids: torch.Tensor, state: SpikeGPTState | None = None) -> tuple[torch.Tensor, SpikeGPTState]:
        """RNN mode for generation: one token per sequence, ``ids`` ``[B]`` -> logits ``[B, vocab]`` and the new
        state (inference only; the same equations as :meth:`forward`, see :meth:`RWKVBlock.step`). A state holding a
        NaN or an Inf raises :class:`~spikeseq.errors.NonFiniteError` naming the field, as :meth:`forward` does
        (:func:`check_state_finite`), whichever path (C++ or torch) would run the step."""
        if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
            raise ShapeError(f"SpikeGPT.step takes one token id per sequence, ids [B], got "
                             f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__}; "
                             "use the model's forward for [T, B] ids")
        ids = self.check_ids(ids.reshape(1, -1))[0]
        self._check_state(state)
        if state is None:
            state = self.initial_state(ids.shape[0], device=ids.device)
        x = self.emb(ids.unsqueeze(0))[0]
        new = []
        for blk, s in zip(self.blocks, state.blocks, strict=True):
            x, s = blk.step(x, s)
            new.append(s)
        ln = self.ln_out
        return F.linear(F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps), self.head.weight), \
            SpikeGPTState(tuple(new))


def build_spikegpt(size: str | None = None, **kw: Any) -> SpikeGPT:
    """SpikeGPT (spiking) from a preset ``size`` and/or explicit options (:class:`SpikeGPTConfig`)."""
    if "spiking" in kw:
        raise ConfigError("model 'spikegpt' is the spiking model; use model 'rwkv4' for the non-spiking baseline")
    return SpikeGPT(SpikeGPTConfig.from_kwargs(size, spiking=True, **kw))


def build_rwkv4(size: str | None = None, **kw: Any) -> SpikeGPT:
    """The non-spiking RWKV-4 of the same shape (same code, spikes off)."""
    if "spiking" in kw:
        raise ConfigError("model 'rwkv4' is the non-spiking baseline; use model 'spikegpt' for the spiking one")
    return SpikeGPT(SpikeGPTConfig.from_kwargs(size, spiking=False, **kw))
