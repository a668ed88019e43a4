"""Non-spiking baselines for sensor windows: ``gru_baseline`` (torch GRU) and ``lmu_baseline`` (ReLU LMU cell).

Their layers (``torch.nn.GRU``, :class:`spikeseq.nn.LMU`, ``Linear``) are counted by :mod:`spikeseq.profile`
itself; they are not exportable to event graphs.
"""

from spikeseq.models.baselines.modules import (
    GRUClassifier,
    GRUState,
    LMUClassifier,
    build_gru_baseline,
    build_lmu_baseline,
)
from spikeseq.models.registry import Family, register_family

FAMILY = register_family(Family(
    name="baselines",
    tasks=("classification",),
    builders={"gru_baseline": build_gru_baseline, "lmu_baseline": build_lmu_baseline},
    description="non-spiking GRU and LMU baselines",
))

__all__ = ["FAMILY", "GRUClassifier", "GRUState", "LMUClassifier", "build_gru_baseline", "build_lmu_baseline"]
