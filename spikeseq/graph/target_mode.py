"""Target mode of a model: it computes with the target's arithmetic, so its export computes what was trained.

    tm = target_mode(model, "loihi", input_frac_bits=k)      # an nn.Module: y, _ = tm(x [T, B, ...])
    loss(tm(x)[0]).backward()                                 # gradients reach model's own parameters

:class:`TargetMode` traces the model every forward pass (:func:`spikeseq.graph.trace.trace_bound`: the IR plus the
torch tensors of its synapse arrays), quantises it with the exporter's rules and runs the quantised graph with the
target's arithmetic (:func:`spikeseq.graph.target_forward.target_forward`: straight-through estimators for the
rounding, surrogate gradients for the spikes). In target mode BatchNorm uses its running statistics (folded into
the synapse, as the export does), dropout is off, learnable delays are rounded to whole steps and frozen, decays
and thresholds are held (the target's integer decays and thresholds are derived from them), and the output is the
exported graph's readout, aligned to the input steps, with the model's readout transform
(``metadata["output_transform"]``). The checkpoint stays a plain model checkpoint: ``spikeseq export`` of the run
writes the graph target mode computed, spike for spike.

Recipes use it through ``[train] target`` (:mod:`spikeseq.train.target`, which also picks the settings from the
config and keeps them in the run for ``spikeseq export``).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from spikeseq import surrogate as sg
from spikeseq.errors import ConfigError, ExportError, ParameterError, SpikeseqError
from spikeseq.graph import ir
from spikeseq.graph.quantize import LOIHI_REFUSAL, quantize, scale_input_synapses
from spikeseq.graph.target_forward import TARGETS, TargetResult, target_forward
from spikeseq.graph.trace import graph_inputs, infer_input_shape, lowering_for, trace, trace_bound
from spikeseq.nn import DelayLinear, Sequential

__all__ = ["NUMERIC_KEYS", "TARGETS", "TargetMode", "TargetSettings", "check_target",
           "output_transform", "target_mode"]

#: the keys of ``[export.<target>]`` that change the numerics target mode computes with
NUMERIC_KEYS: tuple[str, ...] = ("weight_exp", "reset_policy", "input_bits", "payload_frac_bits")


@dataclass(frozen=True)
class TargetSettings:
    """Everything that decides the target numerics: the ``target``, the Loihi weight exponent and reset policy
    (as :func:`~spikeseq.graph.quantize.quantize`), for real-valued inputs on Loihi the payload width
    ``input_bits`` and fractional bits ``input_frac_bits`` (``None``: integer inputs, sent as they are), and on
    SpiNNaker2 the fixed-point bits of graded populations' payloads ``payload_frac_bits`` (``None``: float32)."""

    target: str
    weight_exp: int = 0
    reset_policy: str = "strict"
    input_bits: int = 8
    input_frac_bits: int | None = None
    payload_frac_bits: int | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}; target mode trains for one of {', '.join(TARGETS)}")
        if not 2 <= int(self.input_bits) <= 24:
            raise ConfigError(f"target mode: input_bits must be in 2..24 (Lava graded payloads carry up to 24 "
                              f"bits), got {self.input_bits}")
        if self.input_frac_bits is not None and int(self.input_frac_bits) != self.input_frac_bits:
            raise ConfigError(f"target mode: input_frac_bits must be a whole number of bits, got "
                              f"{self.input_frac_bits!r}")
        if self.input_frac_bits is not None and self.target != "loihi":
            raise ConfigError(f"target mode: input_frac_bits is a Loihi setting (real-valued inputs as graded "
                              f"fixed-point payloads); {self.target} takes real inputs as they are")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (stored in checkpoints and results)."""
        return asdict(self)

    def quantize_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~spikeseq.graph.quantize.quantize` for these settings."""
        if self.target == "loihi":
            return {"weight_exp": self.weight_exp, "reset_policy": self.reset_policy}
        return {} if self.payload_frac_bits is None else {"payload_frac_bits": self.payload_frac_bits}

    def export_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`spikeseq.verify.export_and_verify` that reproduce these numerics."""
        kw = self.quantize_kwargs()
        if self.input_frac_bits is not None:
            kw.update(input_bits=self.input_bits, input_frac_bits=self.input_frac_bits)
        return kw


def _model_dt(model: nn.Module) -> float | None:
    for m in model.modules():
        dt = getattr(m, "dt", None)
        if isinstance(dt, float | int) and not isinstance(dt, bool) and dt > 0:
            return float(dt)
    return None


def _freeze_delays(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, DelayLinear):
            m.freeze_delays()


class TargetMode(nn.Module):
    """``y, None = tm(x [T, B, ...])``: ``model`` computed with the numerics of ``settings`` (module docstring).

    ``model``'s parameters are the ones trained (``tm.parameters()`` are the model's); ``dt`` defaults to the model's
    own; ``surrogate`` overrides every population's spike surrogate in the backward pass (scaled to each
    population's float units; default: each population differentiates its spikes as its own neuron module does in
    float training, surrogate and ``detach_reset`` alike, :mod:`spikeseq.graph.target_forward`);
    ``integer_inputs``: whether the data are integers (``None``: checked every batch; the training loop knows it from
    checking the whole training split once). Creating it rounds and freezes the model's learnable delays.
    """

    def __init__(self, model: nn.Module, settings: TargetSettings, *, dt: float | None = None,
                 surrogate: sg.Surrogate | None = None, integer_inputs: bool | None = None) -> None:
        super().__init__()
        self.model = model
        self.integer_inputs = integer_inputs
        self.settings = settings
        self.dt = dt if dt is not None else _model_dt(model)
        if self.dt is None:
            raise ConfigError("target mode needs the model's time step: the model has no module with a dt; pass dt=")
        self.surrogate = surrogate
        self._checked = False
        _freeze_delays(model)

    def train(self, mode: bool = True) -> TargetMode:
        """Sets the wrapper's flag; the wrapped model stays in eval mode (frozen BatchNorm, no dropout)."""
        super().train(mode)
        self.model.eval()
        return self

    def run(self, x: torch.Tensor, *, record: bool = False) -> tuple[TargetResult, dict]:
        """The :class:`~spikeseq.graph.target_forward.TargetResult` of ``x`` (the model's input, e.g. token ids:
        :func:`graph_inputs` makes it the graph's events) and the traced graph's metadata."""
        self.model.eval()
        if not self._checked:   # once, with the data's shape: a node the target cannot run is a ConfigError
            check_target(self.model, self.settings, dt=self.dt, input_shape=tuple(x.shape[2:]))
            self._checked = True
        x = graph_inputs(self.model, x)
        g, bindings = trace_bound(self.model, dt=self.dt, input_shape=tuple(x.shape[2:]), input_payload="graded")
        s = self.settings
        res = target_forward(g, bindings, x, s.target, input_frac_bits=s.input_frac_bits, input_bits=s.input_bits,
                             surrogate=self.surrogate, record=record, integer_inputs=self.integer_inputs,
                             **s.quantize_kwargs())
        return res, g.metadata

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, None]:
        """The exported graph's readout ``[T, B, ...]`` in float units with the model's readout transform (in the
        input's dtype; the default float dtype for integer inputs such as event counts or uint8 spikes)."""
        if state is not None:
            raise ParameterError("target mode runs whole sequences from silence; it takes no state")
        res, meta = self.run(x)
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()   # integer data: a float readout
        return output_transform(res.output, meta.get("output_transform")).to(dtype), None


