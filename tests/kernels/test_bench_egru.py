"""``spikeseq bench egru`` runs on tiny sizes, reaches the asked sparsities and writes its table."""

from __future__ import annotations

import json

import pytest
import torch

from spikeseq.cli import main
from tests.train._tiny_lm import train_tiny_egru_lm


@pytest.mark.native
def test_bench_egru_tiny(tmp_path, capsys):
    out = tmp_path / "egru.json"
    rc = main(["bench", "egru", "--hidden", "24", "--steps", "12", "--batch", "3", "--reps", "1",
               "--activity-sparsity", "0.8", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert abs(res["fwd_bwd"]["activity_sparsity"] - 0.8) < 0.1
    assert abs(res["forward_pruned"]["activity_sparsity"] - 0.85) < 0.1
    assert res["fwd_bwd"]["max_abs_diff"] < 1e-4
    assert set(res["fwd_bwd"]["ms"]) == {"sparse", "dense", "gru"}
    assert "forward at 0.95 weight" in capsys.readouterr().out


@pytest.mark.native
@pytest.mark.parametrize(("flag", "value", "message"), [("--weight-sparsity", "1.0", "must lie in"),
                                                        ("--hidden", "0", "--hidden must be at least 1")])
def test_bench_egru_bad_flags(tmp_path, capsys, flag, value, message):
    rc = main(["bench", "egru", flag, value, "--json", str(tmp_path / "x.json")])
    assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.native
def test_bench_run_times_a_trained_egru_run(tmp_path, capsys):
    run = train_tiny_egru_lm(tmp_path, hidden=24, seq_len=20)
    out = tmp_path / "bench.json"
    rc = main(["bench-run", str(run), "--batch", "4", "--reps", "1", "--flush-denormal", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["trained"]["input_shape"] == [20, 4, 8]  # T = seq_len, B = --batch, the embedding width
    assert res["trained"]["max_abs_diff"] < 1e-5 and 0.0 <= res["trained"]["activity_sparsity"] <= 1.0
    assert res["trained"]["torch_flush_denormal"] is True
    assert res["trained"]["weight_sparsity"] == 0.0   # an unpruned run: no weight is exactly zero
    assert set(res["fwd_bwd"]["ms"]) == set(res["forward"]["ms"]) == {"sparse", "dense", "gru"}
    assert res["command"].startswith("spikeseq bench-run")
    assert float(torch.tensor([1e-39])[0] * 1.0) > 0.0  # PyTorch's default restored after the bench


@pytest.mark.native
def test_bench_run_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    rc = main(["bench-run", str(tmp_path), "--json", str(tmp_path / "x.json")])
    assert rc == 2 and "not a finished spikeseq train run" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.native
def test_bench_run_refuses_a_batch_of_zero_before_reading_the_run(tmp_path, capsys):
    rc = main(["bench-run", str(tmp_path), "--batch", "0", "--json", str(tmp_path / "x.json")])
    assert rc == 2 and "--batch, --reps and --threads must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
