"""py-spinnaker2 ``snn`` stand-in: populations, projections, networks (see the package docstring)."""

from __future__ import annotations

import numpy as np

MODELS = ("spike_list", "lif", "lif_no_delay", "lif_curr_exp", "lif_curr_exp_no_delay")


class Population:
    """A population of ``size`` neurons of one ``neuron_model`` with its ``params``."""

    def __init__(self, size, neuron_model, params=None, name="", record=None):
        if neuron_model not in MODELS:
            raise ValueError(f"stand-in: neuron model {neuron_model!r} is not modelled ({MODELS})")
        self.size, self.neuron_model, self.params, self.name = int(size), neuron_model, params or {}, name
        self.record = list(record or [])
        self.max_atoms_per_core = 256
        self._spikes: dict[int, list[int]] = {}
        self._voltages: dict[int, np.ndarray] = {}

    def set_max_atoms_per_core(self, n):
        self.max_atoms_per_core = int(n)

    def get_spikes(self):
        """{neuron: [ticks]} of the last run (recorded populations)."""
        if "spikes" not in self.record:
            raise RuntimeError(f"population {self.name!r} does not record spikes")
        return self._spikes

    def get_voltages(self):
        """{neuron: np.ndarray [ticks]} of the last run (recorded populations)."""
        if "v" not in self.record:
            raise RuntimeError(f"population {self.name!r} does not record v")
        return self._voltages

    def _param(self, key, default=None):
        v = self.params.get(key, default)
        if v is None:
            raise ValueError(f"population {self.name!r}: parameter {key!r} missing")
        return np.broadcast_to(np.asarray(v, np.float32), (self.size,)).copy()


class Projection:
    """Connections ``[[pre, post, weight, delay], ...]`` from ``pre`` to ``post``."""

    def __init__(self, pre, post, connections, name=""):
        self.pre, self.post, self.name = pre, post, name
        c = np.asarray(connections, np.int64).reshape(-1, 4)
        self.pre_idx, self.post_idx, self.weight, self.delay = c.T
        if post.neuron_model.endswith("no_delay") and np.any(self.delay != 0):
            raise ValueError(f"projection into {post.name!r} ({post.neuron_model}) carries delays")
        if post.neuron_model == "lif" and (np.any(np.abs(self.weight) > 15) or np.any(self.delay > 7)):
            raise ValueError("the 'lif' model takes weights in [-15, 15] and delays in [0, 7]")
        if np.any(np.abs(self.weight) > 127):
            raise ValueError("weights must be int8")


class Network:
    """A named set of populations and projections."""

    def __init__(self, name=""):
        self.name, self.populations, self.projections = name, [], []

    def add(self, *items):
        for it in items:
            (self.projections if isinstance(it, Projection) else self.populations).append(it)

    def validate(self):
        for p in self.projections:
            if p.pre not in self.populations or p.post not in self.populations:
                raise ValueError(f"projection {p.name!r} connects a population not in the network")

    def reset(self):
        for p in self.populations:
            p._spikes, p._voltages = {}, {}
