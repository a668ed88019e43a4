"""The LMUFormer family (Liu et al., ICLR 2024): ``lmuformer`` (non-spiking) and ``spiking_lmuformer``.

Modules in :mod:`.modules`, op counters in :mod:`.count`. Not exportable to event graphs (BatchNorm between
residual streams and a real-valued LMU memory have no IR equivalent yet), so no lowering is registered.
"""

from spikeseq.models.lmuformer.count import COUNTERS
from spikeseq.models.lmuformer.modules import (
    LMUFORMER_SURROGATE,
    CausalConv1d,
    ConvState,
    HeadState,
    LMUFormer,
    LMUFormerState,
    build_lmuformer,
    build_spiking_lmuformer,
)
from spikeseq.models.registry import Family, register_family

FAMILY = register_family(Family(
    name="lmuformer",
    tasks=("classification",),
    builders={"lmuformer": build_lmuformer, "spiking_lmuformer": build_spiking_lmuformer},
    counters=COUNTERS,
    description="LMUFormer, non-spiking and spiking (Liu et al., ICLR 2024)",
))

__all__ = ["FAMILY", "LMUFORMER_SURROGATE", "CausalConv1d", "ConvState", "HeadState", "LMUFormer", "LMUFormerState",
           "build_lmuformer", "build_spiking_lmuformer"]
