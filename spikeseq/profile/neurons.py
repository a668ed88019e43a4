"""Counters for spiking neuron populations: spikeseq (time-first, counted from the input and output sequences
without re-running the neuron) and snnTorch (one call per step; registered when snnTorch is importable).

State operations per neuron and step (the equations of :mod:`spikeseq.functional`):

=========  ===================================================  =====  =========================  ==========
model      update                                               mults  adds                       state words
=========  ===================================================  =====  =========================  ==========
LIF        v = beta*v + x; z = v > v_th; reset                  1      1 (+1 per spike, subtract)  1
IF         v = v + x; z = v > v_th; reset                       0      1 (+1 per spike, subtract)  1
CubaLIF    i = alpha*i + x; v = beta*v + i; reset               2      2 (+1 per spike, subtract)  2
ALIF       theta = v_th + adapt*a; v = beta*v + x; a = rho*a+z  3      2 (+2 per spike, subtract)  2
LI         v = beta*v + x (the output is v)                     1      1                           1
=========  ===================================================  =====  =========================  ==========

plus one threshold comparison per neuron and step for spiking models (``state_cmps``), one state read and one
write per state word (Lemaire et al.: the leak update reads and writes the potential every step), and one
output write per spike. The leak MAC and the per-spike reset add are Lemaire et al.'s ``T*N`` leak MACs and
``theta_out`` reset adds. snnTorch ``Leaky``/``RLeaky`` count as LIF and ``Synaptic``/``RSynaptic`` as CubaLIF.
"""

from __future__ import annotations

import torch

from spikeseq import nn as snn_
from spikeseq.dynamics import reset_membrane
from spikeseq.profile.context import CallContext
from spikeseq.profile.counters import F64, full_steps, mask_float, rowsum_steps
from spikeseq.profile.registry import register_counter

#: (mults, adds per neuron, extra adds per spike with subtract reset, state words, spiking)
MODEL_OPS: dict[str, tuple[int, int, int, int, bool]] = {
    "LIF": (1, 1, 1, 1, True),
    "IF": (0, 1, 1, 1, True),
    "CubaLIF": (2, 2, 1, 2, True),
    "ALIF": (3, 2, 2, 2, True),
    "LI": (1, 1, 0, 1, False),
}

#: NeuroBench 2.3 NeuronOperations cost per membrane update, by snnTorch class and reset mechanism
#: (neurobench/metrics/workload/neuron_operations.py ``neuron_ops_reset_operations``).
NB_NEURON_OPS: dict[str, dict[str, int]] = {
    "Leaky": {"subtract": 4, "zero": 4},
    "Synaptic": {"subtract": 6, "zero": 8},
    "Lapicque": {"subtract": 11, "zero": 11},
    "Alpha": {"subtract": 18, "zero": 24},
}


def neuron_counts(xs: torch.Tensor, zs: torch.Tensor, model: str, reset: str, *, binary_out: bool = False) -> dict:
    """Counts of a neuron population from its input ``xs`` and output ``zs`` (both ``[T, ...]``).

    ``binary_out``: ``zs`` is known to hold only 0/1 (spikes), so its sum is the spike count.
    """
    mults, adds, spike_adds, words, spiking = MODEL_OPS[model]
    t = xs.shape[0]
    n = xs[0].numel()
    last = xs.shape[-1] if xs.dim() > 1 else 1
    active = rowsum_steps(mask_float(xs.reshape(-1, last), xs.dtype), t)
    z2 = zs.reshape(-1, last)
    nz = rowsum_steps(z2 if binary_out else mask_float(z2, zs.dtype), t)
    per_spike = spike_adds if (reset == "subtract" and spiking) else (1 if model == "ALIF" else 0)
    res = {
        "neuron_updates": full_steps(t, n), "neuron_updates_active": active,
        "state_mults": full_steps(t, mults * n), "state_adds": full_steps(t, adds * n) + per_spike * nz,
        "mem_state_reads": full_steps(t, words * n), "mem_state_writes": full_steps(t, words * n),
    }
    if spiking:  # a membrane readout (LI) is not an activation: it stays out of activation sparsity
        res.update(state_cmps=full_steps(t, n), spikes_out=nz, mem_output_writes=nz, out_nonzero=nz,
                   out_elements=full_steps(t, n))
    else:
        res["mem_output_writes"] = full_steps(t, n)
    return res


def _membrane_updates(traj: list[torch.Tensor], v0: torch.Tensor, first_call: bool) -> torch.Tensor:
    """NeuroBench MembraneUpdates per step: all neurons on the very first step of a batch, afterwards the
    neurons whose state changed."""
    out = torch.empty(len(traj), dtype=F64)
    prev = v0
    for k, v in enumerate(traj):
        out[k] = float(v.numel()) if (k == 0 and first_call) else float(torch.count_nonzero(v - prev))
        prev = v
    return out


