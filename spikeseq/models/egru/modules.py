"""EGRU models: a character/word language model, classifiers, and GRU / LSTM baselines trained the same way.

Language models (task ``language_modelling``): ``logits, state = model(x [T, B])`` with token ids (float or int) in,
``logits [T, B, V]`` out: embedding -> recurrent stack -> dropout -> linear decoder. ``EGRULM`` uses
:class:`spikeseq.nn.EGRU` (graded events between layers and to the decoder), ``RNNLM`` ``torch.nn.GRU`` or
``torch.nn.LSTM`` of the same sizes. Classifiers (task ``classification``): ``y, state = model(x [T, B, ...])``
with a linear readout at every step (the recipe's ``readout`` picks the step or the mean).

EGRU hyper-parameters and their sources (specs/models.md §4): ``thr_mean`` (Beta init mean, EvNN default 0.3;
its LMs 0.01), ``eps`` (pseudo-derivative support, EvNN default 1.0; its LMs 3.6), ``zoneout``, ``dropconnect``
(PTB 0.7), ``activity`` (activity regularisation, DVS recipe 0.01) and ``activity_rate`` (the event-rate
budget below which the regulariser stops pushing; 0 = always on). ``prune`` (a table ``{sparsity, start, end,
every}``) prunes every EGRU weight matrix by magnitude during training (:mod:`.prune`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional.egru import DAMPENING, EGRUState
from spikeseq.models.egru.prune import Pruner, PruneSchedule, sparsity
from spikeseq.nn import EGRU, StatefulModule


class _ActivityPenalty(torch.autograd.Function):
    """Identity on ``out``; the backward adds ``strength * d mean(e) / d e`` to the events' gradient, i.e. the
    activity regulariser ``strength * max(0, mean(e) - rate)`` joins whatever loss the task computes from ``out``
    (``rate = 0``: the plain regulariser ``strength * mean(e)``; ``rate > 0``: an event-rate budget that stops
    pushing once the batch's mean event rate is at most ``rate``)."""

    @staticmethod
    def forward(ctx, out: torch.Tensor, e: torch.Tensor, strength: float,  # type: ignore[override]
                rate: float = 0.0):
        ctx.shape, ctx.n = e.shape, e.numel()
        ctx.strength = strength if rate <= 0 or float(e.detach().mean()) > rate else 0.0
        ctx.dtype = e.dtype
        return out.view_as(out)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        return g, torch.full(ctx.shape, ctx.strength / ctx.n, dtype=ctx.dtype, device=g.device), None, None


def prune_schedule(prune: Any) -> PruneSchedule:
    """The :class:`PruneSchedule` of a model's ``prune`` table (``{sparsity, start, end, every, scope}``)."""
    if not isinstance(prune, dict):
        raise ParameterError(f"prune must be a table such as {{sparsity = 0.95, start = 0, end = 1000, every = 50}}, "
                             f"got {prune!r}")
    fields = set(PruneSchedule.__dataclass_fields__)
    unknown = sorted(set(prune) - fields)
    if unknown:
        raise ParameterError(f"unknown prune key(s) {unknown}; known: {sorted(fields)}")
    return PruneSchedule(**prune)


def _positive_int(**sizes: int) -> None:
    for name, v in sizes.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ParameterError(f"{name} must be an integer >= 1, got {v!r}")


def _token_ids(x: torch.Tensor, vocab: int) -> torch.Tensor:
    if x.dim() != 2:
        raise ShapeError(f"a language model takes token ids [T, B], got shape {tuple(x.shape)}")
    if x.is_floating_point() and x.numel():
        if not bool(torch.isfinite(x).all()):
            raise ShapeError("token ids contain NaN or Inf; a language model takes whole-number ids in [0, vocab)")
        if not bool((x == x.round()).all()):
            bad = x[x != x.round()].flatten()[0].item()
            raise ShapeError(f"token ids must be whole numbers (float ids are accepted only when integral), got {bad}")
    elif not x.is_floating_point() and x.dtype == torch.bool:
        raise ShapeError("token ids must be integers, got a bool tensor")
    ids = x.long()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise ShapeError(f"token ids must lie in [0, {vocab}), got [{int(ids.min())}, {int(ids.max())}]")
    return ids


class _EGRUMixin:
    """Pruning, activity penalty and sparsity statistics shared by the EGRU models (``self.rnn`` is the EGRU)."""

    rnn: EGRU
    pruner: Pruner | None

    def _setup_egru(self, prune: dict | None, activity: float, activity_rate: float = 0.0) -> None:
        if isinstance(activity, bool) or not isinstance(activity, int | float) or not (0 <= activity < math.inf):
            raise ParameterError(f"activity (regularisation strength) must be a finite number >= 0, got {activity!r}")
        if not (0.0 <= activity_rate < 1.0):
            raise ParameterError(f"activity_rate (event-rate budget of the regulariser) must lie in [0, 1), got "
                                 f"{activity_rate}")
        self.activity, self.activity_rate = float(activity), float(activity_rate)
        self.pruner = None
        if prune:
            names = [f"rnn.{n}" for n, _ in self.rnn.named_parameters() if n.startswith("weight")]
            self.pruner = Pruner(self, names, prune_schedule(prune))

    def training_budget_warning(self, steps: int) -> str | None:
        """A message when a run of ``steps`` optimizer steps ends before the pruning schedule reaches its level."""
        if self.pruner is None:
            return None
        sched = self.pruner.schedule
        if steps >= sched.end:
            return None
        return (f"the pruning schedule reaches sparsity {sched.sparsity} at optimizer step {sched.end}, but the run "
                f"has {steps} steps: it ends at {sched.at(steps):.3f} (lower model.prune.end, or train longer)")

    def train_step_end(self) -> None:
        """Training-loop hook after each optimizer step: the pruning schedule."""
        if self.pruner is not None:
            self.pruner.step(self)  # type: ignore[arg-type]

    def _penalise(self, out: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
        if self.activity > 0 and torch.is_grad_enabled() and self.training:  # type: ignore[attr-defined]
            return _ActivityPenalty.apply(out, events, self.activity, self.activity_rate)
        return out

    def weight_sparsity(self) -> dict[str, float]:
        """Fraction of zero entries of each EGRU weight matrix."""
        return {n: sparsity(p) for n, p in self.rnn.named_parameters() if n.startswith("weight")}


class EGRULM(_EGRUMixin, StatefulModule):
    """Embedding -> :class:`spikeseq.nn.EGRU` -> dropout -> linear decoder (see the module docstring)."""

    def __init__(self, vocab: int, *, embed: int = 64, hidden: int = 256, layers: int = 1, dropout: float = 0.0,
                 thr_mean: float = 0.3, eps: float = 1.0, dampening: float = DAMPENING, zoneout: float = 0.0,
                 dropconnect: float = 0.0, activity: float = 0.0, activity_rate: float = 0.0,
                 prune: dict | None = None, backend: str = "auto", seed: int | None = None):
        super().__init__()
        _positive_int(vocab=vocab, embed=embed, hidden=hidden, layers=layers)
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = EGRU(embed, hidden, num_layers=layers, dropout=dropout, thr_mean=thr_mean, eps=eps,
                        dampening=dampening, zoneout=zoneout, dropconnect=dropconnect, backend=backend, seed=seed)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden, vocab)
        self._setup_egru(prune, activity, activity_rate)

    def forward_events(self, x: torch.Tensor, state: EGRUState | None = None):
        """``(logits, state, events [layers, T, B, H])``."""
        h = self.embed(_token_ids(x, self.vocab))
        out, state = self.rnn(h, state)
        logits = self.decoder(self.drop(out.y))
        return self._penalise(logits, out.events), state, out.events

    def forward(self, x: torch.Tensor, state: EGRUState | None = None):
        """``logits [T, B, V], state``."""
        logits, state, _ = self.forward_events(x, state)
        return logits, state

    def graph_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids ``[T, B]`` as the event graph's input (:mod:`.lower`): one-hot events ``[T, B, vocab]``."""
        return torch.nn.functional.one_hot(_token_ids(x, self.vocab), self.vocab).float()


class RNNLMState(NamedTuple):
    """State of :class:`RNNLM`: hidden ``h`` and (LSTM) cell ``c``, each ``[layers, B, hidden]``."""

    h: torch.Tensor  #: ``[layers, B, hidden]``
    c: torch.Tensor  #: LSTM cell ``[layers, B, hidden]`` (zeros for a GRU)


class RNNLM(StatefulModule):
    """Embedding -> ``torch.nn.GRU`` / ``torch.nn.LSTM`` -> dropout -> linear decoder: the dense baselines."""

    def __init__(self, vocab: int, *, cell: str = "gru", embed: int = 64, hidden: int = 256, layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        _positive_int(vocab=vocab, embed=embed, hidden=hidden, layers=layers)
        if cell not in ("gru", "lstm"):
            raise ParameterError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.vocab, self.cell = vocab, cell
        self.embed = nn.Embedding(vocab, embed)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(embed, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor, state: RNNLMState | None = None):
        """``logits [T, B, V], state``."""
        h = self.embed(_token_ids(x, self.vocab))
        if self.cell == "gru":
            y, hn = self.rnn(h, None if state is None else state.h)
            new = RNNLMState(hn, torch.zeros_like(hn))
        else:
            y, (hn, cn) = self.rnn(h, None if state is None else (state.h, state.c))
            new = RNNLMState(hn, cn)
        return self.decoder(self.drop(y)), new


class EGRUClassifier(_EGRUMixin, StatefulModule):
    """:class:`spikeseq.nn.EGRU` over flattened inputs ``x [T, B, ...]`` plus a linear readout at every step."""

    def __init__(self, input_size: int, n_classes: int, *, hidden: int = 128, layers: int = 1,
                 dropout: float = 0.0, thr_mean: float = 0.3, eps: float = 1.0, dampening: float = DAMPENING,
                 zoneout: float = 0.0, dropconnect: float = 0.0, activity: float = 0.0, activity_rate: float = 0.0,
                 prune: dict | None = None, backend: str = "auto", seed: int | None = None):
        super().__init__()
        _positive_int(input_size=input_size, n_classes=n_classes, hidden=hidden, layers=layers)
        self.input_size = input_size
        self.rnn = EGRU(input_size, hidden, num_layers=layers, dropout=dropout, thr_mean=thr_mean, eps=eps,
                        dampening=dampening, zoneout=zoneout, dropconnect=dropconnect, backend=backend, seed=seed)
        self.out = nn.Linear(hidden, n_classes)
        self._setup_egru(prune, activity, activity_rate)

    def forward(self, x: torch.Tensor, state: EGRUState | None = None):
        """``y [T, B, classes], state``."""
        if x.dim() < 3 or math.prod(x.shape[2:]) != self.input_size:
            raise ShapeError(f"EGRUClassifier takes [T, B, ...] with {self.input_size} features per step, got "
                             f"{tuple(x.shape)}")
        out, state = self.rnn(x.reshape(x.shape[0], x.shape[1], self.input_size), state)
        return self._penalise(self.out(out.y), out.events), state


class RNNClassifier(StatefulModule):
    """``torch.nn.GRU`` / ``torch.nn.LSTM`` over flattened inputs plus a linear readout at every step."""

    def __init__(self, input_size: int, n_classes: int, *, cell: str = "gru", hidden: int = 128, layers: int = 1):
        super().__init__()
        _positive_int(input_size=input_size, n_classes=n_classes, hidden=hidden, layers=layers)
        if cell not in ("gru", "lstm"):
            raise ParameterError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.input_size = input_size
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(input_size, hidden, num_layers=layers)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor, state: Any = None):
        """``y [T, B, classes], state``."""
        if x.dim() < 3 or math.prod(x.shape[2:]) != self.input_size:
            raise ShapeError(f"RNNClassifier takes [T, B, ...] with {self.input_size} features per step, got "
                             f"{tuple(x.shape)}")
        y, s = self.rnn(x.reshape(x.shape[0], x.shape[1], self.input_size), state)
        return self.out(y), s


def build_egru_lm(**kw: Any) -> EGRULM:
    """Recipe builder ``egru_lm``."""
    return EGRULM(**kw)


def build_gru_lm(**kw: Any) -> RNNLM:
    """Recipe builder ``gru_lm`` (the dense GRU baseline)."""
    return RNNLM(cell="gru", **kw)


def build_lstm_lm(**kw: Any) -> RNNLM:
    """Recipe builder ``lstm_lm`` (the dense LSTM baseline)."""
    return RNNLM(cell="lstm", **kw)


def build_egru_classifier(**kw: Any) -> EGRUClassifier:
    """Recipe builder ``egru_classifier``."""
    return EGRUClassifier(**kw)


def build_rnn_classifier(**kw: Any) -> RNNClassifier:
    """Recipe builder ``rnn_classifier`` (``cell = "gru" | "lstm"``)."""
    return RNNClassifier(**kw)
