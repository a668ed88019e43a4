"""Language-modelling corpora: Tiny Shakespeare (characters) and PTB / WikiText-2 (words).

Each corpus becomes token ids and is cut into non-overlapping windows of ``seq_len`` inputs with their next-token
targets: ``x [N, seq_len]`` (ids as float32, the way every split is held in memory) and ``y [N, seq_len]`` (int64,
``y[n, t] = x[n, t + 1]`` of the running text). ``classes`` is the vocabulary (``len(classes)`` tokens).

- ``tinyshakespeare`` (Karpathy's char-rnn ``input.txt``, ``<root>/text/tinyshakespeare/input.txt``): the standard
  split, the first 90% of the characters for training and the last 10% for testing; the vocabulary is the sorted
  set of characters of the whole file (65 for the original file).
  A UTF-8 byte-order mark is stripped and a size or sha256 other than the manifest's is announced (both with
  a :class:`~spikeseq.data.repair.DataRepairWarning`: the vocabulary and the split follow the file); NUL bytes
  raise :class:`~spikeseq.errors.DataError`.
- ``ptb`` / ``wikitext2`` (word level, the files of the AWD-LSTM / EGRU recipes: ``ptb.{train,valid,test}.txt`` or
  ``wiki.{train,valid,test}.tokens``, under ``<root>/text/<name>/``): every line ends with ``<eos>``; the
  vocabulary is built from the training split (words of the other splits that it lacks raise a DataError: both
  corpora are pre-processed so that this never happens).
"""

from __future__ import annotations

import codecs
import hashlib
import numbers
import os
from pathlib import Path
from typing import NamedTuple

import torch

from spikeseq.data._text import read_bytes
from spikeseq.data.paths import data_root
from spikeseq.data.repair import warn_repair
from spikeseq.errors import DataError

WORD_FILES = {
    "ptb": {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"},
    "wikitext2": {"train": "wiki.train.tokens", "valid": "wiki.valid.tokens", "test": "wiki.test.tokens"},
}
#: Fraction of Tiny Shakespeare used for training (the first characters; the rest is the test split).
TRAIN_FRACTION = 0.9


class TokenWindows(NamedTuple):
    """Windows of a token stream: inputs ``x [N, T]`` (float ids), targets ``y [N, T]`` and the vocabulary."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]


def windows(ids: torch.Tensor, seq_len: int, vocab: list[str]) -> TokenWindows:
    """Non-overlapping windows of ``seq_len`` inputs and their next-token targets (the tail that does not fill a
    window is dropped)."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral) or seq_len < 1:
        raise DataError(f"seq_len must be an integer >= 1, got {seq_len!r}")
    n = (ids.numel() - 1) // seq_len
    if n < 1:
        raise DataError(f"a text of {ids.numel()} tokens is too short for one window of {seq_len} (+1) tokens")
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1: n * seq_len + 1].reshape(n, seq_len)
    return TokenWindows(x.float(), y.long(), vocab)


#: The files of each corpus (how :func:`_text_dir` recognises a corpus folder given as ``root``).
CORPUS_FILES = {"tinyshakespeare": ("input.txt",), **{k: tuple(v.values()) for k, v in WORD_FILES.items()}}


def _text_dir(name: str, root: str | os.PathLike | None) -> Path:
    """``<root>/text/<name>``; ``root`` may also be the corpus folder itself (as ``spikeseq data check --root``
    passes it), recognised by holding one of the corpus's files and no ``text/<name>`` below it."""
    base = Path(root) if root is not None else data_root()
    nested = base / "text" / name
    if root is not None and not nested.exists() and (any((base / f).exists() for f in CORPUS_FILES.get(name, ()))
                                                     or base.parts[-2:] == ("text", name)):
        return base  # the corpus folder itself (by its files, or by its name when they are missing)
    return nested


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"file not found: {path} (set SPIKESEQ_DATA or root= to the folder holding text/)") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a text file; put the corpus file there") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text ({e})") from None


