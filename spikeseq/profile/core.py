"""The counting engine: hooks on every module, counters from the registry, per-layer per-step accumulation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from spikeseq.errors import ProfileError, ShapeError
from spikeseq.profile import counters as _counters  # noqa: F401  (registers the torch counters)
from spikeseq.profile import neurons as _neurons
from spikeseq.profile.context import CallContext
from spikeseq.profile.registry import CounterSpec, lookup
from spikeseq.profile.report import LayerProfile, ProfileReport

RunFn = Callable[[nn.Module, torch.Tensor], object]

#: Modules that never compute anything themselves (containers); anything else unknown is reported.
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class _Layer:
    name: str
    module: nn.Module
    spec: CounterSpec
    chunks: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    cursor: int = 0
    calls: int = 0
    notes: set[str] = field(default_factory=set)
    subs: dict[str, _Layer] = field(default_factory=dict)

    def record(self, counts: dict[str, torch.Tensor], T: int, step_mode: bool) -> None:
        """Place one call's per-step counts: a full-length call starts at step 0 (repeated calls add up), a
        shorter one (a single step, a chunk of a stream) continues where this layer's previous call ended."""
        self.calls += 1
        if not counts:
            return
        tc = next(iter(counts.values())).shape[0]
        offset = 0 if (tc == T and tc > 1 and not step_mode) else self.cursor
        self.chunks.append((offset, counts))
        self.cursor = offset + tc


def _unknown_reason(m: nn.Module) -> str | None:
    if isinstance(m, _CONTAINERS):
        return None
    from spikeseq.nn import Sequential as SeqSeq

    if isinstance(m, SeqSeq):
        return None
    if not any(True for _ in m.children()):
        return "no counter registered for this module type (leaf)"
    if any(True for _ in m.parameters(recurse=False)):
        return "no counter registered; the module's own parameters are used in its forward and not counted"
    return None


def _plan(model: nn.Module) -> tuple[list[_Layer], list[tuple[str, nn.Module, str | None]]]:
    """Registered layers, and every unregistered module reached (with a reason when it cannot be counted)."""
    layers: list[_Layer] = []
    unknown: list[tuple[str, nn.Module, str | None]] = []

    def walk(name: str, m: nn.Module) -> None:
        spec = lookup(m)
        if spec is not None:
            layers.append(_Layer(name or type(m).__name__, m, spec))
            if not spec.descend:
                return
        else:
            unknown.append((name or type(m).__name__, m, _unknown_reason(m)))
        for cname, child in m.named_children():
            walk(f"{name}.{cname}" if name else cname, child)

    walk("", model)
    return layers, unknown


def _functional_children(name: str, m: nn.Module, called: set[str]) -> str | None:
    """A called, unregistered module whose parameter-holding child never ran uses those parameters functionally
    (e.g. ``F.conv1d(x, self.conv.weight)``): nothing saw that computation."""
    def ran(full: str) -> bool:  # the child, or anything inside it (ModuleList/ModuleDict never run themselves)
        return full in called or any(n.startswith(full + ".") for n in called)

    skipped = [f"{c!r} ({type(child).__name__})" for c, child in m.named_children()
               if not ran(f"{name}.{c}" if name else c) and any(True for _ in child.parameters())]
    if not skipped:
        return None
    return (f"child {', '.join(skipped)} holds parameters but never ran: the module uses them functionally and "
            "no counter sees that computation")


def _batches(inputs) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, (list, tuple)) and all(isinstance(x, torch.Tensor) for x in inputs) and inputs:
        return list(inputs)
    raise ProfileError(
        f"inputs must be a time-first tensor [T, B, ...] or a non-empty list of such tensors (batches), got "
        f"{type(inputs).__name__}"
    )


def run_steps(model: nn.Module, x: torch.Tensor) -> object:
    """Call ``model`` once per time step on ``x[t]`` (snnTorch style), after resetting snnTorch hidden state."""
    try:
        from snntorch import utils as snn_utils

        snn_utils.reset(model)
    except ImportError:  # pragma: no cover - snnTorch is optional
        pass
    return [model(x[t]) for t in range(x.shape[0])]


