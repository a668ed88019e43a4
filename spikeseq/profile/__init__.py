"""Op-counting profiler and energy estimates per layer, per time step and per hardware target.

    report = spikeseq.profile.count(model, x)              # x: [T, B, ...]; run="steps" for snnTorch loops
    report.totals()                                        # per sample: dense_macs, eff_macs, eff_acs, ...
    report.per_step("spikes_out")                          # [T] array
    report.energy("loihi", memory=False).total_pj          # per sample (one inference)
    report.to_markdown(); report.save_json("profile.json")
    spikeseq.profile.count(net, x, run="steps", neurobench=True).neurobench   # NeuroBench 2.3 numbers

Counters live in a registry (:func:`register_counter`) keyed by module type: ``counters`` (torch.nn),
``neurons`` (spikeseq and snnTorch neurons), ``spikeseq_modules`` (LMU memory, delays, recurrent cells).
A module that runs but has no counter is listed in ``report.not_counted`` (or raises with ``strict=True``).
"""

from spikeseq.profile import spikeseq_modules as _spikeseq_modules  # noqa: F401  (registers counters)
from spikeseq.profile.context import CallContext
from spikeseq.profile.core import count, profile_batches, run_steps
from spikeseq.profile.counters import matmul_counts
from spikeseq.profile.energy import EnergyEstimate, estimate
from spikeseq.profile.mapping import mapped_energy
from spikeseq.profile.neurons import neuron_counts
from spikeseq.profile.registry import COUNT_KEYS, register_counter
from spikeseq.profile.report import LayerProfile, ProfileReport

__all__ = [
    "COUNT_KEYS", "CallContext", "EnergyEstimate", "LayerProfile", "ProfileReport", "count", "estimate",
    "mapped_energy", "matmul_counts", "neuron_counts", "profile_batches", "register_counter", "run_steps",
]
