"""The LIF-network family: ``snn_mlp`` (feed-forward LIF classifier) and ``rsnn`` (one recurrent LIF layer).

Both are :class:`spikeseq.nn.Sequential` networks of building blocks, which :mod:`spikeseq.graph` and
:mod:`spikeseq.profile` lower and count themselves: the family registers no lowering and no counter.
"""

from spikeseq.models.lifnet.modules import RSNN, SNNMLP, build_rsnn, build_snn_mlp
from spikeseq.models.registry import Family, register_family

FAMILY = register_family(Family(
    name="lifnet",
    tasks=("classification",),
    builders={"snn_mlp": build_snn_mlp, "rsnn": build_rsnn},
    description="feed-forward and recurrent LIF classifiers built from spikeseq.nn blocks",
))

__all__ = ["FAMILY", "RSNN", "SNNMLP", "build_rsnn", "build_snn_mlp"]
