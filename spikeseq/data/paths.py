"""Where dataset files live.

The data root is ``$SPIKESEQ_DATA`` when set, else the repository's ``datasets/`` folder (editable installs), else
the packaged manifests' folder. Each dataset has its own sub-folder (its manifest's ``subdir``), laid out like
``../shared/data``::

    nmnist/NMNIST/{Train,Test}/<digit>/<NNNNN>.bin     (or train.zip / test.zip)
    shd/shd_{train,test}.h5      ssc/ssc_{train,valid,test}.h5
    har/hapt/HAPT Data Set/      har/uci_har/UCI HAR Dataset/      har/basicmotions/
    har/wisdm/WISDM_ar_v1.1/     har/wisdm2019/wisdm-dataset/

Binned-tensor caches go to ``$SPIKESEQ_CACHE``, else ``<repo>/.spikeseq-cache`` (git-ignored), else
``~/.cache/spikeseq`` (the data root may be read-only).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA = "SPIKESEQ_DATA"
ENV_CACHE = "SPIKESEQ_CACHE"
ENV_MANIFESTS = "SPIKESEQ_MANIFESTS"

_PKG = Path(__file__).resolve().parent.parent  # spikeseq/
_REPO = _PKG.parent


def _repo_datasets() -> Path | None:
    d = _REPO / "datasets"
    return d if (_REPO / "pyproject.toml").is_file() and d.is_dir() else None


def manifests_dir() -> Path:
    """The folder holding ``datasets/*.toml``: ``$SPIKESEQ_MANIFESTS``, the repository's ``datasets/`` or the
    wheel's copy."""
    env = os.environ.get(ENV_MANIFESTS)
    if env:
        return Path(env).expanduser()
    repo = _repo_datasets()
    if repo is not None:
        return repo
    return _PKG / "_data" / "datasets"


def data_root() -> Path:
    """``$SPIKESEQ_DATA`` if set, else ``<repo>/datasets`` (or the packaged manifests' folder)."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    repo = _repo_datasets()
    return repo if repo is not None else _PKG / "_data" / "datasets"


def cache_dir() -> Path:
    """Folder for binned-tensor caches (``$SPIKESEQ_CACHE``, ``<repo>/.spikeseq-cache`` or ``~/.cache/spikeseq``)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    if _repo_datasets() is not None:
        return _REPO / ".spikeseq-cache"
    return Path.home() / ".cache" / "spikeseq"
