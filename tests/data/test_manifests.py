"""Every datasets/*.toml parses, names a registered dataset, and states its checksums honestly: a sha256 is 64 hex
digits, and a file without one says why in its note."""

from __future__ import annotations

import re

import pytest

from spikeseq.data import manifest, registry
from spikeseq.data.manifest import dataset_dir
from spikeseq.data.paths import data_root


def test_one_manifest_per_registered_dataset():
    assert sorted(manifest.available()) == sorted(registry.file_backed())
    assert set(registry.names()) == set(registry.file_backed()) | set(registry.GENERATED)


@pytest.mark.parametrize("name", registry.file_backed())
def test_manifest_fields(name):
    m = manifest.load_manifest(name)
    assert m.name == name and m.subdir and m.licence and m.citation and m.expect
    assert dataset_dir(name) == data_root() / m.subdir
    for f in m.files:
        assert f.url.startswith("https://")
        assert f.sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", f.sha256)
        assert f.md5 == "" or (re.fullmatch(r"[0-9a-f]{32}", f.md5) and f.md5_source)
        if not f.sha256:
            assert "not known" in f.note or "unknown" in f.note
    for c in m.check:
        assert re.fullmatch(r"[0-9a-f]{64}", c.sha256) and c.size > 0
