"""The counter registry: module type -> function that turns one call into per-time-step counts.

A counter is called from a forward hook as ``fn(module, args, kwargs, output, ctx) -> dict[str, Tensor]``; every
returned tensor has one entry per time step of that call (shape ``[T_call]``, summed over the batch). The keys
are those of :data:`COUNT_KEYS` (or ``nb_*`` keys in NeuroBench mode). ``ctx`` (:class:`CallContext`) gives the
time layout of the call and the options of :func:`spikeseq.profile.count`.

Register counters for your own modules with::

    from spikeseq.profile import register_counter

    @register_counter(MyCell, kind="connection", time_first=True)
    def _count_my_cell(m, args, kwargs, out, ctx):
        ...

A composite counter may report parts of its module as separate rows of the report by adding
``"__sub__": [(suffix, module_or_type_name, kind, counts), ...]`` to its result (e.g. recurrent products and
populations a model steps functionally); each appears as the layer ``"<name>.<suffix>"``.

A counter that needs to recompute something with a child module must call ``child.forward(...)``, not
``child(...)``: the latter runs the child's hooks and counts it twice.

Lookup follows the method resolution order, so a counter for a base class covers its subclasses unless a more
specific one is registered. ``descend=True`` also hooks the module's children (e.g. the ``nn.Linear`` inside an
snnTorch ``RLeaky``); otherwise the counter is responsible for everything the module computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from spikeseq.errors import ProfileError

#: Counters every layer may report, per time step (summed over the batch). See ``profile/__init__.py``.
COUNT_KEYS: tuple[str, ...] = (
    "dense_macs",             # synaptic ops if every input and weight were non-zero (NeuroBench "Dense")
    "eff_macs",               # effective multiply-accumulates: non-zero, non-unit input x non-zero weight
    "eff_acs",                # effective accumulates: input of magnitude 1 (a spike, +-1) x non-zero weight
    "bias_adds",              # additions of a (non-zero) bias, per output element per step
    "state_mults",            # multiplications in state updates (decays, gates, LMU A m + B u, ...)
    "state_adds",             # additions in state updates (integration, reset by subtraction, gates)
    "state_cmps",             # threshold comparisons (counted, not priced)
    "nonlin_ops",             # elementwise nonlinearities (ReLU, sigmoid, tanh; counted, not priced)
    "exp_ops",                # exponentials of state updates (the WKV operator; counted, not priced)
    "div_ops",                # divisions of state updates (the WKV operator; counted, not priced)
    "neuron_updates",         # neuron state updates (every neuron, every step)
    "neuron_updates_active",  # neurons that received non-zero input in that step
    "spikes_out",             # non-zero outputs of spiking neuron layers (events to route)
    "out_nonzero",            # non-zero outputs of activation / neuron layers (for activation sparsity)
    "out_elements",           # all outputs of activation / neuron layers
    "addr_adds",              # address computations of event-driven synaptic ops (Lemaire et al.: one per op)
    "mem_weight_reads",       # weight (and bias) words read
    "mem_state_reads",        # state words read (membrane / accumulator / memory)
    "mem_state_writes",       # state words written
    "mem_input_reads",        # input words (events or values) read
    "mem_output_writes",      # output words (events or values) written
)

#: NeuroBench-compatible counters (per time step, summed over the batch).
NB_KEYS: tuple[str, ...] = (
    "nb_eff_macs", "nb_eff_acs", "nb_dense", "nb_membrane_updates", "nb_neuron_ops", "nb_neuron_dense_ops",
    "nb_act_nonzero", "nb_act_elements", "nb_neuron_ops_uncosted",
)

KINDS = ("connection", "neuron", "activation", "free", "composite")


@dataclass(frozen=True)
class CounterSpec:
    """How one module type is counted: ``fn(module, args, kwargs, output, ctx) -> dict`` and its options (see
    :func:`register_counter`). Model families hand these to the registry in ``Family.counters``."""

    fn: Callable[..., dict[str, Any]]
    kind: str
    descend: bool = False
    time_first: bool = False
    pre: Callable[..., Any] | None = None  # optional pre-hook: pre(module, args, kwargs) -> stash for fn
    nb_connection: bool = False  # a NeuroBench "connection layer" (Linear, Conv, RNN cells)
    nb_activation: bool = False  # a NeuroBench "activation layer" (ReLU, Sigmoid, snnTorch neurons)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ProfileError(f"counter kind must be one of {', '.join(KINDS)}, got {self.kind!r}")


_REGISTRY: dict[type, CounterSpec] = {}


def register_spec(cls: type, spec: CounterSpec) -> None:
    """Register ``spec`` as the counter of the class ``cls``; a class has one counter
    (:class:`~spikeseq.errors.ProfileError` when it already has one)."""
    if not isinstance(cls, type):
        raise ProfileError(f"counters are registered for classes, got {cls!r}")
    if not isinstance(spec, CounterSpec) or not callable(spec.fn):
        raise ProfileError(f"the counter of {cls.__qualname__} must be a CounterSpec with a callable fn, got {spec!r}")
    if cls in _REGISTRY:
        raise ProfileError(f"{cls.__module__}.{cls.__qualname__} already has a counter "
                           f"({_REGISTRY[cls].fn.__module__}.{_REGISTRY[cls].fn.__qualname__}); a type is counted "
                           "in one place")
    _REGISTRY[cls] = spec


def unregister_counter(cls: type) -> None:
    """Remove the counter registered for ``cls``."""
    if _REGISTRY.pop(cls, None) is None:
        raise ProfileError(f"no counter registered for {getattr(cls, '__qualname__', cls)!r}")


def register_counter(cls: type, fn: Callable | None = None, *, kind: str, descend: bool = False,
                     time_first: bool = False, pre: Callable | None = None, nb_connection: bool = False,
                     nb_activation: bool = False):
    """Register ``fn`` as the counter of the class ``cls`` (usable as a decorator when ``fn`` is omitted).

    A model family registers the counters of its own module types through ``Family.counters`` instead.
    """

    def deco(f: Callable) -> Callable:
        register_spec(cls, CounterSpec(f, kind, descend, time_first, pre, nb_connection, nb_activation))
        return f

    if kind not in KINDS:
        raise ProfileError(f"kind must be one of {KINDS}, got {kind!r}")
    return deco(fn) if fn is not None else deco


def lookup(module: nn.Module) -> CounterSpec | None:
    """The counter of ``module``'s class or of its nearest base class that has one."""
    for cls in type(module).__mro__:
        spec = _REGISTRY.get(cls)
        if spec is not None:
            return spec
    return None


def registered() -> dict[type, CounterSpec]:
    """A copy of the registry (class -> counter spec)."""
    return dict(_REGISTRY)
