"""Class 3: bad input never ends in a raw Python exception (AttributeError, ValueError, UnicodeDecodeError,
OSError, RuntimeError, NIR's bare AssertionError), always in a specific spikeseq error that says what to do."""

from __future__ import annotations

import shutil
import tempfile

import h5py
import numpy as np
import pytest
import torch

from spikeseq.cli import main
from spikeseq.data import shd
from spikeseq.data.ucr_ts import read_ts
from spikeseq.errors import DataError, ShapeError
from tests.faults import _real
from tests.faults.conftest import tree_digest


def _replace_dataset(path, name, data, **kw):
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, data=data, **kw)


@pytest.mark.parametrize("name", ["spikes/times", "spikes/units", "labels"])
def test_string_typed_shd_dataset_is_a_data_error(tmp_path, name):
    path = _real.shd_fixture(tmp_path / "shd_test.h5")
    _replace_dataset(path, name, np.array([b"a", b"b", b"c", b"d", b"e", b"f"]))
    with pytest.raises(DataError, match=r"shd_test\.h5: .*(spikes/times|spikes/units|labels).*expected|integer"):
        shd.read_shd(path)


def test_non_utf8_shd_keys_and_bad_metadata_are_data_errors(tmp_path):
    path = _real.shd_fixture(tmp_path / "a.h5")
    _replace_dataset(path, "extra/keys", np.array([b"\xff\xfe"] * 20))
    with pytest.raises(DataError, match=r"a\.h5: not a valid SHD/SSC file \(UnicodeDecodeError"):
        shd.read_shd(path)
    path = _real.shd_fixture(tmp_path / "b.h5")
    with h5py.File(path, "r+") as f:
        f.attrs[shd.META_ATTR] = "{not json"
    with pytest.raises(DataError, match=r"b\.h5: not a valid SHD/SSC file \(JSONDecodeError.*write_shd"):
        shd.read_shd(path)


def test_nan_spike_times_never_reach_the_binning(tmp_path):
    path = _real.shd_fixture(tmp_path / "shd_train.h5")
    with h5py.File(path, "r+") as f:
        f["spikes/times"][0] = np.array([0.1, np.nan], np.float16)
        f["spikes/units"][0] = np.array([3, 4], np.uint16)
    with pytest.raises(DataError, match="sample 0, spike 1 has time nan"):
        shd.load_frames(path, dt=0.01, cache=False)


@pytest.mark.parametrize(("header", "pattern"), [
    ("@dimensions six", r"@dimensions 'six' is not a positive integer; write e.g. '@dimensions 6'"),
    ("@seriesLength -100", r"@serieslength '-100' is not a positive integer"),
])
def test_non_numeric_ts_header_is_a_data_error(data_root, tmp_path, header, pattern):
    root = _real.basicmotions_copy(data_root, tmp_path)
    path = root / "BasicMotions_TRAIN.ts"
    key = header.split()[0].lower()
    lines = [header if ln.lower().startswith(key + " ") else ln for ln in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=pattern):
        read_ts(path)


def test_non_utf8_ts_file_is_a_data_error(data_root, tmp_path):
    root = _real.basicmotions_copy(data_root, tmp_path)
    path = root / "BasicMotions_TRAIN.ts"
    raw = path.read_bytes()
    path.write_bytes(raw[:3] + b"\xff\xfe" + raw[3:])
    with pytest.raises(DataError, match=r"BasicMotions_TRAIN\.ts: line 1 is not UTF-8 text .*a \.ts file is plain"):
        read_ts(path)


def _tiny_graph():
    from spikeseq.graph import trace
    from spikeseq.nn import LIF, Sequential

    net = Sequential(torch.nn.Linear(3, 4), LIF(4, tau_mem=0.02, dt=1e-3))
    return trace(net, dt=1e-3, input_shape=3)


