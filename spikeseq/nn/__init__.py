"""Modules: own parameters, never hidden state. ``y, state = module(x [T, B, ...], state=None)``."""

from spikeseq.nn.base import StatefulModule, TimeConstants
from spikeseq.nn.delay import DelayLinear
from spikeseq.nn.egru import EGRU, EGRUStackOutput
from spikeseq.nn.encoders import DeltaEncoder, LatencyEncoder, RateEncoder
from spikeseq.nn.linear import SpikeLinear
from spikeseq.nn.lmu import LMU, LMUMemory, SpikingLMU
from spikeseq.nn.neurons import ALIF, IF, LI, LIF, CubaLIF
from spikeseq.nn.sequential import Sequential, time_distributed

__all__ = [
    "ALIF", "EGRU", "EGRUStackOutput",
    "IF", "LI", "LIF", "LMU", "CubaLIF", "DeltaEncoder", "LatencyEncoder", "LMUMemory", "RateEncoder",
    "Sequential", "SpikeLinear", "SpikingLMU", "DelayLinear",
    "StatefulModule", "TimeConstants", "time_distributed",
]
