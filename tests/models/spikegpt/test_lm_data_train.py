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


def _tiny_recipe(*, epochs: int, eval_batch_size: int) -> str:
    """A tiny SpikeGPT language-model recipe on the test corpus; ends inside its [train] section."""
    return f"""name = "tiny_lm"
task = "language_modelling"
[model]
name = "spikegpt"
size = "tiny"
vocab = {len(set(TEXT))}
ctx_len = 16
[data]
name = "tinyshakespeare"
seq_len = 16
val_fraction = 0.1
[train]
epochs = {epochs}
batch_size = 8
lr = 3e-3
seed = 0
threads = 1
eval_batch_size = {eval_batch_size}
"""


def test_train_generate_and_bad_checkpoint(corpus_root, tmp_path, monkeypatch, capsys):
    from spikeseq.cli import main

    monkeypatch.setenv("SPIKESEQ_DATA", str(corpus_root))
    vocab = len(set(TEXT))
    recipe = tmp_path / "lm.toml"
    recipe.write_text(_tiny_recipe(epochs=3, eval_batch_size=32))
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


def test_train_records_bpc_and_nats_in_the_artifact(corpus_root, tmp_path, monkeypatch):
    """``spikeseq train`` of an LM recipe with ``[results]``: the artifact's metrics carry the test BPC and the mean
    cross-entropy in nats, checked against a log-softmax over the whole test split computed here."""
    import json
    import sys

    import torch

    from spikeseq.cli import main
    from spikeseq.train.runs import load_run

    monkeypatch.setenv("SPIKESEQ_DATA", str(corpus_root))
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    recipe = tmp_path / "examples" / "spikegpt" / "tiny_lm.toml"
    recipe.parent.mkdir(parents=True)
    recipe.write_text(_tiny_recipe(epochs=1, eval_batch_size=5) + """eval_checkpoint = "last"
[results]
table = "spikegpt-lm"
label = "tiny | tiny"
profile_samples = 2
""")
    argv = ["train", str(recipe), "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results")]
    monkeypatch.setattr(sys, "argv", ["spikeseq", *argv])
    assert main(argv) == 0
    m = json.loads((tmp_path / "results" / "spikegpt" / "tiny_lm-s0.json").read_text())["metrics"]
    # independently: every test window in one batch, the target's log-probability picked out of a log-softmax
    lr = load_run(tmp_path / "run", "last")
    test = lr.data().test
    with torch.no_grad():
        out = lr.model(test.x.t())
        logits = out[0] if isinstance(out, tuple) else out  # [T, N, V]
        logp = torch.log_softmax(logits.double(), -1).gather(-1, test.y.t()[..., None].long())
    nats = float(-logp.mean())
    assert m["test_tokens"] == test.y.numel() == logp.numel()
    assert m["test_loss_nats"] == pytest.approx(nats, rel=1e-5)
    assert m["test_bpc"] == pytest.approx(nats / math.log(2), rel=1e-5)
    assert m["test_bpc"] == pytest.approx(m["test_loss_nats"] / math.log(2), rel=1e-12)
    assert m["test_perplexity"] == pytest.approx(math.exp(nats), rel=1e-5)