def output_transform(y: torch.Tensor, kind: str | None) -> torch.Tensor:
    """The model's readout over the graph output (``cumsum``: running count; ``cummean``: running mean)."""
    if kind is None:
        return y
    c = torch.cumsum(y, dim=0)
    if kind == "cumsum":
        return c
    if kind == "cummean":
        return c / torch.arange(1, y.shape[0] + 1, dtype=y.dtype).reshape(-1, *([1] * (y.dim() - 1)))
    raise ParameterError(f"unknown output transform {kind!r} in the graph metadata")


def target_mode(model: nn.Module, target: str, *, dt: float | None = None, input_frac_bits: int | None = None,
                input_bits: int = 8, weight_exp: int = 0, reset_policy: str = "strict",
                surrogate: sg.Surrogate | None = None, input_shape: tuple[int, ...] | None = None) -> TargetMode:
    """``model`` computing with ``target``'s numerics (:class:`TargetMode`); checks first that every node of the
    model runs on the target (:func:`check_target`; a model whose per-sample ``input_shape`` cannot be inferred
    is checked on its first forward pass). For real-valued inputs on Loihi give ``input_frac_bits`` (e.g.
    ``spikeseq.graph.quantize.input_frac_bits(x_train.abs().max(), input_bits)``) and keep it for export."""
    settings = TargetSettings(target, weight_exp=weight_exp, reset_policy=reset_policy, input_bits=input_bits,
                              input_frac_bits=input_frac_bits)
    check_target(model, settings, dt=dt, input_shape=input_shape, need_shape=False)
    return TargetMode(model, settings, dt=dt, surrogate=surrogate)


