"""tonic interoperability: tonic-style structured event arrays and wrapping tonic datasets / transforms.

tonic (1.7) represents events as structured numpy arrays: N-MNIST ``[('x',int),('y',int),('t',int),('p',int)]``
(ordering ``xytp``, t in µs) and SHD ``[('t',int),('x',int),('p',int)]`` (t in µs, x = unit, p = 1). spikeseq's
readers produce the same dtypes, so tonic transforms (``tonic.transforms.ToFrame``, ``Denoise``, ...) apply to
them directly, and :class:`TonicFrames` turns any tonic dataset into spikeseq's time-first float samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

SHD_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
NMNIST_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def structured(**fields: np.ndarray) -> np.ndarray:
    """A tonic-style structured array from equal-length int fields, in the given order."""
    n = len(next(iter(fields.values())))
    arr = np.empty(n, dtype=np.dtype([(k, np.int64) for k in fields]))
    for k, v in fields.items():
        arr[k] = v
    return arr


class TonicFrames(torch.utils.data.Dataset):
    """Wrap a tonic dataset (or any ``(events, label)`` dataset): apply an optional transform (a tonic transform
    such as ``ToFrame(sensor_size, n_time_bins=30)`` or a spikeseq one) and return float tensors, time first."""

    def __init__(self, dataset: Any, transform: Any = None) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        ev, y = self.dataset[i]
        if self.transform is not None:
            ev = self.transform(ev)
        x = torch.as_tensor(np.asarray(ev)) if not isinstance(ev, torch.Tensor) else ev
        return x.float(), int(y)


def tonic_nmnist_root(save_to: str) -> str:
    """The folder tonic's ``NMNIST(save_to)`` reads (``<save_to>/NMNIST``; a subclass uses its own class name)."""
    import os

    return os.path.join(save_to, "NMNIST")
