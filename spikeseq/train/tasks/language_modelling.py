"""Task ``language_modelling``: token ids in, next-token targets; cross-entropy per token, bits per character
(bits per token for word-level corpora) and perplexity.

Data: ``x [N, T]`` token ids (held as float32, handed to the model time-first ``[T, B]``), ``y [N, T]`` int64
next tokens (:mod:`spikeseq.data.text_lm`). The model returns ``logits [T, B, V]`` or ``(logits, state)``.
Each window starts from the model's initial state (no state carried between windows). Metrics:
``bpc = mean cross-entropy in nats / ln 2``, ``perplexity = exp(mean cross-entropy)``, ``acc`` = next-token
accuracy. The best checkpoint has the highest ``neg_bpc`` (= -bpc).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq.errors import ShapeError
from spikeseq.progress import progress
from spikeseq.train.datasets import Split, time_first
from spikeseq.train.tasks import BatchResult, Task, register_task


def token_logits(output: Any, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[T * B, V]`` and targets ``[T * B]`` (time-first) from a model output and batch-first ``y [B, T]``."""
    logits = output[0] if isinstance(output, tuple) else output
    if y.dim() != 2:
        raise ShapeError(f"language modelling needs next-token targets [B, T]; got targets of shape {tuple(y.shape)} "
                         "(class labels?): a classification recipe needs task = \"classification\" (a family's "
                         "first task is its default)")
    if logits.dim() != 3 or logits.shape[:2] != (y.shape[1], y.shape[0]):
        raise ShapeError(f"a language model must return logits [T, B, V] = [{y.shape[1]}, {y.shape[0]}, V], got "
                         f"{tuple(logits.shape)}")
    return logits.reshape(-1, logits.shape[-1]).float(), y.transpose(0, 1).reshape(-1)


def lm_batch(output: Any, y: torch.Tensor, cfg: Any) -> BatchResult:
    """Summed token cross-entropy, correct next-token predictions and the number of tokens."""
    logits, target = token_logits(output, y)
    loss_sum = F.cross_entropy(logits, target, reduction="sum")
    return BatchResult(loss_sum, float((logits.argmax(1) == target).sum()), int(target.numel()))


@torch.no_grad()
def lm_evaluate(model: nn.Module, split: Split, cfg: Any, device: torch.device, n_classes: int,
                desc: str = "") -> dict[str, Any]:
    """Mean cross-entropy (nats), bits per character/token, perplexity and accuracy over every token of ``split``."""
    if len(split) == 0:
        return {"n": 0, "tokens": 0, "loss": None, "bpc": None, "neg_bpc": None, "perplexity": None, "acc": None}
    model.eval()
    bs = cfg.train.eval_batch_size
    nats = correct = tokens = 0.0
    starts = range(0, len(split), bs)
    for i in progress(starts, total=len(starts), desc=desc or "evaluating"):
        x = time_first(split.x[i:i + bs]).to(device)
        logits, target = token_logits(model(x), split.y[i:i + bs].to(device))
        nats += float(F.cross_entropy(logits, target, reduction="sum"))
        correct += float((logits.argmax(1) == target).sum())
        tokens += target.numel()
    loss = nats / tokens
    return {"n": len(split), "tokens": int(tokens), "loss": loss, "bpc": loss / math.log(2),
            "neg_bpc": -loss / math.log(2), "perplexity": math.exp(loss), "acc": correct / tokens}


LANGUAGE_MODELLING = register_task(Task(
    name="language_modelling", batch=lm_batch, evaluate=lm_evaluate, metric="neg_bpc", train_metric="acc",
    report=("bpc", "perplexity", "acc", "loss"),
    record=(("bpc", "test_bpc"), ("loss", "test_loss_nats"), ("perplexity", "test_perplexity"),
            ("tokens", "test_tokens")),
    description="next-token prediction: cross-entropy, bits per character, perplexity",
))

__all__ = ["LANGUAGE_MODELLING", "lm_batch", "lm_evaluate", "token_logits"]
