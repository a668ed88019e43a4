"""`spikeseq bench sim --quick`: the table is written and every installed peer agrees with spikeseq in float64."""

from __future__ import annotations

import json

from spikeseq.cli import main


def test_bench_sim_quick_writes_table_and_rows_agree(tmp_path, capsys):
    out = tmp_path / "sim.json"
    assert main(["bench", "sim", "--quick", "--reps", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (setting,) = data["settings"]
    rows = setting["rows"]
    assert {"spikeseq", "dense bound"} <= set(rows)
    for r in rows.values():
        assert r["forward_ms"] > 0 and r["forward_backward_ms"] > 0 and r["saved_bytes"] > 0
    assert rows["dense bound"]["forward_backward_vs_bound"] == 1.0
    agree = setting["agreement"]
    assert all(0 < rate < 0.5 for rate in agree.pop("hidden spike rates"))  # the check is not vacuous
    assert "spikeseq (torch reference)" in agree
    for name, a in agree.items():
        assert a["ok"], (name, a)
        assert a["readout_max_abs_diff"] <= 1e-9
    assert "fwd+bwd ms" in capsys.readouterr().out
    # the plain-key ratios of the README table equal the rows' times, and the record names its command and commit
    fb = "forward_backward_ms"
    ratios = setting["ratios"]
    assert ratios["spikeseq_over_bound"] == rows["spikeseq"][fb] / rows["dense bound"][fb]
    for peer in ("snntorch", "norse", "spikingjelly"):
        if peer in rows:
            assert ratios[f"{peer}_over_spikeseq"] == rows[peer][fb] / rows["spikeseq"][fb]
    assert data["command"].startswith("spikeseq bench sim") and "commit" in data
