"""The L2MU family: the Legendre Memory Unit built from LIF / CuBa-LIF populations (Fra et al., ICANN 2024).

Model ``l2mu`` (:class:`L2MU`); modules in :mod:`.modules`, IR lowering in :mod:`.lower`, op counters in
:mod:`.count`.
"""

from spikeseq.models.l2mu.count import COUNTERS
from spikeseq.models.l2mu.lower import LOWERINGS
from spikeseq.models.l2mu.modules import BRAILLE_BEST, L2MU, L2MUState, build_l2mu, lecun_uniform_
from spikeseq.models.registry import Family, register_family

FAMILY = register_family(Family(
    name="l2mu",
    tasks=("classification",),
    builders={"l2mu": build_l2mu},
    lowerings=LOWERINGS,
    counters=COUNTERS,
    description="all-spiking Legendre Memory Unit (L2MU)",
))

__all__ = ["BRAILLE_BEST", "FAMILY", "L2MU", "L2MUState", "build_l2mu", "lecun_uniform_"]
