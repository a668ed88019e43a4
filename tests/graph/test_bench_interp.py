"""``spikeseq bench interp`` runs and reports counted events (timings are shown by the bench, never asserted)."""

from __future__ import annotations

from spikeseq.cli import main


def test_bench_interp_smoke(capsys):
    assert main(["bench", "interp", "--inputs", "64", "--outputs", "32", "--steps", "20", "--repeats", "1",
                 "--rate", "0.5", "--factor", "5"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        if line.startswith(("events x1", "dense product")):
            *name, ev, synops, macs, _ = line.split()
            rows[" ".join(name)] = (int(ev), int(synops), int(macs))
    assert set(rows) == {"events x1", "events x1/5", "dense product"}
    for name in ("events x1", "events x1/5"):
        ev, synops, macs = rows[name]
        assert synops == 32 * ev and macs == 0  # every input event reaches all 32 targets
    assert rows["dense product"] == (20 * 64, 0, 20 * 64 * 32)
    assert rows["events x1"][0] > 3 * rows["events x1/5"][0]
    assert "events ratio" in out
