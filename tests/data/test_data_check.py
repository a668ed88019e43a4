"""`spikeseq data check` on token corpora, with --root, with a file listed twice in a manifest, and with a loader
that fails with something other than a DataError."""

from __future__ import annotations

import shutil
import warnings

import pytest

from spikeseq.cli import main
from spikeseq.data import registry, text_lm
from tests.conftest import require_path

# the fixture corpus is not the real input.txt: its size warning is expected here (tests/faults checks it)
pytestmark = pytest.mark.filterwarnings("ignore:.*the manifest records:spikeseq.data.repair.DataRepairWarning")

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 60


def _corpus(root):
    folder = root / "text" / "tinyshakespeare"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_text(TEXT, encoding="utf-8")
    return folder


def test_summary_of_token_windows_reports_windows_not_classes(tmp_path):
    _corpus(tmp_path)
    s = registry.summary("tinyshakespeare", tmp_path)
    n_train = (int(0.9 * len(TEXT)) - 1) // 100
    assert s["train"] == {"n": n_train, "seq_len": 100, "vocab": len(set(TEXT))}
    assert s["test"]["n"] == (len(TEXT) - int(0.9 * len(TEXT)) - 1) // 100


def test_check_text_corpus_with_root_does_not_double_the_path(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPIKESEQ_DATA", str(tmp_path / "elsewhere"))
    folder = _corpus(tmp_path)
    # the fixture is not the real file: the checksum differs (1 problem), but every split loads from --root
    assert main(["data", "check", "tinyshakespeare", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "text/tinyshakespeare/text/tinyshakespeare" not in out
    assert "LOAD     train: " in out and " windows of 100 tokens, vocabulary " in out and "error" not in out
    assert out.count(str(folder / "input.txt")) == 1  # in [[files]] and [[check]]: hashed and reported once
    assert "MISMATCH" in out and "check: 1 problem(s)" in out


def test_text_dir_accepts_the_corpus_folder_and_the_data_root(tmp_path):
    folder = _corpus(tmp_path)
    a = text_lm.tinyshakespeare(tmp_path, "train", seq_len=50)
    b = text_lm.tinyshakespeare(folder, "train", seq_len=50)
    assert a.x.shape == b.x.shape and (a.x == b.x).all()


def test_check_reports_any_loader_exception_and_goes_on(tmp_path, capsys, monkeypatch):
    _corpus(tmp_path)
    real = text_lm.tinyshakespeare

    def flaky(root, split, **kw):
        if split == "train":
            raise RuntimeError("boom in the loader")
        return real(root, split, **kw)

    monkeypatch.setattr(text_lm, "tinyshakespeare", flaky)
    s = registry.summary("tinyshakespeare", tmp_path)
    assert s["train"] == {"error": "RuntimeError: boom in the loader"} and s["test"]["seq_len"] == 100
    assert main(["data", "check", "tinyshakespeare", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "LOAD     train: error: RuntimeError: boom in the loader" in out and "LOAD     test: " in out
    assert "check: 2 problem(s)" in out  # the checksum of the fixture and the failed split


def test_check_tinyshakespeare_on_the_real_data(data_root, capsys, monkeypatch):
    require_path(data_root / "text" / "tinyshakespeare" / "input.txt")
    monkeypatch.setenv("SPIKESEQ_DATA", str(data_root))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the intact corpus loads without any warning
        assert main(["data", "check", "tinyshakespeare"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK       ") == 1 and "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed" in out
    assert "LOAD     train: 10038 windows of 100 tokens, vocabulary 65" in out
    assert "LOAD     test: 1115 windows of 100 tokens, vocabulary 65" in out and "check: all good" in out
    assert main(["data", "check", "tinyshakespeare", "--root", str(data_root)]) == 0
    assert "check: all good" in capsys.readouterr().out


def test_check_a_folder_in_place_of_a_checked_file(tmp_path, capsys):
    folder = _corpus(tmp_path)
    (folder / "input.txt").unlink()
    (folder / "input.txt").mkdir()
    assert main(["data", "check", "tinyshakespeare", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "is not a file" in out and "LOAD     train: error: " in out
    shutil.rmtree(folder)


@pytest.mark.parametrize("name,path", [("tinyshakespeare", "text/tinyshakespeare/input.txt"),
                                       ("enwik8", "text/enwik8/enwik8")])
def test_check_of_a_missing_corpus_names_the_path_once(tmp_path, capsys, name, path):
    assert main(["data", "check", name, "--root", str(tmp_path / "none")]) == 1
    out = capsys.readouterr().out
    assert f"file not found: {tmp_path / 'none' / path}" in out  # was .../text/<name>/text/<name>/...


@pytest.mark.parametrize("action", ["check", "fetch", "info"])
def test_a_generated_dataset_has_nothing_to_fetch_or_check(action, capsys):
    assert main(["data", action, "temporal_task"]) == 2  # was "no manifest for dataset 'temporal_task'"
    assert "generated in memory from its arguments" in capsys.readouterr().err
