"""README results tables are generated from results/: the repository is in sync, and the generator is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeseq.errors import ConfigError
from spikeseq.report import results

ROOT = Path(__file__).resolve().parents[2]
#: every Markdown file that holds generated results blocks
DOCS = [ROOT / "README.md", ROOT / "examples" / "l2mu" / "README.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_tables_match_results(doc):
    assert results.BLOCK.search(doc.read_text()), f"{doc} has no generated results block"
    assert results.check_readme(doc, ROOT / "results") == []


def test_benchmark_records_name_their_command_and_machine():
    for rec in results.load_bench(ROOT / "results"):
        assert rec["command"].startswith("spikeseq bench"), rec["_path"]
        assert rec["machine"], rec["_path"]


def test_every_artifact_is_complete_and_in_a_table():
    arts = results.load(ROOT / "results")
    assert len(arts) >= 15  # the 15 converted examples/har_train.py reports at least
    readme = (ROOT / "README.md").read_text()
    for a in arts:
        path = Path(a["_path"])
        assert path.name == f"{a['recipe']}-s{a['seed']}.json", path
        assert 0.0 <= a["metrics"]["test_acc"] <= 1.0
        assert a["producer"] and "command" in a and "config_hash" in a and "machine" in a
        assert f"<!-- results:{a['table']} -->" in readme, f"{path}: table {a['table']!r} is not in the README"
        if a["producer"] == "spikeseq train":  # written by the command: full provenance
            assert len(a["config_hash"]) == 64 and a["git"]["commit"] and a["versions"]["torch"]
        else:  # converted: the original report is kept verbatim, unknown provenance is null, never invented
            assert a["original"]["test_acc"] == a["metrics"]["test_acc"]
            assert a["config_hash"] is None and a["git"]["commit"] is None


def _art(tmp: Path, seed: int, acc: float, label: str = "M | D", producer: str = "spikeseq train",
         table: str = "lmu-har", **metrics) -> None:
    m = {"test_acc": acc, "params": 95495, "eff_acs": 1.0e6 + seed, "eff_macs": 1720.0, "activation_sparsity": 0.8,
         **metrics}
    path = tmp / "fam" / f"r-s{seed}.json"
    if producer != "spikeseq train":
        path = tmp / "fam" / "old" / f"r-s{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"table": table, "label": label, "seed": seed, "producer": producer,
                                "recipe": "r", "family": "fam", "metrics": m}))


def test_render_means_per_seed_values_and_keeps_producers_apart(tmp_path):
    _art(tmp_path, 0, 0.90854)
    _art(tmp_path, 1, 0.90554)
    _art(tmp_path, 2, 0.5, producer="old script")
    text = results.render("lmu-har", results.load(tmp_path))
    rows = [line for line in text.splitlines() if line.startswith("| M ")]
    assert rows == [
        "| M | D | 2 | 90.7% (90.9, 90.6) | 0.800 | 1e6 | 1720 | 95k | `spikeseq train` |",
        "| M | D | 1 | 50.0% | 0.800 | 1e6 | 1720 | 95k | `old script` |",
    ]


def test_check_finds_a_changed_number_and_update_fixes_it(tmp_path):
    _art(tmp_path, 0, 0.9)
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- results:lmu-har -->\nold\n<!-- /results -->\ntail\n")
    assert results.check_readme(doc, tmp_path) == ["lmu-har"]
    assert results.update_readme(doc, tmp_path) == ["lmu-har"]
    assert results.check_readme(doc, tmp_path) == []
    text = doc.read_text()
    assert text.startswith("intro\n<!-- results:lmu-har -->\n| model | dataset |") and text.endswith("tail\n")
    assert "| M | D | 1 | 90.0% |" in text
    doc.write_text(text.replace("90.0%", "90.1%"))  # a hand edit of one number is caught
    assert results.check_readme(doc, tmp_path) == ["lmu-har"]


def test_bad_inputs_name_the_problem(tmp_path):
    _art(tmp_path, 0, 0.9, label="only-one-part")
    with pytest.raises(ConfigError, match="label 'only-one-part' must have 2 part"):
        results.render("lmu-har", results.load(tmp_path))
    with pytest.raises(ConfigError, match="unknown results table 'nope'; known tables: lmu-har"):
        results.render("nope", [])
    (tmp_path / "fam" / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match=r"bad\.json: corrupt JSON"):
        results.load(tmp_path)
    with pytest.raises(ConfigError, match="results folder not found"):
        results.load(tmp_path / "missing")
    doc = tmp_path / "plain.md"
    doc.write_text("no blocks\n")
    with pytest.raises(ConfigError, match="has no <!-- results:NAME -->"):
        results.check_readme(doc, tmp_path)
