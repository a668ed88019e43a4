"""spikeseq: spiking and event-based recurrent sequence models.

``import spikeseq`` needs only torch and numpy. Subpackages are imported on use:
``spikeseq.functional`` (reference maths), ``spikeseq.kernels`` (fast paths), ``spikeseq.nn`` (modules),
``spikeseq.models``, ``spikeseq.graph``/``spikeseq.export`` (neuromorphic export), ``spikeseq.profile``
(op counts and energy), ``spikeseq.data`` (datasets). ``spikeseq.surrogate`` too is imported on first use, so
the ``spikeseq`` command starts (and handles Ctrl-C) before torch is loaded.
"""

from typing import Any

from spikeseq.errors import SpikeseqError

__version__ = "0.1.0"
__all__ = ["SpikeseqError", "__version__", "surrogate"]


def __getattr__(name: str) -> Any:
    if name == "surrogate":
        import importlib

        return importlib.import_module("spikeseq.surrogate")
    raise AttributeError(f"module 'spikeseq' has no attribute {name!r}")
