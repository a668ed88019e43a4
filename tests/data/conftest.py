"""Fixtures for the data tests: caches go to a temporary folder, never to the repository."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path_factory, monkeypatch):
    d = tmp_path_factory.mktemp("spikeseq-cache")
    monkeypatch.setenv("SPIKESEQ_CACHE", str(d))
    return d