def count(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    run: RunFn | str | None = None,
    neurobench: bool = False,
    ac_rule: str = "element",
    strict: bool = False,
    bits: dict[str, int] | None = None,
    name: str | None = None,
) -> ProfileReport:
    """Count operations of ``model`` on ``inputs`` per layer and per time step.

    ``inputs``: time-first ``[T, B, ...]`` (or a list of such batches, summed). ``run``: how to call the model,
    ``None`` for ``model(x)``, ``"steps"`` for one call per step on ``x[t]`` (snnTorch networks with
    ``init_hidden=True``; hidden state is reset first), or any ``fn(model, x)``. ``neurobench=True`` also
    computes the NeuroBench 2.3-compatible metrics (``report.neurobench``). ``ac_rule``: ``"element"`` (an
    input element of magnitude 1 is a spike) or ``"call"`` (NeuroBench: one decision per layer and step).
    ``strict=True`` raises :class:`~spikeseq.errors.ProfileError` for a module that cannot be counted instead of
    listing it in ``report.not_counted``. ``bits``: word widths for memory energy (``weight``, ``state``,
    ``io``; default 32 each). The model runs in eval mode under ``torch.no_grad()``; its training flag and its
    buffers (snnTorch hidden state included) are restored afterwards.
    """
    if ac_rule not in ("element", "call"):
        raise ProfileError(f"ac_rule must be 'element' or 'call', got {ac_rule!r}")
    _neurons.register_snntorch()
    batches = _batches(inputs)
    for x in batches:
        if x.dim() < 2:
            raise ShapeError(f"inputs must be time-first [T, B, ...], got shape {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:  # per-sample counts of zero samples / steps mean nothing
            raise ShapeError(f"inputs must hold at least one time step and one sample, got shape {tuple(x.shape)}")
    if run is None:
        run_fn: RunFn = lambda m, x: m(x)  # noqa: E731
    elif run == "steps":
        run_fn = run_steps
    elif callable(run):
        run_fn = run
    else:
        raise ProfileError(f"run must be None, 'steps' or a callable fn(model, x), got {run!r}")
    step_mode = run == "steps"

    layers, unknown = _plan(model)
    called: set[str] = set()
    static = _static_metrics(model) if neurobench else None
    nb_act_batches: list[tuple[float, float, int]] = []
    n_samples = 0
    t_max = 0
    cur: dict[str, object] = {}

    def make_hooks(layer: _Layer):
        def pre(mod, args, kwargs):
            if layer.spec.pre is not None:
                cur[layer.name] = layer.spec.pre(mod, args, kwargs)

        def post(mod, args, kwargs, out):
            called.add(layer.name)
            ctx = CallContext(T=cur["T"], B=cur["B"], step_mode=step_mode, ac_rule=ac_rule,
                              neurobench=neurobench, name=layer.name, call_index=layer.calls,
                              stash=cur.get(layer.name), binary=cur["binary"])
            spec = layer.spec
            threads = torch.get_num_threads()
            if threads > 1:  # counters are a few memory-bound passes: one thread avoids pool barriers on busy CPUs
                torch.set_num_threads(1)
            try:
                counts = spec.fn(mod, args, kwargs, out, ctx)
            except (TypeError, ValueError, NotImplementedError) as e:
                raise ProfileError(f"cannot count layer {layer.name!r} ({type(mod).__name__}): {e}") from e
            finally:
                if threads > 1:
                    torch.set_num_threads(threads)
            layer.notes.update(ctx.notes)
            for suffix, submodule, kind, sub_counts in counts.pop("__sub__", ()):
                sub = layer.subs.get(suffix)
                if sub is None:
                    sub = layer.subs[suffix] = _Layer(f"{layer.name}.{suffix}", submodule,
                                                      CounterSpec(None, kind))  # type: ignore[arg-type]
                sub.record(sub_counts, ctx.T, step_mode)
            layer.record(counts, ctx.T, step_mode)

        return pre, post

    def watch(name: str):
        def hook(mod, args, out):
            called.add(name)

        return hook

    handles = []
    was_training = model.training
    # hidden state kept in buffers (snnTorch ``mem``/``syn`` with init_hidden=True) is reset and overwritten by
    # the profiled run: put it back afterwards so that profiling leaves the model as it found it
    saved = [(mod, k, b.detach().clone()) for mod in model.modules() for k, b in mod._buffers.items()
             if b is not None]
    try:
        for layer in layers:
            pre, post = make_hooks(layer)
            handles.append(layer.module.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(layer.module.register_forward_hook(post, with_kwargs=True))
        for uname, umod, _ in unknown:
            handles.append(umod.register_forward_hook(watch(uname)))
        model.eval()
        with torch.no_grad():
            for x in batches:
                cur.clear()
                cur["T"], cur["B"] = int(x.shape[0]), int(x.shape[1])
                cur["binary"] = {}
                for layer in layers:
                    layer.calls, layer.cursor = 0, 0
                    for sub in layer.subs.values():
                        sub.calls, sub.cursor = 0, 0
                mark = [len(layer.chunks) for layer in layers]
                run_fn(model, x)
                n_samples += int(x.shape[1])
                t_max = max(t_max, int(x.shape[0]))
                if neurobench:
                    nz = el = 0.0
                    for layer, k in zip(layers, mark):
                        for _, c in layer.chunks[k:]:
                            if "nb_act_elements" in c:
                                nz += float(c["nb_act_nonzero"].sum())
                                el += float(c["nb_act_elements"].sum())
                    nb_act_batches.append((nz, el, int(x.shape[1])))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        with torch.no_grad():
            for mod, k, b in saved:
                cur_b = mod._buffers.get(k)
                if cur_b is not None and cur_b.shape == b.shape and cur_b.dtype == b.dtype:
                    cur_b.copy_(b)
                else:
                    mod._buffers[k] = b

    not_counted = []
    for n, m, r in unknown:
        if n not in called:
            continue
        if r is None:
            r = _functional_children("" if m is model else n, m, called)
        if r is not None:
            not_counted.append({"name": n, "type": type(m).__name__, "reason": r})
    for layer in layers:
        for note in sorted(layer.notes):
            not_counted.append({"name": layer.name, "type": type(layer.module).__name__, "reason": note})
    if strict and not_counted:
        lines = "; ".join(f"{d['name']} ({d['type']}): {d['reason']}" for d in not_counted)
        raise ProfileError(
            f"cannot count every module: {lines}. Register a counter with spikeseq.profile.register_counter "
            "or pass strict=False to get a report that lists them as not counted"
        )
    profiles = []
    for layer in layers:
        profiles.append(_finish(layer, t_max))
        profiles.extend(_finish(sub, t_max) for sub in layer.subs.values())
    kept = [p for p in profiles if p is not None]
    t_all = max([t_max] + [v.shape[0] for p in kept for v in p.counts.values()])
    report = ProfileReport(
        layers=kept, n_samples=n_samples, time_steps=t_all,
        not_counted=not_counted, bits={"weight": 32, "state": 32, "io": 32, **(bits or {})},
        model_name=name or type(model).__name__,
    )
    if neurobench:
        from spikeseq.profile.neurobench import neurobench_metrics

        report.neurobench = neurobench_metrics(report, static, nb_act_batches, model)
    return report


def _finish(layer: _Layer, t_max: int) -> LayerProfile | None:
    if layer.calls == 0 or not layer.chunks:
        return None
    length = max([t_max] + [off + next(iter(c.values())).shape[0] for off, c in layer.chunks])
    keys: list[str] = []
    for _, c in layer.chunks:
        keys.extend(k for k in c if k not in keys)
    arrays = {k: np.zeros(length) for k in keys}
    for off, c in layer.chunks:
        for k, v in c.items():
            n = v.shape[0]
            arrays[k][off:off + n] += v.detach().cpu().numpy()
    m = layer.module
    if isinstance(m, str):  # a sub-layer without a module of its own (e.g. a functional update)
        params, weights, type_name = [], [], m
    else:
        params = [p for p in m.parameters()] if layer.spec.kind != "neuron" or not layer.spec.descend else \
            list(m.parameters(recurse=False))
        weights = [p for n, p in m.named_parameters() if "weight" in n] if layer.spec.kind == "connection" else []
        type_name = type(m).__name__
    return LayerProfile(
        name=layer.name, type=type_name, kind=layer.spec.kind, counts=arrays,
        params=int(sum(p.numel() for p in params)),
        weights=int(sum(w.numel() for w in weights)),
        nonzero_weights=int(sum(int(torch.count_nonzero(w)) for w in weights)),
    )


def _static_metrics(model: nn.Module) -> dict:
    from spikeseq.profile.neurobench import static_metrics

    return static_metrics(model)


def profile_batches(model: nn.Module, loader: Iterable, **kw) -> ProfileReport:
    """:func:`count` over the input tensors of an iterable of ``x`` or ``(x, y)`` batches (time-first)."""
    xs = [b[0] if isinstance(b, (list, tuple)) else b for b in loader]
    return count(model, xs, **kw)
