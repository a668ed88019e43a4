"""The SpikeGPT family (Zhu et al., TMLR 2024): ``spikegpt`` (spiking RWKV) and ``rwkv4`` (the non-spiking
RWKV-4 of the same shape), language models for the ``language_modelling`` task.

Modules in :mod:`.modules` (blocks: :mod:`spikeseq.nn.rwkv`), ``rwkv``-package checkpoints both ways in
:mod:`.interop`; the op counters of its blocks are :mod:`spikeseq.profile`'s own (``nn`` building blocks) and
generation is ``model.step`` driven by ``spikeseq generate`` (:mod:`spikeseq.train.cmd_generate`). The lowering
(:mod:`.lower`) refuses, naming WKV and LayerNorm: they have no event-graph equivalent.
"""

from spikeseq.models.registry import Family, register_family
from spikeseq.models.spikegpt.lower import lower_spikegpt
from spikeseq.models.spikegpt.modules import (
    PRESETS,
    SpikeGPT,
    SpikeGPTConfig,
    SpikeGPTState,
    build_rwkv4,
    build_spikegpt,
)

FAMILY = register_family(Family(
    name="spikegpt",
    tasks=("language_modelling",),
    builders={"spikegpt": build_spikegpt, "rwkv4": build_rwkv4},
    lowerings={SpikeGPT: lower_spikegpt},
    description="SpikeGPT (spiking RWKV-4) and the non-spiking RWKV-4 (Zhu et al., TMLR 2024)",
))

__all__ = ["FAMILY", "PRESETS", "SpikeGPT", "SpikeGPTConfig", "SpikeGPTState", "build_rwkv4", "build_spikegpt"]
