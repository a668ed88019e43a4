"""Feed-forward LIF network with learnable synaptic delays (DCLS): the SHD/SSC recipe of the delay paper.

Hammouamri, Khalfaoui-Hassani, Masquelier, "Learning Delays in Spiking Neural Networks using Dilated
Convolutions with Learnable Spacings", ICLR 2024 (arXiv 2306.17670); code Thvnvtos/SNN-delays; all settings below
from ``specs/models.md`` §5 (``best_config_SHD.py`` / ``best_config_SSC.py``, ``snn_delays.py``):

    x [T, B, 140] -> (DelayLinear -> BatchNorm -> LIF -> Dropout) x n_layers -> DelayLinear -> LI readout
    loss = cross_entropy(sum_t softmax(v_out[t]), y)            (the paper's loss "sum")

- Inputs: 700 cochlea channels merged by 5 -> 140, 10 ms bins (``SHDDataset(dt=10e-3, downsample=5)``).
- Delays: up to 25 taps of 10 ms (``max_delay=24`` here: delays 0..240 ms), Gaussian taps with the sigma schedule
  of :func:`spikeseq.functional.delay.sigma_schedule` during training, rounded integer delays at evaluation.
  Positions have their own learning rate (Adam 0.1 = 100 x the weights', cosine annealing; weights Adam 1e-3,
  one-cycle to 5e-3, wd 1e-5): :meth:`DelaySNN.parameter_groups`.
- Neurons: SpikingJelly ``LIFNode(tau=10.05 ms / 10 ms, decay_input=False, v_threshold=1, hard reset to 0,
  detach_reset=True, ATan(alpha=5))``. SpikingJelly integrates ``V <- V - V/tau + I`` (forward Euler), so the per-step
  decay is ``1 - dt/tau = 0.004975`` for SHD (neurons keep 0.5% of V per step, temporal integration comes from
  the delays); we give :class:`spikeseq.nn.LIF` exactly that decay (``decay_from_tau(..., method="euler")``).
  SpikingJelly fires at ``V >= 1``, spikeseq at ``V > 1`` (differs only on a set of measure zero).
- Readout: the paper's output LIF has ``v_th = 1e9`` (never fires), i.e. a leaky integrator ``v = beta v + I``:
  :class:`spikeseq.nn.LI` with the same decay.
- Batch norm over (time, batch) per channel (SpikingJelly multi-step ``BatchNorm1d``); dropout masks are drawn once
  per sequence and shared by all time steps (SpikingJelly ``layer.Dropout``).
- Padding: the paper pads each delay layer's output by ``(K-1)//2`` steps at the end; here the input gets
  ``pad_end`` silent steps instead (default ``(n_layers + 1) * (max_delay // 2)``, the same total), so the readout
  also sees the delayed tail: :meth:`DelaySNN.pad` (or ``[data] pad_end`` in a recipe). The model itself never
  pads: its output is as long as its input, with or without a state.

Variants (``delays=``): ``"learned"`` (the paper), ``"fixed"`` (random integer delays, not trained: the paper's
ablation), ``"none"`` (plain dense synapses).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq import surrogate as sg
from spikeseq.checks import check_sequence
from spikeseq.errors import ConfigError, ShapeError
from spikeseq.functional.delay import check_max_delay, sigma_schedule
from spikeseq.functional.discretize import decay_from_tau
from spikeseq.nn import LI, LIF, DelayLinear, StatefulModule

VARIANTS = ("learned", "fixed", "none")


@dataclass
class DelaySNNConfig:
    """Hyper-parameters of :class:`DelaySNN`; defaults are the paper's SHD setting (``specs/models.md`` §5)."""

    n_inputs: int = 140
    n_outputs: int = 20
    n_hidden: int = 256
    n_layers: int = 2
    max_delay: int = 24
    delays: str = "learned"
    dt: float = 10e-3
    tau_mem: float = 10.05e-3
    v_th: float = 1.0
    surrogate_alpha: float = 5.0
    dropout: float = 0.4
    batchnorm: bool = True
    bias: bool = False
    pad_end: int | None = None
    backend: str = "auto"
    # optimiser settings of the recipe (used by examples / the training loop, not by the module)
    train: dict[str, Any] = field(default_factory=lambda: dict(
        epochs=150, batch_size=256, lr_w=1e-3, max_lr_w=5e-3, weight_decay=1e-5, lr_pos=0.1,
        final_epoch_fraction=0.25))

    @classmethod
    def shd(cls, **overrides: Any) -> DelaySNNConfig:
        """SHD: 140 inputs, 2 x 256 hidden, dropout 0.4, 25 taps of 10 ms, tau 10.05 ms, 150 epochs, batch 256."""
        return cls(**overrides)

    @classmethod
    def ssc(cls, **overrides: Any) -> DelaySNNConfig:
        """SSC: 35 classes, 3 x 512 hidden, dropout 0.25, 31 taps (300 ms made odd), tau 15 ms, 60 epochs, batch 128."""
        base: dict[str, Any] = dict(n_outputs=35, n_hidden=512, n_layers=3, max_delay=30, tau_mem=15e-3,
                                    dropout=0.25)
        base["train"] = dict(epochs=60, batch_size=128, lr_w=1e-3, max_lr_w=5e-3, weight_decay=1e-5, lr_pos=0.1,
                             final_epoch_fraction=0.25)
        base.update(overrides)
        return cls(**base)

    def __post_init__(self) -> None:
        if self.delays not in VARIANTS:
            raise ConfigError(f"delays must be one of {', '.join(VARIANTS)}, got {self.delays!r}")
        for name in ("n_inputs", "n_outputs", "n_hidden", "n_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"delay_snn {name} must be an integer >= 1, got {v!r}")
        if self.delays != "none":
            check_max_delay(self.max_delay)  # before pad_end, which is computed from it
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pad_end is None:
            self.pad_end = 0 if self.delays == "none" else (self.n_layers + 1) * (self.max_delay // 2)
        if isinstance(self.pad_end, bool) or not isinstance(self.pad_end, int) or self.pad_end < 0:
            raise ConfigError(f"pad_end must be an integer >= 0 (silent steps appended to each input), got "
                              f"{self.pad_end!r}")

    @property
    def beta(self) -> float:
        """Per-step membrane decay ``1 - dt/tau`` (SpikingJelly's Euler update with ``decay_input=False``)."""
        return float(decay_from_tau(self.tau_mem, self.dt, method="euler"))


class DenseSynapse(StatefulModule):
    """The "no delays" synapses: ``y[t] = x[t] @ W^T (+ b)``."""

    def __init__(self, n_in: int, n_out: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x: torch.Tensor, state=None):
        """``y [T, B, out] = x @ W^T (+ b)``; no state (``None``)."""
        return F.linear(x, self.weight, self.bias), None

    forward_integer = forward  #: dense synapses have no delays: the integer semantics are the same


class DelaySNNState(NamedTuple):
    """State of :class:`DelaySNN`: per synaptic layer its ``DelayState`` (or ``None``), per hidden layer its
    ``LIFState``, and the readout's ``LIState``.
    """

    synapses: tuple  # per synaptic layer: DelayState or None
    neurons: tuple  # per hidden layer: LIFState
    readout: Any  # LIState


class DelaySNN(StatefulModule):
    """``v_out, state = model(x [T, B, n_inputs], state=None)``; ``v_out`` is ``[T, B, C]`` whether or not a state
    is passed. :meth:`pad` appends the recipe's ``pad_end`` silent steps (the paper's padding) to an input;
    :meth:`forward_integer` runs the integer-delay semantics (after :meth:`round_delays`; raises otherwise).
    """

    def __init__(self, config: DelaySNNConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = config if config is not None else DelaySNNConfig(**overrides)
        if config is not None and overrides:
            cfg = DelaySNNConfig(**{**asdict(config), **overrides})
        self.config = cfg
        sizes = [cfg.n_inputs] + [cfg.n_hidden] * cfg.n_layers + [cfg.n_outputs]
        surrogate = sg.ATan(alpha=cfg.surrogate_alpha)
        self.synapses = nn.ModuleList()
        for a, b in itertools.pairwise(sizes):
            if cfg.delays == "none":
                syn: StatefulModule = DenseSynapse(a, b, cfg.bias)
            else:
                syn = DelayLinear(a, b, cfg.max_delay, bias=cfg.bias, learn_delay=cfg.delays == "learned")
            nn.init.kaiming_uniform_(syn.weight, nonlinearity="relu")  # SNN-delays init_w_method
            self.synapses.append(syn)
        self.norms = nn.ModuleList(
            [nn.BatchNorm1d(cfg.n_hidden) if cfg.batchnorm else nn.Identity() for _ in range(cfg.n_layers)])
        self.neurons = nn.ModuleList([
            LIF(beta=cfg.beta, dt=cfg.dt, v_th=cfg.v_th, reset="zero", detach_reset=True, surrogate=surrogate,
                backend=cfg.backend) for _ in range(cfg.n_layers)])
        self.readout = LI(beta=cfg.beta, dt=cfg.dt, backend=cfg.backend)

    @property
    def input_shape(self) -> tuple[int]:
        """Per-sample input shape ``(n_inputs,)`` (read by :func:`spikeseq.graph.trace`)."""
        return (self.config.n_inputs,)

    # ---- delays -------------------------------------------------------------------------------------------
    def delay_layers(self) -> list[DelayLinear]:
        """The :class:`~spikeseq.nn.DelayLinear` layers, input side first."""
        return [m for m in self.synapses if isinstance(m, DelayLinear)]

    def set_sigma(self, sigma: float) -> None:
        """Set the Gaussian width ``sigma`` (steps) of every delay layer."""
        for m in self.delay_layers():
            m.set_sigma(sigma)

    def sigma_for_epoch(self, epoch: int, epochs: int) -> float:
        """The paper's schedule: from ``max_delay/2`` to 0.23 over the first ``final_epoch_fraction`` of the epochs."""
        final = max(1, round(epochs * float(self.config.train.get("final_epoch_fraction", 0.25))))
        return sigma_schedule(epoch, sigma_init=self.config.max_delay / 2, final_epoch=final)

    def clamp_delays_(self) -> None:
        """Clamp every delay into ``[0, max_delay]`` in place (after each optimizer step, as the paper)."""
        for m in self.delay_layers():
            m.clamp_delays_()

    def round_delays(self) -> DelaySNN:
        """Clamp and round every delay to whole steps in place (integer-delay inference, export); returns ``self``."""
        for m in self.delay_layers():
            m.round_delays()
        return self

    def freeze_delays(self) -> DelaySNN:
        """Round and freeze all delays (fine-tuning with integer delays; see :meth:`DelayLinear.freeze_delays`)."""
        for m in self.delay_layers():
            m.freeze_delays()
        return self

    def integer_weights_and_delays(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per synaptic layer ``(W [out, in], D [out, in] int64 steps)``; needs :meth:`round_delays` first."""
        return [m.integer_weights_and_delays() for m in self.delay_layers()]

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """``(weights and BN parameters, delay positions)``: the paper trains them with separate optimisers."""
        pos = [m.delay for m in self.delay_layers() if m.delay.requires_grad]
        ids = {id(p) for p in pos}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in ids], pos

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named groups for :mod:`spikeseq.train.optim`: ``weights`` (and BN) and ``delays`` (positions; empty
        when the delays are fixed or absent), trained with their own lr and schedule in the paper's recipe."""
        weights, pos = self.parameter_groups()
        return {"weights": weights, "delays": pos}

    def train_epoch_start(self, epoch: int, epochs: int) -> None:
        """Training-loop hook: the Gaussian kernel width of this epoch (:meth:`sigma_for_epoch`)."""
        self.set_sigma(self.sigma_for_epoch(epoch, epochs))

    def train_step_end(self) -> None:
        """Training-loop hook: keep the delay positions in ``[0, max_delay]`` after every optimizer step."""
        self.clamp_delays_()

    def initial_state(self, batch_size: int) -> DelaySNNState:
        """Silence before the sequence, for streaming."""
        syn = tuple(m.initial_state(batch_size) if isinstance(m, DelayLinear) else None for m in self.synapses)
        return DelaySNNState(syn, (None,) * len(self.neurons), None)

    # ---- forward ------------------------------------------------------------------------------------------
    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, ...]`` followed by ``config.pad_end`` silent steps (``[T + pad_end, B, ...]``), so that the
        readout also sees the spikes delayed past the end (the paper pads each layer's output instead; same total).
        Training through ``spikeseq train`` does this with ``[data] pad_end``."""
        return F.pad(x, (0, 0) * (x.dim() - 1) + (0, self.config.pad_end))

    def forward(self, x: torch.Tensor, state: DelaySNNState | None = None):
        """``v_out [T, B, n_outputs], state`` from ``x [T, B, n_inputs]`` (or frames ``[T, B, ...]`` of ``n_inputs``
        values, flattened per step): the eval/train path of each synapse (see :class:`DelayLinear`)."""
        return self._run(x, state, integer=False)

    def forward_integer(self, x: torch.Tensor, state: DelaySNNState | None = None):
        """Like :meth:`forward` with integer delays exactly (needs :meth:`round_delays` first): the semantics of the
        exported graph."""
        return self._run(x, state, integer=True)

    def _run(self, x: torch.Tensor, state: DelaySNNState | None, integer: bool):
        check_sequence(x, min_rank=3)
        if x.dim() > 3:  # frames [T, B, C, H, W] (N-MNIST): one flat vector per step, as the lowering's Flatten
            x = x.flatten(2)
        if x.shape[-1] != self.config.n_inputs:
            raise ShapeError(f"expected x [T, B, {self.config.n_inputs}] (or frames of {self.config.n_inputs} "
                             f"values per step), got shape {tuple(x.shape)}")
        if state is None:
            state = DelaySNNState((None,) * len(self.synapses), (None,) * len(self.neurons), None)
        elif not isinstance(state, DelaySNNState) or len(state.synapses) != len(self.synapses) \
                or len(state.neurons) != len(self.neurons):
            raise ShapeError(f"state must be a DelaySNNState with {len(self.synapses)} synapse and "
                             f"{len(self.neurons)} neuron states (the state a call of this model returned, or "
                             f"initial_state(batch)), got {type(state).__name__}")
        syn_s, neu_s = list(state.synapses), list(state.neurons)
        keep = None if not (self.training and self.config.dropout > 0) else 1 - self.config.dropout
        for k, (norm, lif) in enumerate(zip(self.norms, self.neurons)):
            x, syn_s[k] = self._synapse(k, x, syn_s[k], integer)
            t, b, c = x.shape
            x = norm(x.reshape(t * b, c)).reshape(t, b, c)
            x, neu_s[k] = lif(x, neu_s[k])
            if keep is not None:  # one mask per sequence, shared by all steps (SpikingJelly layer.Dropout)
                x = x * (torch.bernoulli(torch.full((b, c), keep, device=x.device, dtype=x.dtype)) / keep)
        x, syn_s[-1] = self._synapse(len(self.synapses) - 1, x, syn_s[-1], integer)
        v, ro = self.readout(x, state.readout)
        return v, DelaySNNState(tuple(syn_s), tuple(neu_s), ro)

    def _synapse(self, k: int, x: torch.Tensor, state, integer: bool):
        syn = self.synapses[k]
        return syn.forward_integer(x, state) if integer else syn(x, state)


def sum_softmax(v: torch.Tensor) -> torch.Tensor:
    """The paper's readout: ``sum_t softmax(v[t])`` over classes, ``[T, B, C] -> [B, C]``."""
    return torch.softmax(v, dim=-1).sum(0)


def sum_softmax_loss(v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The paper's loss "sum": cross-entropy taking :func:`sum_softmax` as the logits (SNN-delays ``calc_loss``)."""
    return F.cross_entropy(sum_softmax(v), y)


def predict(v: torch.Tensor) -> torch.Tensor:
    """Predicted classes ``[B]``: the argmax of :func:`sum_softmax` of the readout ``v [T, B, C]``."""
    return sum_softmax(v).argmax(-1)


def build(**cfg: Any) -> DelaySNN:
    """``registry.build("delay_snn", delays="learned"|"fixed"|"none", recipe="shd"|"ssc", **config)``."""
    recipe = cfg.pop("recipe", "shd")
    if recipe not in ("shd", "ssc"):
        raise ConfigError(f"recipe must be 'shd' or 'ssc', got {recipe!r}")
    try:
        config = DelaySNNConfig.shd(**cfg) if recipe == "shd" else DelaySNNConfig.ssc(**cfg)
    except TypeError as e:
        raise ConfigError(f"bad delay_snn option: {e}") from e
    return DelaySNN(config)


__all__ = ["VARIANTS", "DelaySNN", "DelaySNNConfig", "DelaySNNState", "build", "predict", "sum_softmax",
           "sum_softmax_loss"]
