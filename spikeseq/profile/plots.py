"""Figures of a :class:`~spikeseq.profile.ProfileReport` (matplotlib, imported only when a figure is drawn)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeseq.errors import ConfigError
from spikeseq.profile.report import atomic_write


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is the `report` extra
        raise ConfigError("plotting needs matplotlib: pip install 'spikeseq[report]'") from e
    return plt


def plot_profile(report, path: str | os.PathLike, *, tables: tuple[str, ...] = ("horowitz45nm", "loihi",
                                                                               "spinnaker2"),
                 precision: str = "fp32") -> Path:
    """Write a PNG with three panels: per-layer operations (dense / effective MACs / ACs), per-layer energy on
    ``tables`` (memory terms on), and the spike rate of every spiking layer over time. Written atomically."""
    plt = _pyplot()
    path = Path(path)
    n = max(report.n_samples, 1)
    names = [lp.name for lp in report.layers]
    fig, axes = plt.subplots(3, 1, figsize=(max(8.0, 0.6 * len(names) + 3), 11))
    x = np.arange(len(names))
    w = 0.27
    ax = axes[0]
    for k, (key, label) in enumerate((("dense_macs", "dense"), ("eff_macs", "effective MACs"),
                                       ("eff_acs", "effective ACs"))):
        vals = [lp.total(key) / n for lp in report.layers]
        ax.bar(x + (k - 1) * w, vals, w, label=label)
    ax.set_yscale("symlog")
    ax.set_ylabel("synaptic ops / sample")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.legend(fontsize=8)
    ax.set_title(f"{report.model_name}: operations per layer (T = {report.time_steps})")
    ax = axes[1]
    usable = []
    for name in tables:
        try:
            usable.append((name, report.energy(name, memory=True, precision=precision)))
        except ConfigError:
            continue
    wt = 0.8 / max(len(usable), 1)
    for k, (name, est) in enumerate(usable):
        vals = [est.per_layer_pj.get(lp.name, 0.0) / 1e3 for lp in report.layers]
        ax.bar(x + (k - (len(usable) - 1) / 2) * wt, vals, wt, label=name)
    ax.set_yscale("symlog")
    ax.set_ylabel("energy / sample [nJ]")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.legend(fontsize=8)
    ax.set_title("energy per layer (memory terms on)")
    ax = axes[2]
    for lp in report.layers:
        if "spikes_out" in lp.counts:
            ax.plot(report.spike_rate(lp.name), label=lp.name)
    ax.set_xlabel("time step")
    ax.set_ylabel("spike rate (fraction of neurons)")
    ax.set_title("spike rates over time")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
