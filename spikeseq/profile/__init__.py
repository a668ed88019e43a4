"""Op-counting profiler and energy estimates per layer, per time step and per hardware target.

    report = spikeseq.profile.count(model, x)              # x: [T, B, ...]; run="steps" for snnTorch loops
    report.totals()                                        # per sample: dense_macs, eff_macs, eff_acs, ...
    report.per_step("spikes_out")                          # [T] array
    report.energy("loihi", memory=False).total_pj          # per sample (one inference)
    report.to_markdown(); report.save_json("profile.json")
    spikeseq.profile.count(net, x, run="steps", neurobench=True).neurobench   # NeuroBench 2.3 numbers

Counters live in a registry (:func:`register_counter`) keyed by module type: ``counters`` (torch.nn),
``neurons`` (spikeseq and snnTorch neurons), ``spikeseq_modules`` (LMU memory, delays, recurrent cells);
model families add counters for their own module types (``spikeseq.models.registry.Family.counters``).
A module that runs but has no counter is listed in ``report.not_counted`` (or raises with ``strict=True``).
"""

from spikeseq.profile.context import CallContext
from spikeseq.profile.core import count, profile_batches, run_steps
from spikeseq.profile.counters import add_counts, bias_counts, full_steps, matmul_counts, out_counts
from spikeseq.profile.energy import EnergyEstimate, estimate
from spikeseq.profile.mapping import mapped_energy
from spikeseq.profile.neurons import neuron_counts
from spikeseq.profile.registry import COUNT_KEYS, CounterSpec, register_counter, unregister_counter
from spikeseq.profile.report import LayerProfile, ProfileReport
from spikeseq.profile.spikeseq_modules import delayed_counts  # (importing it registers the block counters)

__all__ = [
    "COUNT_KEYS", "CallContext", "CounterSpec", "EnergyEstimate", "LayerProfile", "ProfileReport", "add_counts",
    "bias_counts", "count", "delayed_counts", "estimate", "full_steps", "mapped_energy", "matmul_counts",
    "neuron_counts", "out_counts", "profile_batches", "register_counter", "run_steps", "unregister_counter",
]
