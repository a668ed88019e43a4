"""`spikeseq bench data` on the real N-MNIST subset: a record that names its command, strict JSON (no NaN)."""

from __future__ import annotations

import json

from spikeseq.cli import main
from tests.conftest import require_path


def test_bench_data_writes_a_strict_record(data_root, tmp_path):
    root = require_path(data_root / "nmnist" / "NMNIST")
    out = tmp_path / "data.json"
    assert main(["bench", "data", "--root", str(root), "--repeats", "1", "--n-bins", "5", "--workers", "0",
                 "--batches", "2", "--json", str(out)]) == 0
    text = out.read_text()
    assert "NaN" not in text
    rec = json.loads(text)
    assert rec["command"].startswith("spikeseq bench data") and "commit" in rec and rec["machine"]["cpus"] >= 1
    assert rec["n_recordings"] == 1100
    med = rec["median"]
    assert rec["speedup_vs_first"] == med["first pass (bin + write cache)"] / med["cached pass"]
    assert rec["speedup_vs_no_cache"] == med["bin (no cache)"] / med["cached pass"]
    assert all(r["worker_cores_busy"] is None for r in rec["feed"] if r["workers"] == 0)
