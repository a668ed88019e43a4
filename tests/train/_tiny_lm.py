"""A tiny EGRU language-model run trained in a test's folder (a 40-line text in the Tiny Shakespeare layout)."""

from __future__ import annotations

from pathlib import Path

from spikeseq.cli import main

TEXT = "to be or not to be that is the question\n" * 40


def train_tiny_egru_lm(tmp_path: Path, *, hidden: int, seq_len: int, embed: int = 8) -> Path:
    """Train one epoch of ``egru_lm`` on :data:`TEXT` under ``tmp_path``; returns the finished run's folder."""
    base = tmp_path / "text" / "tinyshakespeare"
    base.mkdir(parents=True)
    (base / "input.txt").write_text(TEXT)
    recipe = tmp_path / "lm.toml"
    recipe.write_text(f"""name = "tiny"
task = "language_modelling"
[model]
name = "egru_lm"
vocab = {len(set(TEXT))}
embed = {embed}
hidden = {hidden}
thr_mean = 0.1
[data]
name = "tinyshakespeare"
root = "{tmp_path}"
seq_len = {seq_len}
val_fraction = 0.1
[train]
epochs = 1
batch_size = 8
lr = 0.02
threads = 1
""")
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    return run