def _spikeseq_trajectory(m, xs: torch.Tensor, state) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Re-run the membrane of a spikeseq LIF/IF/CubaLIF/ALIF (NeuroBench mode only: MembraneUpdates needs v)."""
    th = m.v_th
    beta = torch.ones(()) if isinstance(m, snn_.IF) else m.time.decay("mem")
    zero = torch.zeros_like(xs[0])
    v = zero if state is None else state.v
    v0 = v
    i = zero if (state is None or not hasattr(state, "i")) else state.i
    a = zero if (state is None or not hasattr(state, "a")) else state.a
    traj = []
    for t in range(xs.shape[0]):
        x = xs[t]
        theta = th
        if isinstance(m, snn_.CubaLIF):
            i = m.time.decay("syn") * i + x
            x = i
        if isinstance(m, snn_.ALIF):
            theta = th + m.adapt * a
        v_pre = beta * v + x
        z = (v_pre > theta).to(v_pre.dtype)
        v = reset_membrane(v_pre, z, theta, m.reset)
        if isinstance(m, snn_.ALIF):
            a = m.time.decay("adapt") * a + z
        traj.append(v)
    return traj, v0


def _count_spikeseq_neuron(model: str):
    def fn(m, args, kwargs, out, ctx: CallContext) -> dict:
        xs = args[0]
        zs = out[0]
        spiking = model != "LI"
        res = neuron_counts(xs, zs, model, getattr(m, "reset", "none"), binary_out=spiking)
        if spiking:
            ctx.mark_binary(zs)
        if ctx.neurobench and model != "LI":
            state = args[1] if len(args) > 1 else kwargs.get("state")
            traj, v0 = _spikeseq_trajectory(m, xs, state)
            res["nb_membrane_updates"] = _membrane_updates(traj, v0, ctx.call_index == 0)
            res["nb_act_nonzero"] = res["out_nonzero"]
            res["nb_act_elements"] = res["out_elements"]
        return res

    return fn


for _cls, _model in ((snn_.LIF, "LIF"), (snn_.IF, "IF"), (snn_.CubaLIF, "CubaLIF"), (snn_.ALIF, "ALIF"),
                     (snn_.LI, "LI")):
    register_counter(_cls, _count_spikeseq_neuron(_model), kind="neuron", time_first=True,
                     nb_activation=_model != "LI")


# --------------------------------------------------------------------------------------------------- snnTorch
_SNNTORCH_MODELS = {"Leaky": "LIF", "RLeaky": "LIF", "Synaptic": "CubaLIF", "RSynaptic": "CubaLIF"}
_snntorch_done = False


def _snn_pre(m, args, kwargs):
    mem = getattr(m, "mem", None)
    return mem.detach().clone() if isinstance(mem, torch.Tensor) else None


def _count_snntorch(m, args, kwargs, out, ctx: CallContext) -> dict:
    x = args[0]
    spk = out[0] if isinstance(out, tuple) else out
    cls = type(m).__name__
    reset = getattr(m, "_reset_mechanism", "subtract")
    model = _SNNTORCH_MODELS.get(cls)
    if model is None:
        t = 1
        nz = (spk != 0).sum(dtype=F64).reshape(1).cpu()
        res = {"neuron_updates": full_steps(t, x.numel()), "spikes_out": nz, "out_nonzero": nz,
               "out_elements": full_steps(t, spk.numel()), "mem_output_writes": nz}
        ctx.notes.append(f"state arithmetic of snntorch.{cls} is not modelled (neuron updates and spikes only)")
    else:
        res = neuron_counts(x.unsqueeze(0), spk.unsqueeze(0), model, reset)
    if ctx.neurobench:
        res["nb_act_nonzero"] = (spk != 0).sum(dtype=F64).reshape(1).cpu()
        res["nb_act_elements"] = full_steps(1, spk.numel())
        post = getattr(m, "mem", None)
        pre = ctx.stash
        if post is not None:
            if ctx.call_index == 0:
                upd = float(post.numel())
            else:
                upd = float(torch.count_nonzero(pre - post))
            res["nb_membrane_updates"] = full_steps(1, upd)
            cost = NB_NEURON_OPS.get(cls, {}).get(reset)
            if cost is None:  # NeuroBench raises a KeyError here: its manager reports NeuronOperations = 0.0 for
                # the whole network (not only this layer), which neurobench_metrics reproduces from this marker
                ctx.notes.append(f"NeuroBench NeuronOperations has no cost for snntorch.{cls} with reset "
                                 f"{reset!r}: NeuroBench reports NeuronOperations = 0.0 for the whole network")
                res["nb_neuron_ops_uncosted"] = full_steps(1, 1.0)
                cost = 0
            res["nb_neuron_ops"] = full_steps(1, upd * cost)
            res["nb_neuron_dense_ops"] = full_steps(1, post.numel() * cost)
    return res


def register_snntorch() -> bool:
    """Register the snnTorch neuron counters (idempotent); False when snnTorch is not installed."""
    global _snntorch_done
    if _snntorch_done:
        return True
    try:
        import snntorch
    except ImportError:
        return False
    register_counter(snntorch.SpikingNeuron, _count_snntorch, kind="neuron", descend=True, pre=_snn_pre,
                     nb_activation=True)
    _snntorch_done = True
    return True
