"""The delay family: a feed-forward LIF network with learnable synaptic delays (DCLS; Hammouamri et al., ICLR 2024).

Model ``delay_snn`` (:class:`DelaySNN`); modules in :mod:`.modules`, IR lowering in :mod:`.lower`, op counters in
:mod:`.count`.
"""

from spikeseq.models.delay_snn.count import COUNTERS
from spikeseq.models.delay_snn.lower import LOWERINGS
from spikeseq.models.delay_snn.modules import (
    VARIANTS,
    DelaySNN,
    DelaySNNConfig,
    DelaySNNState,
    DenseSynapse,
    build,
    predict,
    sum_softmax,
    sum_softmax_loss,
)
from spikeseq.models.registry import Family, register_family

FAMILY = register_family(Family(
    name="delay_snn",
    tasks=("classification",),
    builders={"delay_snn": build},
    lowerings=LOWERINGS,
    counters=COUNTERS,
    description="LIF network with learnable synaptic delays (DCLS), SHD/SSC recipes",
))

__all__ = ["FAMILY", "VARIANTS", "DelaySNN", "DelaySNNConfig", "DelaySNNState", "DenseSynapse", "build", "predict",
           "sum_softmax", "sum_softmax_loss"]
