"""Character corpora (tiny fixtures), the language_modelling task through the one training path, generation."""

from __future__ import annotations

import math

import pytest

from spikeseq.data import charlm
from spikeseq.errors import ConfigError, DataError

TEXT = "to be or not to be, that is the question.\n" * 40


@pytest.fixture
def corpus_root(tmp_path):
    d = tmp_path / "text" / "tinyshakespeare"
    d.mkdir(parents=True)
    (d / "input.txt").write_text(TEXT)
    return tmp_path


def test_enwik8_reader_on_a_fixture(tmp_path, monkeypatch):
    d = tmp_path / "text" / "enwik8"
    d.mkdir(parents=True)
    data = bytes(range(32, 127)) * 3 + b"\xe9\xff"  # 287 bytes, two of them non-ASCII
    (d / "enwik8").write_bytes(data)
    monkeypatch.setitem(charlm.SPLITS, "enwik8", {"train": (0, 200), "val": (200, 250), "test": (250, 287)})
    tr = charlm.load_windows("enwik8", "train", tmp_path, ctx_len=9)
    te = charlm.load_windows("enwik8", "test", tmp_path, ctx_len=9)
    assert len(tr.classes) == 97 and tr.classes[-1] == "\xff"
    assert tr.x.shape == (22, 9) and te.x.shape == (4, 9)
    assert bytes(ord(tr.classes[i]) for i in te.y[-1].tolist())[-2:] == b"\xe9\xff"
    monkeypatch.setitem(charlm.SPLITS, "enwik8", {"train": (0, 90), "val": (90, 95), "test": (95, 1000)})
    with pytest.raises(DataError, match="must hold 1,000 bytes"):
        charlm.load_windows("enwik8", "train", tmp_path)


def test_characters_outside_the_vocabulary(corpus_root):
    with pytest.raises(DataError, match=r"not in the vocabulary.*'Z'"):
        charlm.encode("to be Z", sorted(set(TEXT)))
    with pytest.raises(DataError, match="file not found"):
        charlm.load_windows("enwik8", "train", corpus_root / "nowhere")


def test_train_generate_and_bad_checkpoint(corpus_root, tmp_path, monkeypatch, capsys):
    from spikeseq.cli import main

    monkeypatch.setenv("SPIKESEQ_DATA", str(corpus_root))
    vocab = len(set(TEXT))
    recipe = tmp_path / "lm.toml"
    recipe.write_text(f"""name = "tiny_lm"
task = "language_modelling"
[model]
name = "spikegpt"
size = "tiny"
vocab = {vocab}
ctx_len = 16
[data]
name = "tinyshakespeare"
seq_len = 16
val_fraction = 0.1
[train]
epochs = 3
batch_size = 8
lr = 3e-3
seed = 0
threads = 1
eval_batch_size = 32
""")
    out = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(out)]) == 0
    import json

    ev = json.loads((out / "eval.json").read_text())["test"]
    assert ev["bpc"] == pytest.approx(ev["loss"] / math.log(2))
    assert ev["bpc"] < math.log2(vocab)  # learnt something: below the uniform guess
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "to be", "--tokens", "30", "--seed", "1"]) == 0
    text1 = capsys.readouterr().out
    assert main(["generate", str(out), "--prompt", "to be", "--tokens", "30", "--seed", "1"]) == 0
    assert capsys.readouterr().out == text1  # seeded
    assert text1.startswith("to be") and len(text1.rstrip("\n")) >= 35
    assert main(["generate", str(out), "--prompt", "to be Z", "--tokens", "3"]) == 2  # a character not in vocab
    # a checkpoint from another config
    cj = json.loads((out / "config.json").read_text())
    cj["model"]["n_layer"] = 3
    (out / "config.json").write_text(json.dumps(cj))
    from spikeseq.train.runs import load_run

    with pytest.raises(ConfigError, match="does not fit model"):
        load_run(out, "last")
