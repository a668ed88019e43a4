"""``spikeseq bench spmm`` runs on tiny sizes and writes a table whose two paths agree."""

from __future__ import annotations

import json

import pytest

from spikeseq.cli import main
from spikeseq.kernels import _native


@pytest.mark.skipif(_native.library() is None, reason="no C++ compiler")
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
