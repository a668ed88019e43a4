"""spikeseq: spiking and event-based recurrent sequence models.

``import spikeseq`` needs only torch and numpy. Subpackages are imported on use:
``spikeseq.functional`` (reference maths), ``spikeseq.kernels`` (fast paths), ``spikeseq.nn`` (modules),
``spikeseq.models``, ``spikeseq.graph``/``spikeseq.export`` (neuromorphic export), ``spikeseq.profile``
(op counts and energy), ``spikeseq.data`` (datasets).
"""

from spikeseq import surrogate
from spikeseq.errors import SpikeseqError

__version__ = "0.1.0"
__all__ = ["SpikeseqError", "__version__", "surrogate"]