def _without_lowering(model: nn.Module, path: str = "model") -> tuple[str, str] | None:
    """The (qualified name, type name) of the first member of ``model`` (through nested ``Sequential``) that
    :func:`~spikeseq.graph.trace.trace` has no lowering for, else ``None``."""
    if isinstance(model, Sequential):
        for i, layer in enumerate(model.layers):
            bad = _without_lowering(layer, f"{path}.layers.{i}")
            if bad is not None:
                return bad
        return None
    return None if lowering_for(type(model)) is not None else (path, type(model).__name__)


def check_target(model: nn.Module, settings: TargetSettings, *, dt: float | None = None,
                 input_shape: tuple[int, ...] | None = None, need_shape: bool = True) -> None:
    """Raise a :class:`~spikeseq.errors.ConfigError` naming the node and the target when ``model`` cannot run on
    ``settings.target`` (a node the target has no mechanism for, a reset it does not do, a value out of range), so
    that a target-mode run fails before training starts (the exporter's quantisation, then one silent step of target
    mode's own forward: a node the exporter takes but target mode cannot train yet is named too). The model is not
    changed (delays are rounded on a copy).
    ``input_shape``: per sample, the data's (default: inferred from the model; token ids: ``()``, made the graph's
    one-hot events by the model's ``graph_inputs``, :func:`graph_inputs`); with ``need_shape=False`` a model whose
    input shape cannot be inferred is not checked (the training loop checks it again with the data's shape)."""
    dt = dt if dt is not None else _model_dt(model)
    head = (f"target mode {settings.target!r} (train.target / target_mode): model {type(model).__name__} cannot run "
            f"on {settings.target}")
    bad = _without_lowering(model)
    if dt is None:
        if bad is not None:   # a model with no time step is usually one with no event-graph form at all
            raise ConfigError(f"{head}: member {bad[0]} of type {bad[1]} cannot be traced (no IR equivalent)")
        raise ConfigError(f"{head}: it has no module with a time step dt (seconds); pass dt=")
    if input_shape is None and not need_shape:
        try:
            infer_input_shape(model)
        except ParameterError:   # no shape to trace with yet: still name a member that has no lowering at all
            if bad is not None:
                raise ConfigError(f"{head}: member {bad[0]} of type {bad[1]} cannot be traced (no IR equivalent)"
                                  ) from None
            return
    m = copy.deepcopy(model).eval()
    _freeze_delays(m)
    if input_shape is not None and callable(getattr(m, "graph_inputs", None)):   # e.g. token ids -> one-hot
        input_shape = tuple(graph_inputs(m, torch.zeros(1, 1, *input_shape, dtype=torch.long)).shape[2:])
    try:
        g = trace(m, dt=dt, input_shape=input_shape)
        cells = [k for k, n in g.flat().nodes.items() if isinstance(n, ir.EGRUCell)]
        if cells and settings.target == "loihi":   # the gates, named before any input-format message
            raise ExportError(LOIHI_REFUSAL.format(name=cells[0]))
        if settings.input_frac_bits is not None:
            g = scale_input_synapses(g, settings.input_frac_bits)
        quantize(g, settings.target, **settings.quantize_kwargs())
        # the exporter takes it; one silent step of the training forward shows that target mode runs it too
        gb, bindings = trace_bound(m, dt=dt, input_shape=input_shape, input_payload="graded")
        with torch.no_grad():
            target_forward(gb, bindings, torch.zeros(1, 1, *gb.nodes[gb.inputs()[0]].out_shape), settings.target,
                           input_frac_bits=settings.input_frac_bits, input_bits=settings.input_bits,
                           **settings.quantize_kwargs())
    except SpikeseqError as e:
        raise ConfigError(f"{head}: {e}") from None
