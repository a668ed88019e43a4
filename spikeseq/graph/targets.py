"""Target limits used by quantisation and mapping, read from ``hardware/<target>.toml`` via :mod:`spikeseq.hardware`.

:func:`limits` is the one accessor: it returns plain numbers under stable names. The SpiNNaker2 per-PE memory
*model* (bytes per neuron, per synapse word, reserved for code) is not in the hardware table yet; its constants live
here, marked as assumptions, until the profile engineer adds them to ``hardware/spinnaker2.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from spikeseq import hardware
from spikeseq.errors import ParameterError

TARGETS = ("nir", "loihi", "spinnaker2")


@dataclass(frozen=True)
class LoihiLimits:
    """Loihi core limits and number formats (from ``hardware/loihi.toml``): per-core sizes, number ranges."""

    neurons_per_core: int
    input_axons_per_core: int
    output_axons_per_core: int
    synapse_memory_bits_per_core: int
    cores_per_chip: int
    max_delay: int
    weight_min: int          # even mantissa range (mixed sign mode, LSB implied 0)
    weight_max: int
    weight_exp_max: int
    vth_mant_max: int
    bias_mant_min: int
    bias_mant_max: int
    decay_max: int            # iDecay / vDecay in 0..4096
    state_bits: int


@dataclass(frozen=True)
class SpiNNaker2Limits:
    """SpiNNaker2 per-PE limits (from ``hardware/spinnaker2.toml``) plus the memory-model assumptions of this module."""

    sram_bytes_per_pe: int
    pes_per_chip: int
    max_delay: int            # 'lif' model delay field
    weight_max_int8: int
    weight_max_with_delay: int
    # --- memory model (assumptions, see module docstring)
    reserved_bytes_per_pe: int = 32768       # code, stack, recording buffers: assumption (1/4 of the SRAM)
    neuron_state_bytes: int = 32             # float32 v, i, threshold, decays, offset, refractory, index: assumption
    synapse_word_bytes: int = 4              # one 32-bit word per synapse (SpiNNaker row format): assumption
    row_header_bytes: int = 12               # per (pre neuron, PE) synapse row header: assumption
    max_atoms_per_pe: int = 256              # largest set_max_atoms_per_core seen in py-spinnaker2 examples


@cache
def graded_payload_bits() -> int:
    """Bits of a Loihi graded-spike payload (signed), from ``hardware/loihi2.toml`` ``formats.graded_spike_bits``
    (24: lava's ``num_message_bits``): the widest input value the chip can receive is ``2**(bits-1) - 1``."""
    return int(hardware.load("loihi2").format("graded_spike_bits"))


@cache
def loihi() -> LoihiLimits:
    """:class:`LoihiLimits` read from ``hardware/loihi.toml`` (``ConfigError`` when a key is missing)."""
    s = hardware.load("loihi")
    wmax = int(s.format("weight_max"))
    bits = int(s.format("bias_mant_bits"))
    return LoihiLimits(
        neurons_per_core=int(s.limit("neurons_per_core")),
        input_axons_per_core=int(s.limit("input_axons_per_core")),
        output_axons_per_core=int(s.limit("output_axons_per_core")),
        synapse_memory_bits_per_core=int(s.limit("synapse_memory_bits_per_core")),
        cores_per_chip=int(s.limit("cores_per_chip")),
        max_delay=int(s.limit("max_delay")),
        weight_min=int(s.format("weight_min")),
        weight_max=wmax - (wmax % 2),  # mixed sign mode truncates the LSB: 255 -> 254 (lava truncate_weights)
        weight_exp_max=int(s.format("weight_exp_max")),
        vth_mant_max=int(s.format("vth_mant_max")),
        bias_mant_min=-(2 ** (bits - 1)),
        bias_mant_max=2 ** (bits - 1) - 1,
        decay_max=2 ** int(s.format("decay_bits")),
        state_bits=int(s.format("state_bits")),
    )


@cache
def spinnaker2() -> SpiNNaker2Limits:
    """:class:`SpiNNaker2Limits` read from ``hardware/spinnaker2.toml`` (``ConfigError`` when a key is missing)."""
    s = hardware.load("spinnaker2")
    return SpiNNaker2Limits(
        sram_bytes_per_pe=int(s.limit("sram_bytes_per_pe")),
        pes_per_chip=int(s.limit("pes_per_chip")),
        max_delay=int(s.limit("max_delay")),
        weight_max_int8=int(s.format("weight_max_int8")),
        weight_max_with_delay=int(s.format("weight_max_lif_with_delay")),
    )


def limits(target: str):
    """The limits of ``"loihi"`` or ``"spinnaker2"``."""
    if target == "loihi":
        return loihi()
    if target == "spinnaker2":
        return spinnaker2()
    raise ParameterError(f"no hardware limits for target {target!r}; expected 'loihi' or 'spinnaker2'")