def _read_checked(name: str, path: Path) -> str:
    """The text of ``path``: a UTF-8 byte-order mark is stripped and NUL bytes are refused (:class:`DataError`);
    a size or sha256 other than the manifest's gets a :class:`~spikeseq.data.repair.DataRepairWarning` (the
    vocabulary and the split point are computed from the file, so they change with it)."""
    data = read_bytes(path)
    if data.startswith(codecs.BOM_UTF8):
        warn_repair(f"{path} starts with a UTF-8 byte-order mark (not part of the original corpus); stripped it")
        data = data[len(codecs.BOM_UTF8):]
    nul = data.find(b"\0")
    if nul >= 0:
        raise DataError(f"{path}: NUL byte at offset {nul} ({data.count(0)} in all); a text corpus holds none, the "
                        f"file is damaged: download it again (`spikeseq data fetch {name} --force`)")
    _compare_with_manifest(name, path, data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: byte {e.start} (line {line}) is {data[e.start]:#04x}, not UTF-8 text ({e.reason}); "
                        f"the corpus is UTF-8, so the file is damaged or in another encoding: download it again "
                        f"(`spikeseq data fetch {name} --force`) or convert it to UTF-8") from None


def _compare_with_manifest(name: str, path: Path, data: bytes) -> None:
    """Warn when ``data`` differs in size or sha256 from what the manifest recorded for ``path``'s file."""
    from spikeseq.data.manifest import load_manifest

    try:
        man = load_manifest(name)
    except DataError:
        return
    rec = [(c.size, c.sha256) for c in man.check if c.path == path.name]
    rec += [(f.size, f.sha256) for f in man.files if f.name == path.name]
    size = next((sz for sz, _ in rec if sz), 0)
    digest = next((h for _, h in rec if h), "")
    if size and len(data) != size:
        warn_repair(f"{path} has {len(data):,} bytes, the manifest records {size:,} for {name}: the file is not the "
                    "original (truncated or edited?), and the vocabulary and the train/test split point are computed "
                    f"from it, so they differ from the standard ones; download it again (`spikeseq data fetch {name} "
                    "--force`) unless you meant to change it")
    elif digest and hashlib.sha256(data).hexdigest() != digest.lower():
        warn_repair(f"{path} has the original size but not the original sha256 ({digest[:12]}...): the file was "
                    "edited or damaged, and the vocabulary and the split are computed from it; download it again "
                    f"(`spikeseq data fetch {name} --force`) unless you meant to change it")


def tinyshakespeare(root: str | os.PathLike | None, split: str, seq_len: int = 100,
                    max_chars: int | None = None) -> TokenWindows:
    """Character windows of Tiny Shakespeare: ``split="train"`` the first 90%, ``"test"`` the last 10%.

    ``max_chars`` keeps only the first characters of each split (quick runs and tests).
    """
    if split not in ("train", "test"):
        raise DataError(f"Tiny Shakespeare has splits 'train' (first 90%) and 'test' (last 10%), not {split!r}; "
                        "for a validation set use the training recipe's val_fraction")
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, numbers.Integral)
                                  or max_chars < 1):
        raise DataError(f"max_chars must be an integer >= 1 (or None for the whole split), got {max_chars!r}")
    path = _text_dir("tinyshakespeare", root) / "input.txt"
    text = _read_checked("tinyshakespeare", path)
    if len(text) < 20:
        raise DataError(f"{path} (Tiny Shakespeare) has only {len(text)} characters, the corpus has 1,115,394: the "
                        "file is truncated or empty; download it again (`spikeseq data fetch tinyshakespeare --force`)")
    vocab = sorted(set(text))
    table = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([table[c] for c in text], dtype=torch.int64)
    cut = int(TRAIN_FRACTION * ids.numel())
    part = ids[:cut] if split == "train" else ids[cut:]
    if max_chars is not None:
        part = part[:max_chars]
    return windows(part, seq_len, vocab)


def _words(path: Path) -> list[str]:
    out: list[str] = []
    for line in _read(path).splitlines():
        words = line.split()
        if words:
            out.extend(words)
            out.append("<eos>")
    return out


def word_corpus(name: str, root: str | os.PathLike | None, split: str, seq_len: int = 70) -> TokenWindows:
    """Word windows of PTB or WikiText-2 (``split``: ``train``, ``valid`` or ``test``; vocabulary of the training
    split)."""
    if name not in WORD_FILES:
        raise DataError(f"unknown word-level corpus {name!r}; known: {', '.join(WORD_FILES)}")
    if split not in WORD_FILES[name]:
        raise DataError(f"{name} has splits {', '.join(WORD_FILES[name])}, not {split!r}")
    base = _text_dir(name, root)
    train = _words(base / WORD_FILES[name]["train"])
    vocab = sorted(set(train))
    table = {w: i for i, w in enumerate(vocab)}
    words = train if split == "train" else _words(base / WORD_FILES[name][split])
    missing = sorted({w for w in words if w not in table})
    if missing:
        raise DataError(f"{name} {split}: {len(missing)} word(s) not in the training vocabulary, e.g. {missing[:5]}; "
                        "use the pre-processed corpus (unknown words replaced by <unk>)")
    return windows(torch.tensor([table[w] for w in words], dtype=torch.int64), seq_len, vocab)
