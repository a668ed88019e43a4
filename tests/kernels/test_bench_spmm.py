"""``spikeseq bench spmm`` runs on tiny sizes and writes a table whose two paths agree."""

from __future__ import annotations

import json

import pytest

from spikeseq.cli import main


@pytest.mark.native
def test_bench_spmm_tiny(tmp_path, capsys):
    out = tmp_path / "spmm.json"
    rc = main(["bench", "spmm", "--rows", "64", "--in-features", "40", "--out-features", "48", "--densities",
               "0.05,0.5", "--reps", "1", "--json", str(out)])
    assert rc == 0
    table = json.loads(out.read_text())["table"]
    assert [r["density"] for r in table] == [0.05, 0.5]
    for r in table:
        assert r["max_abs_diff"] < 1e-5
        assert r["fwd_bwd_sparse_ms"] > 0 and r["fwd_bwd_dense_ms"] > 0
    assert "event-driven fwd+bwd faster up to density" in capsys.readouterr().out



@pytest.mark.native
@pytest.mark.parametrize(("flag", "value", "message"), [("--densities", "0.1,x", "comma list of numbers"),
                                                        ("--densities", "1.5", "probabilities in [0, 1]"),
                                                        ("--rows", "0", "--rows must be at least 1")])
def test_bench_spmm_rejects_bad_arguments(tmp_path, capsys, flag, value, message):
    rc = main(["bench", "spmm", flag, value, "--reps", "1", "--json", str(tmp_path / "x.json")])
    assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