def test_write_nir_into_an_unwritable_place_is_an_output_error(tmp_path, monkeypatch):
    from spikeseq.errors import OutputError
    from spikeseq.export.nir import write_nir

    graph = _tiny_graph()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file is a file, not a directory"):
        write_nir(graph, tmp_path / "file" / "model.nir")

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # what a read-only folder gives (root ignores chmod)
    with pytest.raises(OutputError, match=r"cannot write .*model\.nir: permission denied .*make the folder writable"):
        write_nir(graph, tmp_path / "ro" / "model.nir")
    assert not (tmp_path / "ro" / "model.nir").exists()


@pytest.mark.parametrize("blocker", ["export", "export/spinnaker2"])
def test_export_folder_that_is_a_file_is_refused_before_any_work(workdir, capsys, blocker):
    run = workdir / "run"
    shutil.rmtree(run / "export")
    (run / blocker).parent.mkdir(parents=True, exist_ok=True)
    (run / blocker).write_text("not a folder")
    before = tree_digest(workdir)
    target = "spinnaker2" if "spinnaker2" in blocker else "nir"
    assert main(["export", str(run), "--target", target]) == 2
    err = capsys.readouterr().err
    assert f"{run / blocker} is a file, not a directory" in err and "move or delete the file" in err
    assert "Errno" not in err
    assert tree_digest(workdir) == before


def test_report_out_that_is_a_file_is_refused(workdir, capsys):
    (workdir / "rep").write_text("x")
    before = tree_digest(workdir)
    assert main(["report", str(workdir / "run"), "--out", str(workdir / "rep")]) == 2
    err = capsys.readouterr().err
    assert "rep is a file, not a directory; remove or rename it" in err and "Errno" not in err
    assert tree_digest(workdir) == before


@pytest.mark.parametrize("case", ["functional", "module_size", "loaded_parameter"])
def test_parameter_of_the_wrong_shape_is_a_shape_error(case):
    from spikeseq.functional.lif import lif_scan
    from spikeseq.nn import LIF

    x = torch.rand(5, 2, 4)
    with pytest.raises(ShapeError, match=r"(beta|v_th) has shape \((3|4),\), which does not fit the neurons"):
        if case == "functional":
            lif_scan(x, beta=torch.full((3,), 0.9), v_th=1.0)
        elif case == "module_size":
            LIF(4, tau_mem=0.01, dt=1e-3)(torch.rand(5, 2, 3))
        else:
            m = LIF(4, tau_mem=0.01, dt=1e-3, learn_threshold=True)
            m.v_th = torch.nn.Parameter(torch.ones(3))
            m(x)


def _nir_file(tmp_path, weight_shape=(2, 3), node_type=None):
    import nir

    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
                            "lin": nir.Linear(weight=np.ones((2, 3))),
                            "output": nir.Output(output_type=np.array([2]))},
                     edges=[("input", "lin"), ("lin", "output")])
    path = tmp_path / "m.nir"
    nir.write(path, g)
    with h5py.File(path, "r+") as f:
        if weight_shape != (2, 3):
            del f["node/nodes/lin/weight"]
            f["node/nodes/lin/weight"] = np.ones(weight_shape)
        if node_type is not None:
            del f["node/nodes/lin/type"]
            f["node/nodes/lin/type"] = np.bytes_(node_type)
    return path


@pytest.mark.parametrize(("kw", "pattern"), [
    ({"node_type": "Bogus"}, r"node 'lin' has type 'Bogus', which spikeseq's NIR 1\.0 reader does not know"),
    ({"weight_shape": (2, 5)}, r"type mismatch.*\(the shapes of connected nodes do not match\)"),
])
def test_bad_nir_files_are_data_errors_that_say_what_is_wrong(tmp_path, kw, pattern):
    from spikeseq.export.nir import from_nir

    path = _nir_file(tmp_path, **kw)
    with pytest.raises(DataError, match=pattern) as e:
        from_nir(path, dt=1e-3)
    assert not str(e.value).rstrip().endswith("AssertionError:")
    assert "re-export the model" in str(e.value)


