"""Task ``classification``: one label per sequence; cross-entropy on logits read out of the time-first output
(``[train] readout``: mean / sum / max / last over time), accuracy and confusion matrix."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.train.datasets import Split
from spikeseq.train.evaluate import evaluate, logits_from
from spikeseq.train.tasks import BatchResult, Task, register_task


def classification_batch(output: Any, y: torch.Tensor, cfg: Any) -> BatchResult:
    """Summed cross-entropy of the batch's logits and the number of correct predictions."""
    logits = logits_from(output, cfg.train.readout)
    loss_sum = F.cross_entropy(logits, y, reduction="sum")
    return BatchResult(loss_sum, float((logits.argmax(1) == y).sum()), int(y.shape[0]))


def classification_evaluate(model: nn.Module, split: Split, cfg: Any, device: torch.device, n_classes: int,
                            desc: str = "") -> dict[str, Any]:
    """Loss, accuracy and confusion matrix of ``split`` (see :func:`spikeseq.train.evaluate.evaluate`)."""
    return evaluate(model, split, cfg.train.eval_batch_size, cfg.train.readout, device, n_classes, desc)


CLASSIFICATION = register_task(Task(
    name="classification", batch=classification_batch, evaluate=classification_evaluate, metric="acc",
    train_metric="acc", report=("acc", "loss", "confusion"),
    description="one label per sequence: cross-entropy, accuracy, confusion matrix",
))

__all__ = ["CLASSIFICATION", "classification_batch", "classification_evaluate"]
