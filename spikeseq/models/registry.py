"""Model zoo registry: ``build(name, **cfg)``.

Model modules decorate a builder with ``@register("name")``; the modules listed in ``_MODULES`` are imported on
first use so that ``build`` sees every family.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from spikeseq.errors import ConfigError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_MODULES = (
    "spikeseq.models.snn_mlp",
    "spikeseq.models.delay_snn",
    "spikeseq.models.l2mu",
    "spikeseq.models.lmuformer",
    "spikeseq.models.har_baselines",
)
_loaded = False


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _BUILDERS[name] = fn
        return fn

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for m in _MODULES:
        try:
            importlib.import_module(m)
        except ModuleNotFoundError as e:
            if e.name != m:
                raise
    _loaded = True


def names() -> list[str]:
    _load()
    return sorted(_BUILDERS)


def build(name: str, **cfg) -> nn.Module:
    _load()
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_BUILDERS)) or '(none)'}")
    return _BUILDERS[name](**cfg)
