"""A tiny EGRU language model trains through the standard loop on a Tiny Shakespeare-format fixture (seconds)."""

from __future__ import annotations

import math

import pytest

from spikeseq.errors import ConfigError
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir

TEXT = "to be or not to be that is the question\n" * 40


def _cfg(tmp_path, model: dict, task: str = "language_modelling"):
    base = tmp_path / "text" / "tinyshakespeare"
    base.mkdir(parents=True, exist_ok=True)
    (base / "input.txt").write_text(TEXT)
    return from_dict({
        "name": "tiny_lm", "task": task,
        "model": {"vocab": len(set(TEXT)), "embed": 8, "hidden": 24, **model},
        "data": {"name": "tinyshakespeare", "root": str(tmp_path), "seq_len": 20, "val_fraction": 0.1},
        "train": {"epochs": 3, "batch_size": 8, "lr": 2e-2, "optimizer": "adam", "threads": 1, "seed": 0},
    })


@pytest.mark.parametrize("model", [{"name": "egru_lm", "thr_mean": 0.1},
                                   {"name": "egru_lm", "thr_mean": 0.1,
                                    "prune": {"sparsity": 0.5, "start": 0, "end": 10, "every": 2}},
                                   {"name": "gru_lm"}])
def test_lm_learns_below_the_uniform_rate(tmp_path, model):
    cfg = _cfg(tmp_path, model)
    run = RunDir.prepare(tmp_path / "run", cfg, argv=["test"])
    fit(cfg, run, quiet=True)
    rows = run.read_metrics()
    bpc = [-r["val_neg_bpc"] for r in rows]
    uniform = math.log2(len(set(TEXT)))
    assert bpc[-1] < 0.8 * uniform and bpc[-1] < bpc[0]


def test_family_task_mismatch_is_a_config_error(tmp_path):
    cfg = _cfg(tmp_path, {"name": "egru_lm"}, task="continual")
    run = RunDir.prepare(tmp_path / "run", cfg, argv=["test"])
    with pytest.raises(ConfigError, match="language_modelling"):
        fit(cfg, run, quiet=True)
