"""Exceptions raised by spikeseq. Every message says what was wrong and how to fix it."""

from __future__ import annotations


class SpikeseqError(Exception):
    """Base class of every spikeseq error."""


class ShapeError(SpikeseqError, ValueError):
    """A tensor has the wrong rank, layout or size."""


class DTypeError(SpikeseqError, TypeError):
    """A tensor has the wrong dtype (e.g. integer input where floating point is required)."""


class NonFiniteError(SpikeseqError, ValueError):
    """NaN or Inf found in inputs, states or parameters."""


class ParameterError(SpikeseqError, ValueError):
    """A parameter is out of its valid range (tau <= 0, dt <= 0, unknown reset mode, ...)."""


class BackendUnavailableError(SpikeseqError, RuntimeError):
    """A requested kernel backend cannot run here (missing package, no GPU, unsupported input)."""


class DataError(SpikeseqError, ValueError):
    """A data file is missing, corrupt or in an unexpected format."""


class ConfigError(SpikeseqError, ValueError):
    """A configuration file or value is invalid."""


class ExportError(SpikeseqError, ValueError):
    """A graph cannot be exported to a target (unsupported node, limit exceeded)."""


class ProfileError(SpikeseqError, ValueError):
    """The profiler cannot count a module (no counter registered) or was given unusable input."""


class PluginError(SpikeseqError, ValueError):
    """A model family (plug-in) cannot be registered or loaded (duplicate name, a lowering or counter for a type
    it does not own, an unknown task, a failing entry point)."""


class ContinualError(SpikeseqError, ValueError):
    """A continual-learning task stream or task id is invalid (task id out of range, tasks that do not fit one
    shared head, tasks run out of order)."""


class OutputError(SpikeseqError, OSError):
    """An output file or folder cannot be written (read-only folder, a file where a folder is expected, ...)."""
