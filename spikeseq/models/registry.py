"""The model-family registry: the only place the infrastructure (train, report, bench, cli) asks about models.

A *family* (:class:`Family`) is one package that brings its models (builders by name), the tasks they solve, and
the IR lowerings and op counters of its own module types::

    from spikeseq.models.registry import Family, register_family

    register_family(Family(name="mynet", tasks=("classification",), builders={"mynet": build_mynet},
                           lowerings={MyNet: lower_mynet}, counters={MyCell: CounterSpec(count_cell, "neuron")}))

In-tree families are listed once, in :data:`IN_TREE`; packages outside spikeseq register through the entry-point
group :data:`ENTRY_POINT_GROUP` (``spikeseq.families``), whose entries name a module to import (that calls
:func:`register_family`) or a callable returning a :class:`Family`. Families are loaded on first use; a family that
fails to import raises :class:`~spikeseq.errors.PluginError` naming it (never a quiet substitute).

Registration checks: a family or model name registered twice, a task outside :data:`TASKS`, and a lowering or
counter for a type not defined in the family's own package each raise a
:class:`~spikeseq.errors.PluginError` that names the offender and lists what exists.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from types import MappingProxyType
from typing import Any

from torch import nn

from spikeseq.errors import ConfigError, PluginError
from spikeseq.graph import register_lowering, unregister_lowering
from spikeseq.profile.registry import CounterSpec, register_spec, unregister_counter

#: Tasks a family may solve; the training side (``spikeseq.train.tasks``) holds one ``Task`` per name.
TASKS: tuple[str, ...] = ("classification", "language_modelling", "continual")
#: Entry-point group through which packages outside spikeseq register families.
ENTRY_POINT_GROUP = "spikeseq.families"
#: The in-tree family packages (each registers itself on import).
IN_TREE: tuple[str, ...] = (
    "spikeseq.models.lifnet",
    "spikeseq.models.delay_snn",
    "spikeseq.models.l2mu",
    "spikeseq.models.lmuformer",
    "spikeseq.models.baselines",
    "spikeseq.models.egru",
    "spikeseq.models.spikegpt",
)

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Family:
    """One model family: its name, the tasks it solves (the first is the default of a recipe), its builders by
    model name (the recipe's ``[model] name``), and the lowerings / counters of the module types it defines.

    ``module`` is the owning package (default: the package of the code calling :func:`register_family`); every
    type in ``lowerings`` and ``counters`` must be defined in it.
    """

    name: str
    tasks: tuple[str, ...]
    builders: Mapping[str, Callable[..., nn.Module]]
    lowerings: Mapping[type, Callable[..., Any]] = field(default_factory=lambda: _EMPTY)
    counters: Mapping[type, CounterSpec] = field(default_factory=lambda: _EMPTY)
    module: str = ""
    description: str = ""
    #: per model name, the tasks that model solves where not all of the family's (the first is its default)
    model_tasks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)


_FAMILIES: dict[str, Family] = {}
_MODEL_OWNER: dict[str, str] = {}   # model name -> family name
_loaded = False
_loading = False


def _caller_package(depth: int = 2) -> str:
    frame = inspect.stack()[depth].frame
    name = frame.f_globals.get("__name__", "")
    is_pkg = frame.f_globals.get("__path__") is not None
    return name if is_pkg else name.rpartition(".")[0] or name


def _owned(cls: type, module: str) -> bool:
    mod = getattr(cls, "__module__", "")
    return mod == module or mod.startswith(module + ".")


def _check(family: Family) -> None:
    if not isinstance(family, Family):
        raise PluginError(f"register_family expects a spikeseq.models.registry.Family, got {type(family).__name__}")
    if not isinstance(family.name, str) or not family.name.isidentifier():
        raise PluginError(f"a family name must be an identifier such as 'mynet', got {family.name!r}")
    if family.name in _FAMILIES:
        raise PluginError(f"family {family.name!r} is already registered (by {_FAMILIES[family.name].module}); "
                          f"registered families: {', '.join(sorted(_FAMILIES))}")
    if not family.tasks or isinstance(family.tasks, str):
        raise PluginError(f"family {family.name!r}: tasks must be a non-empty tuple of task names from "
                          f"{', '.join(TASKS)}")
    bad = [t for t in family.tasks if t not in TASKS]
    if bad:
        raise PluginError(f"family {family.name!r}: unknown task(s) {', '.join(map(repr, bad))}; known tasks: "
                          f"{', '.join(TASKS)}")
    if not family.builders:
        raise PluginError(f"family {family.name!r} registers no builders (give builders={{'name': fn}})")
    for model, fn in family.builders.items():
        if not isinstance(model, str) or not model.isidentifier():
            raise PluginError(f"family {family.name!r}: model names must be identifiers, got {model!r}")
        if not callable(fn):
            raise PluginError(f"family {family.name!r}: the builder of {model!r} is not callable")
        if model in _MODEL_OWNER:
            raise PluginError(f"family {family.name!r}: model name {model!r} is already registered by family "
                              f"{_MODEL_OWNER[model]!r}; registered models: {', '.join(sorted(_MODEL_OWNER))}")
    for model, tasks in family.model_tasks.items():
        if model not in family.builders:
            raise PluginError(f"family {family.name!r}: model_tasks names {model!r}, which it does not build; its "
                              f"models: {', '.join(sorted(family.builders))}")
        if not tasks or isinstance(tasks, str) or any(t not in family.tasks for t in tasks):
            raise PluginError(f"family {family.name!r}: the tasks of model {model!r} must be a non-empty tuple of the "
                              f"family's tasks ({', '.join(family.tasks)}), got {tasks!r}")
    for what, table in (("lowering", family.lowerings), ("counter", family.counters)):
        for cls in table:
            if not isinstance(cls, type):
                raise PluginError(f"family {family.name!r}: {what} keys must be classes, got {cls!r}")
            if not _owned(cls, family.module):
                raise PluginError(
                    f"family {family.name!r} registers a {what} for {cls.__module__}.{cls.__qualname__}, a type it "
                    f"does not own (its package is {family.module!r}); a family lowers and counts only the types "
                    "it defines, nn building blocks are handled by spikeseq.graph and spikeseq.profile")
    for cls, spec in family.counters.items():
        if not isinstance(spec, CounterSpec):
            raise PluginError(f"family {family.name!r}: the counter of {cls.__qualname__} must be a "
                              f"spikeseq.profile.CounterSpec, got {type(spec).__name__}")


def register_family(family: Family) -> Family:
    """Register ``family``: its builders become :func:`build`-able, its lowerings and counters are handed to
    :func:`spikeseq.graph.register_lowering` and :func:`spikeseq.profile.register_counter`. Returns the
    registered family (with ``module`` filled in)."""
    if isinstance(family, Family) and not family.module:
        family = replace(family, module=_caller_package())
    _check(family)
    done_low: list[type] = []
    done_cnt: list[type] = []
    try:
        for cls, fn in family.lowerings.items():
            register_lowering(cls, fn)
            done_low.append(cls)
        for cls, spec in family.counters.items():
            register_spec(cls, spec)
            done_cnt.append(cls)
    except Exception:
        for cls in done_low:
            unregister_lowering(cls)
        for cls in done_cnt:
            unregister_counter(cls)
        raise
    family = replace(family, builders=MappingProxyType(dict(family.builders)),
                     lowerings=MappingProxyType(dict(family.lowerings)),
                     counters=MappingProxyType(dict(family.counters)), tasks=tuple(family.tasks))
    _FAMILIES[family.name] = family
    for model in family.builders:
        _MODEL_OWNER[model] = family.name
    return family


def unregister_family(name: str) -> None:
    """Remove family ``name`` and its lowerings and counters (for tests and interactive reloading)."""
    if name not in _FAMILIES:
        raise PluginError(f"family {name!r} is not registered; registered families: {', '.join(sorted(_FAMILIES))}")
    fam = _FAMILIES.pop(name)
    for model in fam.builders:
        _MODEL_OWNER.pop(model, None)
    for cls in fam.lowerings:
        unregister_lowering(cls)
    for cls in fam.counters:
        unregister_counter(cls)


def load_entry_point(ep: metadata.EntryPoint) -> None:
    """Load one ``spikeseq.families`` entry point: import its module (which registers its families) or call its
    callable and register the :class:`Family` (or list of them) it returns; :class:`~spikeseq.errors.PluginError`
    naming the entry point when that fails."""
    try:
        obj = ep.load()
    except Exception as e:
        raise PluginError(f"entry point {ep.name!r} = {ep.value!r} of group {ENTRY_POINT_GROUP!r} failed to "
                          f"import: {type(e).__name__}: {e}; fix or uninstall the package that declares it") from e
    if inspect.ismodule(obj):
        return  # importing the module registered its families
    if not callable(obj):
        raise PluginError(f"entry point {ep.name!r} = {ep.value!r} names neither a module nor a callable")
    fam = obj()
    if fam is None:
        return
    for f in (fam if isinstance(fam, (list, tuple)) else (fam,)):
        if not isinstance(f, Family):
            raise PluginError(f"entry point {ep.name!r} = {ep.value!r} returned {type(f).__name__}, expected a "
                              "spikeseq.models.registry.Family (or a list of them, or None after registering)")
        if f.name not in _FAMILIES or _FAMILIES[f.name] is not f:
            if not f.module:
                f = replace(f, module=ep.value.partition(":")[0].rpartition(".")[0] or ep.value.partition(":")[0])
            register_family(f)


def load_all() -> None:
    """Import the in-tree families and the ``spikeseq.families`` entry points (once); errors name the family."""
    global _loaded, _loading
    if _loaded or _loading:
        return
    _loading = True
    try:
        for mod in IN_TREE:
            try:
                importlib.import_module(mod)
            except Exception as e:
                raise PluginError(f"in-tree family {mod} failed to import: {type(e).__name__}: {e}") from e
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            load_entry_point(ep)
        _loaded = True
    finally:
        _loading = False


def families() -> dict[str, Family]:
    """All registered families by name."""
    load_all()
    return dict(sorted(_FAMILIES.items()))


def names() -> list[str]:
    """All registered model names (sorted)."""
    load_all()
    return sorted(_MODEL_OWNER)


def family_of(model: str) -> Family:
    """The family that registered model ``model``; :class:`~spikeseq.errors.ConfigError` listing the known models
    otherwise."""
    load_all()
    if model not in _MODEL_OWNER:
        raise ConfigError(f"unknown model {model!r}; known models: {', '.join(sorted(_MODEL_OWNER)) or '(none)'} "
                          f"(families: {', '.join(sorted(_FAMILIES)) or '(none)'})")
    return _FAMILIES[_MODEL_OWNER[model]]


def tasks_of(model: str) -> tuple[str, ...]:
    """The tasks model ``model`` solves (its family's ``model_tasks`` entry, else all of the family's tasks; the first
    is a recipe's default)."""
    fam = family_of(model)
    return tuple(fam.model_tasks.get(model, fam.tasks))


def get_family(name: str) -> Family:
    """The family called ``name``; :class:`~spikeseq.errors.ConfigError` listing the registered ones otherwise."""
    load_all()
    if name not in _FAMILIES:
        raise ConfigError(f"unknown family {name!r}; registered families: {', '.join(sorted(_FAMILIES)) or '(none)'}")
    return _FAMILIES[name]


def build(name: str, **cfg: Any) -> nn.Module:
    """Build model ``name`` with the keyword arguments of its builder (a recipe's ``[model]`` section)."""
    fam = family_of(name)
    return fam.builders[name](**cfg)


__all__ = ["ENTRY_POINT_GROUP", "IN_TREE", "TASKS", "CounterSpec", "Family", "build", "families", "family_of",
           "get_family", "load_all", "load_entry_point", "names", "register_family", "tasks_of", "unregister_family"]
