"""Which layers a continual-learning plug-in can protect, and how their presynaptic inputs become sample rows.

A *target* is a weighted layer whose weight ``W`` is used as ``W [out, n] @ x [n]`` for input vectors ``x``:

=================================  ==========================================================================
module                             one input vector ``x`` (``n`` = columns of ``W.flatten(1)``)
=================================  ==========================================================================
``nn.Linear`` (``SpikeLinear``)    a row of the input, ``[..., in_features]`` (time folded or per step: the
                                   recurrent ``rec`` Linear of :class:`spikeseq.nn.recurrent.RLIF` is called
                                   once per time step)
``nn.Conv1d`` / ``nn.Conv2d``      one unfolded patch ``[C_in * prod(kernel)]`` (``F.unfold``, as HLOP's conv
                                   layers); zero padding, ``groups = 1``
``DelayLinear``                    a row ``[in_features]`` of the undelayed input; the per-synapse delays make
                                   the projection approximate (each synapse sees ``x`` at its own lag)
a weight applied functionally      what its :class:`~spikeseq.nn.weight_input.WeightInput` shows, e.g. for
(``nn.EGRU``'s ``weight_ih_l{k}``  ``nn.EGRU`` the layer's input ``x[t]`` (``weight_ih_l{k}``) and its previous
and ``weight_hh_l{k}``)            graded events ``y[t-1]`` (``weight_hh_l{k}``); named by the parameter,
                                   e.g. ``"rnn.weight_hh_l0"``
=================================  ==========================================================================

A frozen weight (``requires_grad=False``) has no gradient to protect: naming it is refused, and ``layers=None``
(every weighted layer) leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.errors import ConfigError, ShapeError
from spikeseq.nn.delay import DelayLinear
from spikeseq.nn.weight_input import WeightInput, weight_inputs

WEIGHTED: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, DelayLinear)


@dataclass
class Target:
    """One protected layer: its dotted name, the module, its weight and the input dimension ``n``."""

    name: str
    module: nn.Module
    weight: nn.Parameter
    n: int

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's input as ``[M, P, n]``: ``M`` leading rows in call order (time-major when time is folded
        into the batch), ``P`` patches per row (1 for dense layers)."""
        m = self.module
        if isinstance(m, nn.Conv2d | nn.Conv1d):
            rank = 4 if isinstance(m, nn.Conv2d) else 3
            if x.dim() != rank:
                layout = "[N, C, H, W]" if rank == 4 else "[N, C, L]"
                raise ShapeError(f"layer {self.name!r}: a protected {type(m).__name__} reads batched inputs "
                                 f"{layout} (time folded into N), got shape {tuple(x.shape)}; add the batch axis "
                                 "(x.unsqueeze(0)) or fold time into it (x.flatten(0, 1))")
            x4 = x if isinstance(m, nn.Conv2d) else x.unsqueeze(-2)
            k = m.kernel_size if isinstance(m, nn.Conv2d) else (1, m.kernel_size[0])
            d = m.dilation if isinstance(m, nn.Conv2d) else (1, m.dilation[0])
            p = m.padding if isinstance(m, nn.Conv2d) else (0, m.padding[0])
            s = m.stride if isinstance(m, nn.Conv2d) else (1, m.stride[0])
            cols = F.unfold(x4, k, dilation=d, padding=p, stride=s)  # [M, n, P]
            return cols.transpose(1, 2)
        if x.shape[-1] != self.n:
            raise ShapeError(f"{self.name}: input has {x.shape[-1]} features, the weight expects {self.n}")
        return x.reshape(-1, 1, self.n)


def weight_columns(module: nn.Module, name: str) -> tuple[nn.Parameter, int]:
    """``(weight, n)`` of a weighted module; :class:`ConfigError` naming the layer otherwise."""
    if not isinstance(module, WEIGHTED):
        kinds = ", ".join(t.__name__ for t in WEIGHTED)
        raise ConfigError(f"layer {name!r} is a {type(module).__name__}, not a weighted layer; HLOP / GPM / EWC "
                          f"protect {kinds} (for a recurrent layer name its recurrent Linear, e.g. '0.rec')")
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        if module.groups != 1:
            raise ConfigError(f"layer {name!r}: grouped convolutions (groups={module.groups}) are not supported; "
                              "protect a conv with groups=1")
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ConfigError(f"layer {name!r}: only explicit zero padding is supported (got padding="
                              f"{module.padding!r}, padding_mode={module.padding_mode!r})")
    w = module.weight
    if isinstance(w, nn.parameter.UninitializedParameter):
        raise ConfigError(f"layer {name!r} is a lazy {type(module).__name__} whose weight is not initialised yet; run "
                          "one forward pass of the model (or give the layer its input size) before attaching HLOP / "
                          "GPM")
    return w, int(w[0].numel())


