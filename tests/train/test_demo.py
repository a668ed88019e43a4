"""``spikeseq demo`` end to end on the real BasicMotions data (small: rsnn, 2 epochs; the full demo is `make demo`)."""

from __future__ import annotations

import json

from spikeseq.cli import main
from tests.conftest import require_path


def test_demo_on_basicmotions(data_root, tmp_path, monkeypatch, capsys):
    require_path(data_root / "har" / "basicmotions")
    monkeypatch.setenv("SPIKESEQ_DATA", str(data_root))
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    out = tmp_path / "demo"
    rc = main(["demo", "--dataset", "basicmotions", "--model", "rsnn", "--out", str(out),
               "--set", "train.epochs=2", "--set", "export.samples=8", "--set", "profile.samples=4"])
    assert rc == 0
    assert capsys.readouterr().out.strip().endswith(f"report: {(out / 'report' / 'index.html').resolve()}")
    demo = json.loads((out / "demo.json").read_text())
    assert demo["model"] == "rsnn" and demo["dataset"] == "basicmotions" and demo["not_done"] == {}
    ev = json.loads((out / "eval.json").read_text())
    assert ev["test"]["n"] == 40 and demo["test_acc"] == ev["test"]["acc"]
    assert demo["exports"] == {"nir": "ok", "loihi": "ok", "spinnaker2": "ok"}
    for target in ("nir", "loihi", "spinnaker2"):
        res = json.loads((out / "export" / f"{target}.json").read_text())
        assert res["samples"] == 8 and res["prediction_agreement"] >= 0.5
    page = (out / "report" / "index.html").read_text()
    assert "Not available" not in page and f"{100 * ev['test']['acc']:.2f}%" in page
    # a second demo into the same directory replaces the demo's own run; a foreign run is refused
    (out / "run.json").write_text(json.dumps({"command": ["spikeseq", "train", "x.toml"]}))
    assert main(["demo", "--dataset", "basicmotions", "--out", str(out)]) == 2
    assert "did not write" in capsys.readouterr().err
