"""py-spinnaker2 ``hardware`` stand-in: ``SpiNNaker2Chip.run`` simulates the network (see the package docstring)."""

from __future__ import annotations

import numpy as np

F32 = np.float32


def simulate(net, timesteps):
    """Run ``net`` for ``timesteps`` ticks; fills each recorded population's spikes and voltages."""
    net.validate()
    pops = net.populations
    z = {id(p): np.zeros((timesteps, p.size), bool) for p in pops}
    for p in pops:
        if p.neuron_model == "spike_list":
            for n, ts in p.params.items():
                ts = [t for t in ts if 0 <= int(t) < timesteps]
                z[id(p)][np.asarray(ts, np.int64), int(n)] = True
    state = {}
    for p in pops:
        if p.neuron_model != "spike_list":
            state[id(p)] = {"v": np.full(p.size, p.params.get("v_init", 0.0), F32), "exc": np.zeros(p.size, F32),
                            "inh": np.zeros(p.size, F32)}
    volts = {id(p): np.zeros((timesteps, p.size), F32) for p in pops}
    for t in range(timesteps):
        for p in pops:
            if p.neuron_model == "spike_list":
                continue
            exc = np.zeros(p.size, np.float64)
            inh = np.zeros(p.size, np.float64)
            for q in net.projections:
                if q.post is not p:
                    continue
                src = t - 1 - q.delay
                ok = src >= 0
                fired = np.zeros(len(q.weight), bool)
                fired[ok] = z[id(q.pre)][src[ok], q.pre_idx[ok]]
                w = q.weight[fired]
                np.add.at(exc, q.post_idx[fired][w > 0], w[w > 0])
                np.add.at(inh, q.post_idx[fired][w < 0], -w[w < 0])
            s = state[id(p)]
            alpha, off, th = p._param("alpha_decay"), p._param("i_offset", 0.0), p._param("threshold")
            if p.neuron_model.startswith("lif_curr_exp"):
                s["exc"] = F32(p._param("exc_decay")) * s["exc"] + exc.astype(F32)
                s["inh"] = F32(p._param("inh_decay")) * s["inh"] + inh.astype(F32)
                syn = s["exc"] - s["inh"]
            else:
                syn = (exc - inh).astype(F32)
            v = (alpha * s["v"] + off + syn).astype(F32)
            fire = v > th
            if p.params.get("reset", "reset_by_subtraction") == "reset_by_subtraction":
                v = np.where(fire, v - th, v).astype(F32)
            else:
                v = np.where(fire, p._param("v_reset", 0.0), v).astype(F32)
            s["v"] = v
            z[id(p)][t] = fire
            volts[id(p)][t] = v
    for p in pops:
        if "spikes" in p.record:
            p._spikes = {n: np.flatnonzero(z[id(p)][:, n]).tolist() for n in range(p.size)}
        if "v" in p.record:
            p._voltages = {n: volts[id(p)][:, n].copy() for n in range(p.size)}


class SpiNNaker2Chip:
    """Stand-in for the chip: runs the simulation above (``eth_ip`` is only recorded)."""

    def __init__(self, eth_ip="", **kwargs):
        self.eth_ip = eth_ip

    def run(self, net, timesteps, sys_tick_in_s=1e-3, debug=False, **kwargs):
        simulate(net, int(timesteps))
