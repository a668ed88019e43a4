"""Task ``language_modelling``: token ids in, the next token as the target at every position.

A batch is ``x`` ``[T, B]`` ids (time-first, as every model gets its input) and ``y`` ``[B, T]`` next-token ids; the
model returns logits ``[T, B, V]`` (or ``(logits, state)``). The loss of a sample is its mean cross-entropy per token
(nats), so the loop's per-sample mean is the mean over tokens (RWKV's and nanoGPT's loss). Metrics: bits per
token (``bpc`` = nats / ln 2; bits per character for character-level corpora) and perplexity; the checkpoint with
the highest ``neg_bpc`` (lowest bpc) is kept as best.
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


def _logits(output: Any, y: torch.Tensor) -> torch.Tensor:
    logits = output[0] if isinstance(output, tuple) else output
    if logits.dim() != 3 or logits.shape[:2] != (y.shape[1], y.shape[0]):
        raise ShapeError(f"a language model must return logits [T, B, V] = [{y.shape[1]}, {y.shape[0]}, V] for "
                         f"targets [B, T] = {list(y.shape)}, got {tuple(logits.shape)}")
    return logits


def token_nats(output: Any, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats) of every target token, ``[B, T]``."""
    logits = _logits(output, y)
    ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.t().reshape(-1).long(), reduction="none")
    return ce.reshape(y.shape[1], y.shape[0]).t()


def lm_batch(output: Any, y: torch.Tensor, cfg: Any) -> BatchResult:
    """Sum over the batch of each sample's mean cross-entropy per token, and of its bits per token."""
    per_sample = token_nats(output, y).mean(1)
    loss_sum = per_sample.sum()
    return BatchResult(loss_sum, float(loss_sum.detach()) / math.log(2), int(y.shape[0]))


@torch.no_grad()
def lm_evaluate(model: nn.Module, split: Split, cfg: Any, device: torch.device, n_classes: int,
                desc: str = "") -> dict[str, Any]:
    """Mean cross-entropy per token (``loss``, nats), ``bpc``, ``neg_bpc`` and perplexity over ``split``."""
    if len(split) == 0:
        return {"n": 0, "tokens": 0, "loss": None, "bpc": None, "neg_bpc": None, "ppl": None}
    model.eval()
    bs = cfg.train.eval_batch_size
    total, tokens = 0.0, 0
    starts = range(0, len(split), bs)
    for i in progress(starts, total=len(starts), desc=desc or "evaluating"):
        x = time_first(split.x[i:i + bs]).to(device)
        y = split.y[i:i + bs].to(device)
        nats = token_nats(model(x), y)
        total += float(nats.double().sum())
        tokens += nats.numel()
    loss = total / tokens
    return {"n": len(split), "tokens": tokens, "loss": loss, "bpc": loss / math.log(2),
            "neg_bpc": -loss / math.log(2), "ppl": math.exp(loss)}


LANGUAGE_MODELLING = register_task(Task(
    name="language_modelling", batch=lm_batch, evaluate=lm_evaluate, metric="neg_bpc", train_metric="bpc",
    report=("bpc", "ppl", "loss"),
    description="next-token prediction: mean cross-entropy per token, bits per character, perplexity",
))

__all__ = ["LANGUAGE_MODELLING", "lm_batch", "lm_evaluate", "token_nats"]
