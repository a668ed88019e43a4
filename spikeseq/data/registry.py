"""Datasets by name, for the CLI and configs: ``names()``, ``load(name, split, **kw)``, ``summary(name)``.

``load`` returns a torch ``Dataset``:

- ``nmnist``: binned frames, a :class:`~spikeseq.data.events.FrameSet` ``x [N, T, 2, 34, 34]`` from
  :func:`~spikeseq.data.nmnist.load_frames` (30 bins unless ``dt``/``n_bins`` say otherwise; cached); with
  ``events=True`` the :class:`~spikeseq.data.nmnist.NMNIST` event dataset instead;
- ``shd``, ``ssc``, ``temporal``: a :class:`~spikeseq.data.events.FrameSet` ``x [N, T, C]`` of
  ``<root>/<name>_<split>.h5`` from :func:`~spikeseq.data.shd.load_frames` (10 ms bins by default; cached;
  use :class:`~spikeseq.data.shd.SHDDataset` directly for per-sample binning);
- ``temporal_task``: the SHD-format temporal task generated in memory (:func:`~spikeseq.data.temporal_task.load_split`;
  no files);
- ``tinyshakespeare`` (characters), ``ptb``, ``wikitext2`` (words): :class:`~spikeseq.data.text_lm.TokenWindows`
  (``x [N, T]`` ids, ``y [N, T]`` next tokens; :mod:`spikeseq.data.text_lm`);
- ``hapt``, ``uci_har``, ``basicmotions``, ``wisdm``, ``wisdm2019``, ``banglejs``:
  :class:`~spikeseq.data.har.HARWindows`;
- ``enwik8`` (bytes): :class:`~spikeseq.data.charlm.CharWindows` (:mod:`spikeseq.data.charlm`);
- ``mnist``, ``cifar100``: :class:`~spikeseq.data.images.ImageSet` (uint8 images as stored, ``[N, 28, 28]`` /
  ``[N, 3, 32, 32]``; :mod:`spikeseq.data.images`), the sources of the permuted MNIST and split CIFAR-100 streams.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeseq.errors import DataError

SPLITS: dict[str, tuple[str, ...]] = {
    "nmnist": ("train", "test"), "shd": ("train", "test"), "ssc": ("train", "valid", "test"),
    "temporal": ("train", "test"), "hapt": ("train", "test"), "uci_har": ("train", "test"),
    "basicmotions": ("train", "test"), "wisdm": ("train", "test"), "wisdm2019": ("train", "test"),
    "banglejs": ("train", "test"), "temporal_task": ("train", "test"),
    "tinyshakespeare": ("train", "test"), "ptb": ("train", "valid", "test"), "wikitext2": ("train", "valid", "test"),
    "enwik8": ("train", "val", "test"), "mnist": ("train", "test"), "cifar100": ("train", "test"),
}


#: Datasets generated in memory from their arguments (no files, no manifest, nothing to download).
GENERATED: tuple[str, ...] = ("temporal_task",)


def names() -> list[str]:
    """Names of the datasets :func:`load` knows."""
    return list(SPLITS)


def file_backed() -> list[str]:
    """Names of the datasets read from files (each has a manifest in ``datasets/``)."""
    return [n for n in SPLITS if n not in GENERATED]


def _nmnist(split: str, root, events: bool = False, **kw):
    from spikeseq.data import nmnist

    if events:
        return nmnist.NMNIST(root, split, **kw)
    return nmnist.load_frames(root, split, **kw)


def _h5(name: str) -> Callable[..., Any]:
    def load(split: str, root, **kw):
        from spikeseq.data.manifest import dataset_dir, missing_files_error
        from spikeseq.data.shd import load_frames

        base = Path(root) if root is not None else dataset_dir(name)
        path = base / f"{name}_{split}.h5"
        if not path.is_file():
            err = missing_files_error(name, [path], root=root)
            if name == "temporal":
                raise DataError(f"{err}; or generate it: spikeseq.data.temporal_task.generate_split({str(base)!r})")
            raise err
        return load_frames(path, **kw)
    return load


def _har(fn: str) -> Callable[..., Any]:
    def load(split: str, root, **kw):
        from spikeseq.data import har

        return getattr(har, fn)(root, split, **kw)
    return load


def _temporal_task(split: str, root, **kw):
    from spikeseq.data import temporal_task

    return temporal_task.load_split(split, **kw)


def _tinyshakespeare(split: str, root, **kw):
    from spikeseq.data import text_lm

    return text_lm.tinyshakespeare(root, split, **kw)


def _words(name: str) -> Callable[..., Any]:
    def load(split: str, root, **kw):
        from spikeseq.data import text_lm

        return text_lm.word_corpus(name, root, split, **kw)
    return load


def _enwik8(split: str, root, **kw):
    from spikeseq.data.charlm import load_windows

    return load_windows("enwik8", split, root, **kw)


def _mnist(split: str, root, **kw):
    from spikeseq.data import images

    return images.load_mnist(root, split, **kw)


def _cifar100(split: str, root, **kw):
    from spikeseq.data import images

    return images.load_cifar100(root, split, **kw)


LOADERS: dict[str, Callable[..., Any]] = {
    "tinyshakespeare": _tinyshakespeare, "ptb": _words("ptb"), "wikitext2": _words("wikitext2"),
    "temporal_task": _temporal_task,
    "nmnist": _nmnist, "shd": _h5("shd"), "ssc": _h5("ssc"), "temporal": _h5("temporal"),
    "hapt": _har("hapt_windows"), "uci_har": _har("uci_har"), "basicmotions": _har("basicmotions"),
    "wisdm": _har("wisdm"), "wisdm2019": _har("wisdm2019"), "banglejs": _har("banglejs"),
    "enwik8": _enwik8, "mnist": _mnist, "cifar100": _cifar100,
}


def get(name: str) -> Callable[..., Any]:
    """The function behind ``load(name, ...)``: its signature lists the keyword options (for config checks)."""
    from spikeseq.data import banglejs, charlm, hapt, har, images, nmnist, shd, temporal_task, text_lm, uci_har, wisdm

    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    return {
        "nmnist": nmnist.load_frames, "shd": shd.load_frames, "ssc": shd.load_frames, "temporal": shd.load_frames,
        "hapt": hapt.load_windows, "uci_har": uci_har.load_windows, "basicmotions": har.basicmotions,
        "wisdm": wisdm.load_v11, "wisdm2019": wisdm.load_2019, "banglejs": banglejs.load_windows,
        "temporal_task": temporal_task.load_split, "tinyshakespeare": text_lm.tinyshakespeare,
        "ptb": text_lm.word_corpus, "wikitext2": text_lm.word_corpus, "enwik8": charlm.load_windows,
        "mnist": images.load_mnist, "cifar100": images.load_cifar100,
    }[name]


def load(name: str, split: str = "train", root: str | os.PathLike | None = None, **kw: Any) -> Any:
    """Load split ``split`` of dataset ``name`` (keyword arguments go to the dataset's loader)."""
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    if split not in SPLITS[name]:
        raise DataError(f"{name} has splits {SPLITS[name]}, not {split!r}; pass one of those")
    return LOADERS[name](split, root, **kw)


def _labels(ds: Any) -> np.ndarray:
    if hasattr(ds, "labels"):
        return np.asarray(ds.labels)
    return np.asarray(ds.y)


def _describe(ds: Any) -> dict[str, Any]:
    """``n`` and ``per_class`` for a labelled split; for token windows (``y [N, T]`` next tokens) ``n``, the window
    length ``seq_len`` and the vocabulary size ``vocab`` instead (per-class counts do not apply)."""
    y = _labels(ds)
    if y.ndim == 1:
        return {"n": len(ds), "per_class": np.bincount(y).tolist() if y.size else []}
    return {"n": int(y.shape[0]), "seq_len": int(y.shape[-1]), "vocab": len(getattr(ds, "classes", []))}


def summary(name: str, root: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Per split: number of samples and per-class counts (token windows: window length and vocabulary size), or
    the error that loading gave (any exception: a :class:`DataError`'s message, else its type and message).

    A split whose loading emitted :class:`~spikeseq.data.repair.DataIncompleteWarning` (an incomplete or damaged
    copy that still loads, e.g. N-MNIST digits without any recording) also gets ``"warnings"``: their messages,
    which ``spikeseq data check`` counts as problems. Other warnings are passed on unchanged.
    """
    import warnings

    from spikeseq.data.repair import DataIncompleteWarning

    out: dict[str, dict[str, Any]] = {}
    for split in SPLITS[name]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataIncompleteWarning)  # counted however the caller filters them
            try:
                out[split] = _describe(load(name, split, root))
            except DataError as e:
                out[split] = {"error": str(e)}
            except Exception as e:  # `data check` reports every failure as a problem and goes on
                out[split] = {"error": f"{type(e).__name__}: {e}"}
        incomplete = [str(w.message) for w in caught if issubclass(w.category, DataIncompleteWarning)]
        if incomplete:
            out[split]["warnings"] = list(dict.fromkeys(incomplete))
        for w in caught:
            if not issubclass(w.category, DataIncompleteWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return out
