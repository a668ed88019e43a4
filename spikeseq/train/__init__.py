"""spikeseq.train (see ARCHITECTURE.md).

``spikeseq.train.target_mode(model, "loihi" | "spinnaker2", ...)``: a model computing with a target's arithmetic
(:mod:`spikeseq.train.target`); imported on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TargetMode", "target_mode"]


def __getattr__(name: str) -> Any:
    """Lazy access to :func:`spikeseq.train.target.target_mode` and :class:`~spikeseq.train.target.TargetMode`."""
    if name in __all__:
        from spikeseq.train import target

        return getattr(target, name)
    raise AttributeError(f"module 'spikeseq.train' has no attribute {name!r}")
