"""The report's figures as PNG bytes (matplotlib, Agg backend; the ``report`` extra)."""

from __future__ import annotations

import io
from typing import Any

from spikeseq.errors import SpikeseqError


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise SpikeseqError(f"plots need matplotlib: pip install 'spikeseq[report]' ({e})") from None
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def training_curves(metrics: list[dict[str, Any]]) -> bytes:
    """PNG of loss and accuracy per epoch (train, and validation where present) from metrics.jsonl records."""
    plt = _plt()
    ep = [m["epoch"] for m in metrics]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(ep, [m["train_loss"] for m in metrics], "o-", label="train")
    if any(m.get("val_loss") is not None for m in metrics):
        a.plot(ep, [m.get("val_loss") for m in metrics], "s-", label="validation")
    a.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    b.plot(ep, [m["train_acc"] for m in metrics], "o-", label="train")
    if any(m.get("val_acc") is not None for m in metrics):
        b.plot(ep, [m.get("val_acc") for m in metrics], "s-", label="validation")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    return _png(fig)


def confusion(cm: list[list[int]], classes: list[str]) -> bytes:
    """PNG of the confusion matrix ``cm[true][pred]`` with counts, coloured by row fraction."""
    plt = _plt()
    import numpy as np

    m = np.asarray(cm, dtype=float)
    n = m.shape[0]
    size = max(3.5, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    rows = m.sum(1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center",
                    color="white" if frac[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test; colour = row fraction)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)


def raster(raster: dict[str, Any]) -> bytes:
    """PNG spike raster, one panel per layer: ``raster[name]["events"]`` holds ``(step, neuron)`` pairs."""
    plt = _plt()
    names = list(raster)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.8 + 1.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        r = raster[name]
        ev = r["events"]
        if ev:
            t, n = zip(*ev)
            ax.scatter(t, n, s=30, marker="|", color="black", linewidths=1.2)
        ax.set(xlim=(-0.5, r["steps"] - 0.5), ylim=(-0.5, r["neurons"] - 0.5), ylabel="neuron",
               title=f"{name}: {len(ev)} spikes of the first {r['neurons']} neurons, test sample 0")
    axes[-1, 0].set_xlabel("time step")
    fig.tight_layout()
    return _png(fig)


def firing_rates(layers: list[dict[str, Any]]) -> bytes:
    """PNG bar chart of spikes per neuron per step, one bar per ``{"name", "rate"}`` layer record."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(layers) + 2), 3.2))
    ax.bar([lay["name"] for lay in layers], [lay["rate"] for lay in layers], color="tab:orange")
    for i, lay in enumerate(layers):
        ax.text(i, lay["rate"], f"{lay['rate']:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="spikes / neuron / step", title="firing rate per spiking layer (test samples)")
    ax.tick_params(axis="x", rotation=30)
    return _png(fig)


def energy_bars(energy: dict[str, dict[str, Any]]) -> bytes:
    """Energy per inference per hardware table, memory on / off (log scale; tables without figures left out)."""
    plt = _plt()
    import numpy as np

    names = [t for t, e in energy.items() if e["memory_on"].get("total_pj")]
    on = np.array([energy[t]["memory_on"]["total_pj"] for t in names], dtype=float)
    off = np.array([energy[t]["memory_off"]["total_pj"] or np.nan for t in names], dtype=float)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    ax.bar(x - 0.2, on / 1e3, width=0.4, label="with memory access")
    ax.bar(x + 0.2, off / 1e3, width=0.4, label="compute only")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set(ylabel="nJ per inference", title="energy estimate per hardware table")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    return _png(fig)


def layer_energy_bars(energy: dict[str, dict[str, Any]]) -> bytes:
    """Share of each layer in the energy per inference (memory on), one stacked 100% bar per hardware table."""
    plt = _plt()
    import numpy as np

    names = [t for t, e in energy.items() if e["memory_on"].get("per_layer_pj")]
    layers: list[str] = []
    for t in names:
        for lay in energy[t]["memory_on"]["per_layer_pj"]:
            if lay not in layers:
                layers.append(lay)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names) + 3), 3.8))
    bottom = np.zeros(len(names))
    totals = np.array([sum(energy[t]["memory_on"]["per_layer_pj"].values()) or 1.0 for t in names])
    cmap = plt.get_cmap("tab20")
    for i, lay in enumerate(layers):
        vals = np.array([energy[t]["memory_on"]["per_layer_pj"].get(lay, 0.0) for t in names]) / totals * 100
        ax.bar(names, vals, bottom=bottom, label=lay, color=cmap(i % 20))
        bottom += vals
    ax.set(ylabel="% of energy per inference", title="where the energy goes: share per layer (with memory access)",
           ylim=(0, 100))
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return _png(fig)


def ops_bars(layers: list[dict[str, Any]]) -> bytes:
    """Dense MACs vs effective MACs / ACs per layer (per sample)."""
    plt = _plt()
    import numpy as np

    keys = ("dense_macs", "eff_macs", "eff_acs")
    names = [lay["name"] for lay in layers]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    for i, k in enumerate(keys):
        vals = [lay["totals_per_sample"].get(k, 0.0) for lay in layers]
        ax.bar(x + (i - 1) * 0.27, vals, width=0.27, label=k)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set(ylabel="operations per sample", title="operations per layer")
    ax.set_yscale("symlog")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    return _png(fig)
