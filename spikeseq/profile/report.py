"""``ProfileReport``: per-layer, per-time-step counts (numpy arrays, summed over the batch) and their summaries."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikeseq.profile.registry import COUNT_KEYS

#: Columns of the Markdown layer table (per sample, summed over time).
TABLE_KEYS = ("dense_macs", "eff_macs", "eff_acs", "bias_adds", "state_mults", "state_adds", "neuron_updates",
              "spikes_out")


@dataclass
class LayerProfile:
    """Counts of one layer: ``counts[key]`` is a ``[T]`` array summed over the batch (all samples)."""

    name: str
    type: str
    kind: str
    counts: dict[str, np.ndarray]
    params: int = 0
    weights: int = 0
    nonzero_weights: int = 0

    def total(self, key: str) -> float:
        """``counts[key]`` summed over time (0 when the layer has no such counter)."""
        v = self.counts.get(key)
        return float(v.sum()) if v is not None else 0.0


@dataclass
class ProfileReport:
    """Result of :func:`spikeseq.profile.count`.

    ``layers`` in call-graph order; ``n_samples`` samples were profiled over ``time_steps`` steps; ``not_counted``
    lists ``{name, type, reason}`` for every module that ran but was not (fully) counted; ``neurobench`` holds the
    NeuroBench-compatible metrics when requested.
    """

    layers: list[LayerProfile]
    n_samples: int
    time_steps: int
    not_counted: list[dict] = field(default_factory=list)
    bits: dict[str, int] = field(default_factory=lambda: {"weight": 32, "state": 32, "io": 32})
    model_name: str = ""
    neurobench: dict | None = None

    # ------------------------------------------------------------------------------------------------- queries
    def layer(self, name: str) -> LayerProfile:
        """The :class:`LayerProfile` named ``name``; ``KeyError`` listing the layers otherwise."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers: {', '.join(layer.name for layer in self.layers)}")

    def totals(self, per_sample: bool = True) -> dict[str, float]:
        """Every counter summed over layers and time (per sample by default)."""
        n = max(self.n_samples, 1) if per_sample else 1
        out = {k: 0.0 for k in COUNT_KEYS}
        for layer in self.layers:
            for k, v in layer.counts.items():
                if not k.startswith("nb_"):
                    out[k] = out.get(k, 0.0) + float(v.sum())
        return {k: v / n for k, v in out.items()}

    def per_step(self, key: str, per_sample: bool = True, layer: str | None = None) -> np.ndarray:
        """``[T]`` array of one counter, summed over layers (or for one ``layer``)."""
        arr = np.zeros(self.time_steps)
        for lp in ([self.layer(layer)] if layer else self.layers):
            v = lp.counts.get(key)
            if v is not None:
                if v.shape[0] > arr.shape[0]:
                    arr = np.pad(arr, (0, v.shape[0] - arr.shape[0]))
                arr[: v.shape[0]] += v
        return arr / (max(self.n_samples, 1) if per_sample else 1)

    def activation_sparsity(self) -> float:
        """Zeros / elements over the outputs of neuron and activation layers (network input excluded)."""
        nz = sum(layer.total("out_nonzero") for layer in self.layers)
        el = sum(layer.total("out_elements") for layer in self.layers)
        return 1.0 - nz / el if el else 0.0

    def spike_rate(self, layer: str) -> np.ndarray:
        """Per step: spikes / neurons of one neuron layer (fraction firing)."""
        lp = self.layer(layer)
        el = lp.counts.get("out_elements")
        nz = lp.counts.get("spikes_out", lp.counts.get("out_nonzero"))
        if el is None or nz is None:
            raise KeyError(f"layer {layer!r} has no outputs counted")
        return np.divide(nz, el, out=np.zeros_like(nz), where=el > 0)

    def energy(self, table, memory: bool = True, precision: str = "fp32"):
        """:class:`~spikeseq.profile.energy.EnergyEstimate` per sample on a hardware table (name or spec)."""
        from spikeseq.profile.energy import estimate

        return estimate(self, table, memory=memory, precision=precision)

    def energies(self, tables: list[str] | None = None, precision: str = "fp32") -> dict[str, dict]:
        """``{table: {"memory_on_pj", "memory_off_pj", "notes"}}`` for every table with energy figures."""
        from spikeseq import hardware

        out: dict[str, dict] = {}
        for name in tables or hardware.available():
            spec = hardware.load(name)
            if not spec.energy:
                out[name] = {"memory_on_pj": None, "memory_off_pj": None, "notes": list(spec.notes)}
                continue
            on, off = self.energy(spec, True, precision), self.energy(spec, False, precision)
            out[name] = {"memory_on_pj": on.total_pj, "memory_off_pj": off.total_pj, "notes": list(on.notes)}
        return out

    # ------------------------------------------------------------------------------------------------- output
    def to_dict(self, energy_tables: list[str] | None = None, per_step: bool = True) -> dict:
        """The report as JSON-ready data: totals and layers per sample (per step too when ``per_step``), energies.

        ``energy_tables`` names the ``hardware/`` tables to price the counts with (default: every table).
        """
        n = max(self.n_samples, 1)
        layers = []
        for lp in self.layers:
            d = {"name": lp.name, "type": lp.type, "kind": lp.kind, "params": lp.params, "weights": lp.weights,
                 "nonzero_weights": lp.nonzero_weights,
                 "totals_per_sample": {k: float(v.sum()) / n for k, v in lp.counts.items()}}
            if per_step:
                d["per_step_per_sample"] = {k: (v / n).tolist() for k, v in lp.counts.items()}
            layers.append(d)
        return {
            "model": self.model_name, "n_samples": self.n_samples, "time_steps": self.time_steps,
            "bits": dict(self.bits), "totals_per_sample": self.totals(),
            "activation_sparsity": self.activation_sparsity(), "layers": layers,
            "not_counted": list(self.not_counted), "neurobench": self.neurobench,
            "energy_per_sample_pj": self.energies(energy_tables),
        }

    def save_json(self, path: str | os.PathLike, energy_tables: list[str] | None = None) -> Path:
        """Write :meth:`to_dict` as JSON atomically (temporary file + rename)."""
        text = json.dumps(self.to_dict(energy_tables), indent=1, default=float)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def to_markdown(self, energy_tables: list[str] | None = None, precision: str = "fp32") -> str:
        """Markdown tables: counts per layer and sample, then energy per table at ``precision``."""
        n = max(self.n_samples, 1)
        lines = [f"### Operation counts: {self.model_name} (per sample, T = {self.time_steps}, "
                 f"{self.n_samples} samples)", ""]
        lines.append("| layer | type | " + " | ".join(TABLE_KEYS) + " | spike rate |")
        lines.append("|---|---|" + "---:|" * (len(TABLE_KEYS) + 1))
        for lp in self.layers:
            cells = [_fmt(lp.total(k) / n) for k in TABLE_KEYS]
            el = lp.total("out_elements")
            rate = f"{lp.total('spikes_out') / el:.4f}" if el and "spikes_out" in lp.counts else ""
            lines.append(f"| {lp.name} | {lp.type} | " + " | ".join(cells) + f" | {rate} |")
        tot = self.totals()
        lines.append("| **total** | | " + " | ".join(_fmt(tot.get(k, 0.0)) for k in TABLE_KEYS) + " | |")
        lines += ["", f"Activation sparsity: {self.activation_sparsity():.5f}"]
        energies = self.energies(energy_tables, precision)
        lines += ["", "| hardware table | energy / inference, memory on | memory off |", "|---|---:|---:|"]
        for name, e in energies.items():
            on, off = e["memory_on_pj"], e["memory_off_pj"]
            lines.append(f"| {name} | {format_pj(on)} | {format_pj(off)} |")
        if self.neurobench:
            nb = self.neurobench
            so = nb["SynapticOperations"]
            lines += ["", "NeuroBench-compatible: " + ", ".join([
                f"Effective_MACs {so['Effective_MACs']:g}", f"Effective_ACs {so['Effective_ACs']:g}",
                f"Dense {so['Dense']:g}", f"ActivationSparsity {nb['ActivationSparsity']:.6g}",
                f"MembraneUpdates {nb['MembraneUpdates']:g}", f"ParameterCount {nb.get('ParameterCount')}",
                f"ConnectionSparsity {nb.get('ConnectionSparsity')}"])]
        if self.not_counted:
            lines += ["", "Not counted: " + "; ".join(f"`{d['name']}` ({d['type']}): {d['reason']}"
                                                     for d in self.not_counted)]
        return "\n".join(lines) + "\n"


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path`` (ordinary file
    permissions, i.e. 0666 minus the umask; nothing is left behind on failure): :func:`spikeseq._atomic.atomic_path`."""
    from spikeseq._atomic import atomic_path

    with atomic_path(path) as tmp:
        write(str(tmp))
    return Path(path)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e6:
        return f"{v:.4g}"
    return f"{v:.6g}"


def format_pj(v: float | None) -> str:
    """An energy in picojoules with a readable unit (pJ, nJ, µJ, mJ); ``None``: "no published figures"."""
    if v is None:
        return "no published figures"
    for unit, f in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(v) >= f:
            return f"{v / f:.4g} {unit}"
    return f"{v:.4g} pJ"
