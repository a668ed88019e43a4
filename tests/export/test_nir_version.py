"""NIR files from another NIR version: read with a warning naming both versions; a node type the reader does not
know is refused naming the node and its type."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from spikeseq.errors import DataError
from spikeseq.export.nir import NIR_SERIES, NIRVersionWarning, from_nir, read_nir, write_nir
from spikeseq.graph import ir, simulate


def _graph() -> ir.Graph:
    inner = ir.Graph({"input": ir.Input((3,)), "lin": ir.Linear(np.eye(3) * 2),
                      "lif": ir.LIF(tau=np.full(3, 5e-3), r=np.ones(3), v_threshold=np.ones(3)),
                      "output": ir.Output((3,))},
                     [("input", "lin"), ("lin", "lif"), ("lif", "output")], dt=1e-3)
    return ir.Graph({"input": ir.Input((3,)), "sub": inner, "output": ir.Output((3,))},
                    [("input", "sub"), ("sub", "output")], dt=1e-3)


def _set(path, key: str, value: str | None) -> None:
    with h5py.File(path, "a") as f:
        del f[key]
        if value is not None:
            f.create_dataset(key, data=value, dtype=h5py.string_dtype())


def test_file_of_this_nir_series_reads_without_a_version_warning(tmp_path):
    path = write_nir(_graph(), tmp_path / "m.nir")
    with h5py.File(path, "r") as f:
        assert f["version"][()].decode().startswith(NIR_SERIES + ".")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRVersionWarning)
        from_nir(path, dt=1e-3)


@pytest.mark.parametrize("version", ["1.1.0", "2.0.0", "0.5.0"])
def test_other_nir_version_warns_naming_both(tmp_path, version):
    g = _graph()
    path = write_nir(g, tmp_path / "m.nir")
    _set(path, "version", version)
    with pytest.warns(NIRVersionWarning, match=rf"m\.nir was written by NIR {version}, but spikeseq's NIR reader "
                                               rf"was written for NIR {NIR_SERIES}\.x \(installed nir "):
        back = from_nir(path, dt=1e-3)
    x = (np.random.default_rng(0).random((10, 1, 3)) < 0.8).astype(float)
    np.testing.assert_array_equal(simulate(g, x).output, simulate(back, x).output)   # still read, same graph


def test_file_without_a_version_warns(tmp_path):
    path = write_nir(_graph(), tmp_path / "m.nir")
    _set(path, "version", None)
    with pytest.warns(NIRVersionWarning, match=r"m\.nir records no NIR version"):
        read_nir(path)


def test_unknown_node_type_names_the_node_and_type(tmp_path):
    path = write_nir(_graph(), tmp_path / "m.nir")
    _set(path, "node/nodes/sub/nodes/lif/type", "AdEx")
    with pytest.raises(DataError, match=r"m\.nir: corrupt or unsupported NIR content: node 'sub\.lif' has type "
                                        r"'AdEx', which spikeseq's NIR 1\.0 reader does not know \(it reads Input"):
        from_nir(path, dt=1e-3)
    _set(path, "version", "2.0.0")   # a newer file: the error says so (and no version warning on top)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRVersionWarning)
        with pytest.raises(DataError, match=r"node 'sub\.lif' has type 'AdEx'.*the file was written by NIR 2\.0\.0, "
                                            r"whose node types may differ"):
            from_nir(path, dt=1e-3)


def test_node_without_a_type_is_named(tmp_path):
    path = write_nir(_graph(), tmp_path / "m.nir")
    with h5py.File(path, "a") as f:
        del f["node/nodes/output/type"]
    with pytest.raises(DataError, match=r"node 'output' has type \(none: the node has no 'type' field\)"):
        read_nir(path)
