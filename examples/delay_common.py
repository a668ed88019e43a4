"""Shared training loop of the delay examples: the DCLS recipe (Hammouamri et al. 2024; specs/models.md §5).

- weights (and BN): Adam, lr ``lr_w`` with a one-cycle schedule to ``max_lr_w``, weight decay ``weight_decay``;
- delay positions: their own Adam, lr ``lr_pos`` (100 x lr_w in the paper), cosine annealing;
- sigma: :meth:`DelaySNN.sigma_for_epoch` (max_delay/2 -> 0.23 over the first quarter of the epochs);
- positions clamped into ``[0, max_delay]`` after every step; evaluation with rounded integer delays (eval mode);
- loss: cross-entropy on ``sum_t softmax(v_out[t])``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from spikeseq.data.shd import SHDDataset
from spikeseq.models.delay_snn import DelaySNN, DelaySNNConfig, predict, sum_softmax_loss


def load_frames(path: Path, *, dt: float, duration: float | None, downsample: int = 1,
                n_channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All samples of an SHD-format file binned to ``dt``: ``X [N, T, C]`` (zero-padded to the longest), ``y [N]``."""
    ds = SHDDataset(path, dt=dt, duration=duration, downsample=downsample, n_channels=n_channels)
    frames = [ds.frames(i) for i in range(len(ds))]
    t_max = max(f.shape[0] for f in frames)
    x = torch.zeros(len(frames), t_max, frames[0].shape[1])
    for i, f in enumerate(frames):
        x[i, : f.shape[0]] = f
    return x, torch.as_tensor(ds.labels.astype("int64"))


@torch.no_grad()
def evaluate(model: DelaySNN, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    model.eval()
    correct = 0
    for s in range(0, len(x), batch_size):
        v, _ = model(model.pad(x[s:s + batch_size].transpose(0, 1).contiguous()))
        correct += int((predict(v) == y[s:s + batch_size]).sum())
    return correct / len(x)


def train(config: DelaySNNConfig, data: dict[str, torch.Tensor], *, epochs: int, batch_size: int, seed: int,
          lr_w: float = 1e-3, max_lr_w: float = 5e-3, lr_pos: float = 0.1, weight_decay: float = 1e-5,
          log: bool = True) -> dict[str, Any]:
    """Train one model on ``data = {x_train, y_train, x_test, y_test}`` (``X [N, T, C]``); returns metrics."""
    torch.manual_seed(seed)
    model = DelaySNN(config)
    weights, positions = model.parameter_groups()
    opt_w = torch.optim.Adam(weights, lr=lr_w, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(data["x_train"]) / batch_size)
    sched_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=max_lr_w, total_steps=epochs * steps_per_epoch)
    opt_p = torch.optim.Adam(positions, lr=lr_pos) if positions else None
    sched_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=epochs) if opt_p else None
    g = torch.Generator().manual_seed(seed)
    history = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        model.set_sigma(model.sigma_for_epoch(epoch, epochs))
        order = torch.randperm(len(data["x_train"]), generator=g)
        total, n = 0.0, 0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            x = data["x_train"][idx].transpose(0, 1).contiguous()
            loss = sum_softmax_loss(model(model.pad(x))[0], data["y_train"][idx])
            opt_w.zero_grad(set_to_none=True)
            if opt_p:
                opt_p.zero_grad(set_to_none=True)
            loss.backward()
            opt_w.step()
            sched_w.step()
            if opt_p:
                opt_p.step()
            model.clamp_delays_()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        if sched_p:
            sched_p.step()
        acc = evaluate(model, data["x_test"], data["y_test"], 256)
        history.append({"epoch": epoch, "loss": total / n, "test_acc": acc})
        if log:
            print(f"  epoch {epoch:3d}  loss {total / n:.4f}  test acc {100 * acc:.2f}%  "
                  f"sigma {float(model.delay_layers()[0].sigma) if model.delay_layers() else 0:.3f}", flush=True)
    return {"test_acc": history[-1]["test_acc"], "history": history, "train_s": time.perf_counter() - t0,
            "model": model}


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomic JSON write (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)
