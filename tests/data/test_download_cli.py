"""Downloads (file:// and a local http.server on 127.0.0.1), checksums, atomicity, fetch + unpack from a
manifest, and the `spikeseq data` / registry commands."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile

import pytest

from spikeseq.cli import main
from spikeseq.data import download, registry
from spikeseq.errors import DataError

PAYLOAD = b"spikeseq download test " * 5000


@pytest.fixture
def served(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "blob.bin").write_bytes(PAYLOAD)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_http_download_verifies_sha256(served, tmp_path):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    out = download.download(f"{served}/blob.bin", tmp_path / "dl" / "blob.bin", sha256=sha, size=len(PAYLOAD))
    assert out.read_bytes() == PAYLOAD and _leftovers(tmp_path / "dl") == ["blob.bin"]


def test_checksum_mismatch_leaves_nothing(served, tmp_path):
    with pytest.raises(DataError, match=r"checksum mismatch for blob\.bin .*expected sha256 0+, got"):
        download.download(f"{served}/blob.bin", tmp_path / "dl" / "blob.bin", sha256="0" * 64)
    assert _leftovers(tmp_path / "dl") == []
    with pytest.raises(DataError, match="expected md5"):
        download.download(f"{served}/blob.bin", tmp_path / "dl" / "blob.bin", md5="f" * 32)
    assert _leftovers(tmp_path / "dl") == []


def test_short_download_leaves_nothing(served, tmp_path):
    with pytest.raises(DataError, match=f"got {len(PAYLOAD)} bytes, the manifest says {len(PAYLOAD) + 1}"):
        download.download(f"{served}/blob.bin", tmp_path / "dl" / "blob.bin", size=len(PAYLOAD) + 1)
    assert _leftovers(tmp_path / "dl") == []


def test_unreachable_url_names_file_url_and_variable(tmp_path):
    with pytest.raises(DataError) as e:
        download.download("http://127.0.0.1:9/none.zip", tmp_path / "x.zip", timeout=2)
    msg = str(e.value)
    assert "http://127.0.0.1:9/none.zip" in msg and "x.zip" in msg and "SPIKESEQ_DATA" in msg
    assert _leftovers(tmp_path) == []


def test_unknown_checksum_warns_with_the_measured_sha256(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    with pytest.warns(UserWarning, match=hashlib.sha256(PAYLOAD).hexdigest()):
        download.download(src.as_uri(), tmp_path / "out" / "a.bin")


def test_fetch_from_manifest_with_file_url_and_unpack(tmp_path, monkeypatch):
    arch = tmp_path / "src" / "basic.zip"
    arch.parent.mkdir()
    with zipfile.ZipFile(arch, "w") as z:
        z.writestr("BasicMotions_TRAIN.ts", "x")
        z.writestr("BasicMotions_TEST.ts", "y")
    sha = hashlib.sha256(arch.read_bytes()).hexdigest()
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    (mdir / "basicmotions.toml").write_text(
        'name = "basicmotions"\nsubdir = "har/basicmotions"\nexpect = ["BasicMotions_TRAIN.ts"]\n'
        f'[[files]]\nname = "basic.zip"\nurl = "{arch.as_uri()}"\nsha256 = "{sha}"\nunpack = true\n'
        'provides = ["BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts"]\n')
    monkeypatch.setenv("SPIKESEQ_MANIFESTS", str(mdir))
    root = tmp_path / "root"
    log = download.fetch("basicmotions", root)
    folder = root / "har" / "basicmotions"
    assert (folder / "BasicMotions_TEST.ts").read_text() == "y" and any("unpacked" in ln for ln in log)
    assert _leftovers(folder) == ["BasicMotions_TEST.ts", "BasicMotions_TRAIN.ts", "basic.zip"]
    assert download.fetch("basicmotions", root) == [f"present: {folder / 'BasicMotions_TRAIN.ts'}"]
    (mdir / "basicmotions.toml").write_text((mdir / "basicmotions.toml").read_text().replace(sha, "1" * 64))
    with pytest.raises(DataError, match="checksum mismatch"):
        download.fetch("basicmotions", tmp_path / "root2")
    assert not (tmp_path / "root2" / "har" / "basicmotions" / "basic.zip").exists()


def test_unpack_refuses_escaping_members(tmp_path):
    arch = tmp_path / "evil.zip"
    with zipfile.ZipFile(arch, "w") as z:
        z.writestr("../evil.txt", "x")
    with pytest.raises(DataError, match="refusing to unpack"):
        download.unpack(arch, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


# ------------------------------------------------------------------------------------------- CLI / registry
def test_registry_names_and_errors():
    assert registry.names() == ["nmnist", "shd", "ssc", "temporal", "hapt", "uci_har", "basicmotions", "wisdm",
                                "wisdm2019", "banglejs", "temporal_task", "tinyshakespeare", "ptb", "wikitext2",
                                "enwik8", "mnist", "cifar100"]
    assert registry.GENERATED == ("temporal_task",)
    with pytest.raises(DataError, match="unknown dataset"):
        registry.load("imagenet")
    with pytest.raises(DataError, match="splits"):
        registry.load("shd", "valid")


def test_cli_fetch_temporal_then_check(tmp_path, capsys):
    assert main(["data", "fetch", "temporal", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "temporal" / "temporal_train.h5").is_file()
    assert main(["data", "check", "temporal", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "LOAD     train: 1000 samples, per class [250, 250, 250, 250]" in out and "all good" in out
    ds = registry.load("temporal", "test", tmp_path / "temporal", dt=1e-3)
    assert len(ds) == 250 and ds[0][0].shape[1] == 40


def test_cli_info_and_check_missing(tmp_path, capsys):
    assert main(["data", "info", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nmnist" in out and "missing" in out
    assert main(["data", "info", "shd"]) == 0
    assert "md5 f3252aeb598ac776c1b526422d90eecb" in capsys.readouterr().out
    assert main(["data", "check", "shd", "--root", str(tmp_path)]) == 1
    assert "MISSING" in capsys.readouterr().out
    assert main(["data", "check", "nosuch"]) == 2


def test_cli_check_real_data(data_root, capsys):
    assert main(["data", "check", "basicmotions", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "OK       " in out and "LOAD     test: 40 samples, per class [10, 10, 10, 10]" in out
    assert main(["data", "check", "nmnist", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "Train/5/00001.bin sha256 731734ed" in out and "LOAD     train: 1000 samples" in out


def test_registry_get_exposes_the_options():
    import inspect

    assert "n_bins" in inspect.signature(registry.get("nmnist")).parameters
    assert "downsample" in inspect.signature(registry.get("shd")).parameters
    assert "window" in inspect.signature(registry.get("hapt")).parameters
    assert "activities" in inspect.signature(registry.get("wisdm2019")).parameters


def test_registry_nmnist_frames_and_events(data_root):
    from tests.conftest import require_path

    root = require_path(data_root / "nmnist" / "NMNIST")
    fs = registry.load("nmnist", "test", root, n_bins=10)
    assert tuple(fs.x.shape) == (100, 10, 2, 34, 34) and len(fs.labels) == 100
    ev, y = registry.load("nmnist", "test", root, events=True)[0]
    assert ev.dtype.names == ("x", "y", "t", "p") and 0 <= y <= 9
