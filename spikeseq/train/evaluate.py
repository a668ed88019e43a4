"""Model outputs -> logits, accuracy, confusion matrix, and spike statistics recorded with forward hooks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.errors import ShapeError
from spikeseq.nn import StatefulModule
from spikeseq.progress import progress
from spikeseq.train.datasets import Split, time_first


def logits_from(out: Any, readout: str) -> torch.Tensor:
    """A model's output (``y`` or ``(y, state)``; ``y`` ``[T, B, K]`` or ``[B, K]``) -> logits ``[B, K]``."""
    y = out[0] if isinstance(out, tuple) else out
    if y.dim() == 2:
        return y
    if y.dim() != 3:
        raise ShapeError(f"a classifier must return [T, B, K] or [B, K], got {tuple(y.shape)}")
    if readout == "mean":
        return y.mean(0)
    if readout == "sum":
        return y.sum(0)
    if readout == "max":
        return y.max(0).values
    if readout == "softmax_sum":  # sum over time of per-step class probabilities (the DCLS delays paper's readout)
        return torch.softmax(y, dim=-1).sum(0)
    return y[-1]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int, readout: str, device: torch.device,
            desc: str = "") -> torch.Tensor:
    """Logits for batch-first inputs ``[N, T, ...]``."""
    model.eval()
    outs = []
    starts = range(0, x.shape[0], batch_size)
    for i in progress(starts, total=len(starts), desc=desc or "evaluating"):
        xb = time_first(x[i:i + batch_size]).to(device)
        outs.append(logits_from(model(xb), readout).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0)


def evaluate(model: nn.Module, split: Split, batch_size: int, readout: str, device: torch.device,
             n_classes: int, desc: str = "") -> dict[str, Any]:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted; as many as the model has outputs
    when that exceeds ``n_classes``)."""
    if len(split) == 0:
        return {"n": 0, "loss": None, "acc": None, "confusion": []}
    logits = predict(model, split.x, batch_size, readout, device, desc)
    loss = float(F.cross_entropy(logits, split.y))
    pred = logits.argmax(1)
    size = max(n_classes, int(logits.shape[1]))  # a model with extra outputs can predict a class no label has
    cm = torch.zeros(size, size, dtype=torch.long)
    cm.index_put_((split.y, pred), torch.ones_like(pred), accumulate=True)
    return {"n": len(split), "loss": loss, "acc": float((pred == split.y).float().mean()),
            "confusion": cm.tolist()}


def spiking_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose output is spikes: stateful modules with a threshold (LIF, IF, CubaLIF, ALIF, ...) or with a
    spiking ``neuron`` member (recurrent layers such as RLIF)."""

    def spiking(m: nn.Module) -> bool:
        return isinstance(m, StatefulModule) and hasattr(m, "v_th")

    return [(name, m) for name, m in model.named_modules()
            if spiking(m) or (isinstance(m, StatefulModule) and spiking(getattr(m, "neuron", None) or nn.Module()))]


def _state_spikes(state: Any) -> dict[str, torch.Tensor]:
    """Spike fields of a NamedTuple state: ``s_*`` (e.g. ``s_h``, ``s_m``) and ``z`` tensors ``[B, ...]``."""
    fields = getattr(state, "_fields", ())
    return {f: getattr(state, f) for f in fields
            if (f.startswith("s_") or f == "z") and isinstance(getattr(state, f), torch.Tensor)}


@torch.no_grad()
def spike_stats(model: nn.Module, x: torch.Tensor, device: torch.device, raster_neurons: int = 64,
                raster_sample: int = 0) -> dict[str, Any]:
    """Per-layer firing rates over the batch-first inputs ``x`` and a spike raster of one sample.

    Firing rate = spikes / (neurons x time steps x samples). Spikes are recorded with forward hooks on the spiking
    populations (LIF, CubaLIF, ...) that run as modules; a model with a ``forward_with_spike_counts(x)`` method
    (returning ``y, state, {population: (spikes, neuron_steps)}``) reports its own populations, and spike fields of its
    state (``s_*``, ``z``) are recorded step by step for the raster. The raster lists ``[t, neuron]`` pairs of the
    first ``raster_neurons`` neurons of each layer for sample ``raster_sample``.
    """
    model.eval()
    layers = spiking_layers(model)
    records: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}

    def hook(name):
        def fn(_m, _inp, out):
            z = out[0] if isinstance(out, tuple) else out
            records[name].append(z.detach().float().cpu())
        return fn

    xt = time_first(x).to(device)
    counted = getattr(model, "forward_with_spike_counts", None)
    takes_stats = callable(counted)
    own: dict[str, tuple[float, int]] = {}
    handles = [m.register_forward_hook(hook(name)) for name, m in layers]
    try:
        if takes_stats:
            y, st, own = counted(xt)
            out = (y, st)
        else:
            out = model(xt)
    finally:
        for h in handles:
            h.remove()
    out_layers, raster = [], {}
    n_b, n_t = int(xt.shape[1]), int(xt.shape[0])
    for name, _ in layers:
        if not records[name]:
            continue
        z = torch.cat(records[name], dim=0)  # [T, B, ...] (step-wise calls are concatenated along time)
        z = z.reshape(z.shape[0], z.shape[1], -1)
        if not takes_stats:
            out_layers.append({"name": name, "neurons": int(z.shape[2]), "steps": int(z.shape[0]),
                               "rate": float(z.mean()), "spikes_per_sample": float(z.sum() / z.shape[1])})
        zs = z[:, raster_sample, :raster_neurons]
        idx = torch.nonzero(zs > 0)
        raster[name] = {"neurons": int(zs.shape[1]), "steps": int(zs.shape[0]), "events": idx.tolist()}
    for name, (spikes, neuron_steps) in own.items():
        out_layers.append({"name": name, "neurons": int(neuron_steps // max(n_t * n_b, 1)), "steps": n_t,
                           "rate": float(spikes / max(neuron_steps, 1)), "spikes_per_sample": float(spikes / n_b)})
    state = out[1] if isinstance(out, tuple) and len(out) > 1 else None
    if _state_spikes(state) and (takes_stats or not out_layers):
        steps: dict[str, list[torch.Tensor]] = {}
        st = None
        x0 = xt[:, raster_sample:raster_sample + 1]
        for t in range(n_t):
            _, st = model(x0[t:t + 1], st)
            for f, v in _state_spikes(st).items():
                steps.setdefault(f, []).append(v[0].reshape(-1)[:raster_neurons].float().cpu())
        for f, seq in steps.items():
            zs = torch.stack(seq)
            raster[f"state.{f}"] = {"neurons": int(zs.shape[1]), "steps": int(zs.shape[0]),
                                    "events": torch.nonzero(zs > 0).tolist()}
    return {"samples": n_b, "layers": out_layers, "raster": raster}
