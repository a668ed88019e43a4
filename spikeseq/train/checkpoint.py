"""Checkpoints: everything needed to resume a run bit for bit, written atomically.

A checkpoint is a dict saved with ``torch.save``: model / optimizer / scheduler state, the position in training
(``epoch``, ``batch`` within the epoch, global ``step``), the best validation result so far, the epoch's running
sums, the input normaliser, the RNG states of torch, numpy and ``random``, and the resolved config. The training
order itself comes from a generator seeded by ``(seed, epoch)``, so the position is enough to replay it.

``save`` writes to a temporary file and renames it over the target only after an fsync, so a failed or interrupted
write (disk full, kill) leaves the previous ``last.pt`` intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikeseq._atomic import atomic_open
from spikeseq.errors import ConfigError

FORMAT = 1


def rng_state() -> dict[str, Any]:
    """The RNG states of torch, numpy and ``random`` (and of CUDA once initialised), for a checkpoint."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy (``seed mod 2**32``) and torch with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically ``torch.save`` ``state`` (plus the format version) to ``path``."""
    state = {"format": FORMAT, **state}
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; ``ConfigError`` when it is missing, damaged or of another format."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}; has the run finished an epoch yet?")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises RuntimeError / UnpicklingError / EOFError on damaged files
        raise ConfigError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); use the other checkpoint "
                          "(last.pt / best.pt) or retrain") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a spikeseq checkpoint of format {FORMAT}")
    return state
