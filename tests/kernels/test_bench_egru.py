"""``spikeseq bench egru`` runs on tiny sizes, reaches the asked sparsities and writes its table."""

from __future__ import annotations

import json

import pytest

from spikeseq.cli import main


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