def resolve(model: nn.Module, names: list[str] | tuple[str, ...] | None) -> list[Target]:
    """Targets for the dotted module ``names`` of ``model`` (``None``: every weighted module, in order), or the
    dotted names of weights applied functionally (:func:`spikeseq.nn.weight_input.weight_inputs`)."""
    modules = dict(model.named_modules())
    shown = weight_inputs(model)
    if names is not None:
        check_names(names, "layers")
        if not names:
            raise ConfigError(f"no layers to protect: layers = [] lists none; name the weighted layers (e.g. "
                              f"{_weighted(modules, shown)[:3]}) or leave layers unset (None) for every weighted "
                              "layer")
    if names is None:  # every weighted layer that trains: a frozen weight has no gradient to protect
        names = [n for n, m in modules.items() if isinstance(m, WEIGHTED) and n and _trains(m)]
        names += [n for n in shown if model.get_parameter(n).requires_grad]
        if not names:
            frozen = _weighted(modules, shown)
            raise ConfigError(f"{type(model).__name__} has no trainable weighted layer (Linear, Conv1d, Conv2d, "
                              f"DelayLinear, or a weight with a WeightInput)"
                              + (f"; frozen (requires_grad=False): {', '.join(frozen)}" if frozen else ""))
    out = []
    for n in names:
        if n in shown:
            w, module, dim = model.get_parameter(n), shown[n], shown[n].n
        elif n in modules:
            module = modules[n]
            w, dim = weight_columns(module, n)
        else:
            raise ConfigError(f"no layer named {n!r} in {type(model).__name__}; its weighted layers: "
                              f"{', '.join(_weighted(modules, shown)) or '(none)'}")
        if not w.requires_grad:
            raise ConfigError(f"layer {n!r}: its weight is frozen (requires_grad=False), so it has no gradient to "
                              "protect; unfreeze it (weight.requires_grad_(True)) or leave it out of layers")
        out.append(Target(n, module, w, dim))
    if len({id(t.module) for t in out}) != len(out):
        raise ConfigError(f"a layer is listed twice in {list(names)}")
    return out


def check_per_layer(value: object, targets: list[Target], what: str) -> None:
    """:class:`ConfigError` when a per-layer option ``{layer: value}`` names a layer the plug-in does not protect (a
    typo, or a layer missing from ``layers``): its value would be ignored without a word."""
    if not isinstance(value, dict):
        return
    names = [t.name for t in targets]
    extra = sorted(str(k) for k in value if k not in names)
    if extra:
        raise ConfigError(f"{what} gives values for {extra}, which are not protected layers (protected: "
                          f"{', '.join(names)}); fix the layer names, add them to layers, or drop those entries")


def _trains(module: nn.Module) -> bool:
    """Whether a weighted module's weight is trained (``requires_grad``)."""
    w = getattr(module, "weight", None)
    return isinstance(w, torch.Tensor) and w.requires_grad


def _weighted(modules: dict[str, nn.Module], shown: dict[str, WeightInput]) -> list[str]:
    """The names a plug-in accepts: weighted modules, then weights shown by a WeightInput."""
    return [k for k, m in modules.items() if isinstance(m, WEIGHTED) and k] + list(shown)


def check_names(names: object, what: str) -> None:
    """:class:`ConfigError` unless ``names`` is a list or tuple of strings (a bare string would be read character
    by character)."""
    if isinstance(names, str) or not isinstance(names, list | tuple):
        raise ConfigError(f"{what} must be a list of names, got {names!r}; write [{names!r}] for one name")
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ConfigError(f"{what} must hold names (strings), got {bad[0]!r} in {list(names)!r}")


def keep_prefixes(model: nn.Module, keep: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The ``keep_trainable`` module prefixes as a tuple; :class:`ConfigError` for a bare string or a prefix that
    matches no parameter of ``model`` (it would keep nothing trainable)."""
    if keep is None:
        return ()
    check_names(keep, "keep_trainable")
    params = [n for n, _ in model.named_parameters()]
    for k in keep:
        if not any(n == k or n.startswith(k + ".") for n in params):
            shown = ", ".join(params[:8]) + (", ..." if len(params) > 8 else "")
            raise ConfigError(f"keep_trainable prefix {k!r} matches no parameter of {type(model).__name__}; "
                              f"its parameters: {shown}")
    return tuple(keep)
