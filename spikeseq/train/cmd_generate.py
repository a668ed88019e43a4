"""``spikeseq generate RUN --prompt TEXT --tokens N``: stream text from a language-model run in RNN mode.

The model must offer the RNN protocol ``logits [B, V], state = model.step(ids [B], state)`` (constant memory, no
length limit: the state has a fixed size) and its run the ``language_modelling`` task; the vocabulary is the one
saved with the checkpoint (``classes``). The prompt is fed token by token, then ``N`` tokens are sampled: logits /
``temperature``, nucleus (``top_p``) truncation, a seeded ``torch.Generator``. Each character is printed as soon as
it is sampled. ``--temperature 0`` is greedy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

import torch

from spikeseq.errors import ConfigError, DataError, NonFiniteError


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq generate`` arguments."""
    parser.add_argument("run", help="run directory of a language-model run")
    parser.add_argument("--prompt", default="\n", help="text to start from (characters of the run's vocabulary)")
    parser.add_argument("--tokens", type=int, default=200, help="number of tokens to sample")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass (1 = off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", choices=("best", "last"), default="last")


def sample(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> torch.Tensor:
    """One token per row of ``logits`` ``[B, V]``: greedy at temperature 0, else softmax(logits / temperature)
    truncated to the smallest set of tokens holding ``top_p`` of the probability."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if top_p < 1:
        sp, idx = probs.sort(-1, descending=True)
        keep = sp.cumsum(-1) - sp < top_p  # always keeps the most likely token
        sp = sp * keep
        probs = torch.zeros_like(probs).scatter_(-1, idx, sp)
    return torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=gen)[:, 0]


def stream(step: Callable, prompt_ids: list[int], n: int, *, temperature: float = 1.0, top_p: float = 0.9,
           seed: int = 0) -> Iterator[int]:
    """Feed ``prompt_ids`` through ``step`` one at a time, then yield ``n`` sampled token ids (batch 1). The
    arguments are checked at the call (ConfigError / DataError), before anything is fed or printed."""
    if not temperature >= 0 or not 0 < top_p <= 1:  # `not >=` so that NaN is refused too
        raise ConfigError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature} and {top_p}; "
                          "--temperature 0 is greedy, --top-p 1 turns nucleus sampling off")
    if temperature == float("inf"):  # logits / inf: every token equally likely, whatever the model says
        raise ConfigError("need a finite temperature >= 0, got inf (it would ignore the model and sample every "
                          "token with the same probability); use e.g. --temperature 1, or 0 for greedy")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"the number of tokens to sample must be an integer >= 0, got {n!r}")
    if not prompt_ids:
        raise DataError("the prompt is empty: give at least one character")
    return _stream(step, prompt_ids, n, temperature, top_p, seed)


def _stream(step: Callable, prompt_ids: list[int], n: int, temperature: float, top_p: float,
            seed: int) -> Iterator[int]:
    gen = torch.Generator().manual_seed(int(seed))
    state = None
    with torch.no_grad():
        for t in prompt_ids:
            logits, state = step(torch.tensor([t]), state)
        for _ in range(n):
            if not bool(torch.isfinite(logits).all()):
                raise NonFiniteError("the model's logits hold NaN or Inf, so no token can be sampled: check the "
                                     "checkpoint's weights for NaN/Inf (a diverged run) and the state")
            tok = sample(logits, temperature, top_p, gen)
            yield int(tok[0])
            logits, state = step(tok, state)


def run(args: argparse.Namespace) -> int:
    """Load the run, stream the sampled text to stdout; returns 0."""
    from spikeseq.data.charlm import encode
    from spikeseq.train.runs import load_run
    from spikeseq.train.tasks import task_for

    lr = load_run(args.run, args.checkpoint)
    if task_for(lr.cfg).name != "language_modelling" or not hasattr(lr.model, "step"):
        raise ConfigError(f"{args.run}: `generate` needs a language_modelling run whose model has an RNN step "
                          f"(model {lr.cfg.model.name!r}, task {task_for(lr.cfg).name!r})")
    vocab = list(lr.ckpt.get("classes") or [])
    if not vocab:
        raise ConfigError(f"{args.run}: the checkpoint holds no vocabulary (classes)")
    ids = [int(i) for i in encode(args.prompt, vocab)]
    tokens = stream(lr.model.step, ids, args.tokens, temperature=args.temperature, top_p=args.top_p,
                    seed=args.seed)
    sys.stdout.write(args.prompt)
    for tok in tokens:
        sys.stdout.write(vocab[tok])
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
