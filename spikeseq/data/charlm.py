"""Byte-level enwik8 as windows of token ids, and encoding text with a given vocabulary (Tiny Shakespeare, PTB and
WikiText-2 are read by :mod:`spikeseq.data.text_lm`).

- ``enwik8``: ``<data root>/text/enwik8/enwik8`` (the first 10^8 bytes of an English Wikipedia dump, Hutter
  Prize); bytes are the tokens, the vocabulary the sorted set of byte values present; the standard split is the
  first 90M bytes ``train``, the next 5M ``val``, the last 5M ``test`` (as in SpikeGPT, Transformer-XL).

Each split is cut into non-overlapping windows of ``ctx_len + 1`` tokens: ``x = window[:-1]``, ``y = window[1:]``
(:class:`CharWindows`, ``x``/``y`` ``[N, ctx_len]`` int64, ``classes`` the vocabulary). A given ``vocab`` (e.g. a
trained model's) must cover the corpus: a character outside it is a :class:`~spikeseq.errors.DataError` naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikeseq.data.paths import data_root
from spikeseq.errors import DataError

FILES = {"enwik8": ("text", "enwik8", "enwik8")}
#: (start, stop) byte offsets of each split.
SPLITS = {
    "enwik8": {"train": (0, 90_000_000), "val": (90_000_000, 95_000_000), "test": (95_000_000, 100_000_000)},
}


@dataclass
class CharWindows:
    """Windows of one split: ``x``, ``y`` ``[N, ctx_len]`` int64 (``y`` = ``x`` shifted by one), the vocabulary."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]


def corpus_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where corpus ``name`` is expected (``root`` defaults to the data root, ``$SPIKESEQ_DATA``)."""
    if name not in FILES:
        raise DataError(f"unknown text corpus {name!r}; known: {', '.join(FILES)}")
    base = Path(root) if root is not None else data_root()
    nested = base.joinpath(*FILES[name])
    if root is not None and not nested.exists() and ((base / FILES[name][-1]).is_file()
                                                     or base.parts[-2:] == FILES[name][:2]):
        return base / FILES[name][-1]  # root is the corpus folder itself (`spikeseq data check --root`)
    return nested


def read_corpus(name: str, root: str | os.PathLike | None = None) -> str:
    """The corpus as a string (enwik8: bytes decoded as latin-1, one character per byte)."""
    path = corpus_path(name, root)
    if not path.is_file():
        raise DataError(f"{name}: file not found: {path}; put it there or set $SPIKESEQ_DATA to the folder that "
                        f"holds {'/'.join(FILES[name])}")
    return path.read_bytes().decode("latin-1")


def build_vocab(text: str) -> list[str]:
    """The sorted set of characters of ``text``."""
    return sorted(set(text))


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """Token ids of ``text`` under ``vocab``; characters outside it raise :class:`DataError` naming them."""
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted(set(text) - index.keys())
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10])
        raise DataError(f"the text has {len(missing)} character(s) not in the vocabulary of {len(vocab)}: {shown}; "
                        "use the vocabulary of the corpus the model was trained on, or remove those characters")
    if len(vocab) <= 256 and all(len(c) == 1 and ord(c) < 256 for c in vocab):
        table = np.zeros(256, dtype=np.int64)
        for c, i in index.items():
            table[ord(c)] = i
        return table[np.frombuffer(text.encode("latin-1"), dtype=np.uint8)]
    return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))


def split_text(name: str, text: str, split: str) -> str:
    """The part of ``text`` that is split ``split`` of corpus ``name`` (see the module docstring)."""
    if split not in SPLITS[name]:
        raise DataError(f"{name} has splits {', '.join(SPLITS[name])}, not {split!r}")
    lo, hi = SPLITS[name][split]
    end = SPLITS[name]["test"][1]
    if len(text) < end:
        raise DataError(f"{name} must hold {end:,} bytes, this file has {len(text):,}; download it again")
    return text[lo:hi]


def windows(ids: np.ndarray, ctx_len: int, vocab: list[str]) -> CharWindows:
    """Non-overlapping ``ctx_len + 1`` windows of ``ids`` as :class:`CharWindows`."""
    if ctx_len < 1:
        raise DataError(f"ctx_len must be >= 1, got {ctx_len}")
    n = (len(ids) - 1) // ctx_len
    if n < 1:
        raise DataError(f"{len(ids)} tokens are too few for one window of ctx_len + 1 = {ctx_len + 1}")
    t = torch.from_numpy(np.ascontiguousarray(ids[: n * ctx_len + 1]))
    x = t[:-1].reshape(n, ctx_len)
    y = t[1:].reshape(n, ctx_len)
    return CharWindows(x.clone(), y.clone(), list(vocab))


def load_windows(name: str, split: str, root: str | os.PathLike | None = None, *, ctx_len: int = 64,
                 vocab: list[str] | None = None) -> CharWindows:
    """Split ``split`` of corpus ``name`` as windows (vocabulary: ``vocab`` or the whole corpus's characters)."""
    text = read_corpus(name, root)
    voc = build_vocab(text) if vocab is None else list(vocab)
    return windows(encode(split_text(name, text, split), voc), ctx_len, voc)
