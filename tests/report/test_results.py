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


def test_records_name_their_command():
    recs = results.load_records(ROOT / "results")
    for rec in recs:
        assert isinstance(rec["command"], str) and rec["command"], rec["_path"]
    for rec in recs:
        if Path(rec["_path"]).name.startswith("bench_"):
            assert rec["command"].startswith("spikeseq bench") and rec["machine"], rec["_path"]


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


def _spec_root(tmp: Path) -> Path:
    """A results folder with a record spec: two seeds of two methods and one benchmark record."""
    area = tmp / "res" / "area"
    for method, accs in (("a", (0.5, 0.7)), ("b", (0.9, 0.9))):
        (area / "stream").mkdir(parents=True, exist_ok=True)
        for seed, acc in enumerate(accs):
            (area / "stream" / f"{method}_seed{seed}.json").write_text(json.dumps(
                {"command": "c", "metrics": {"acc": acc, "times": [1.0, 3.0]}}))
    (area / "bench.json").write_text(json.dumps({"command": "spikeseq bench x", "machine": {}, "ratio": 2.345,
                                                 "deg": [0.5, 4.25], "ok": True, "ops_ok": True,
                                                 "target": None}))  # null: the column's default
    (area / "tables.toml").write_text('''
[[table]]
name = "area-acc"
label = ["stream", "method"]
[[table.column]]
header = "seeds"
agg = "count"
[[table.column]]
header = "ACC (%)"
path = "metrics.acc"
scale = 100
fmt = "{:.1f}"
agg = "mean_std"
[[table.column]]
header = "s / task"
path = "metrics.times"
reduce = "mean"
agg = "mean"
fmt = "{:.2f}"
[[table.row]]
label = "{stream} | {method}"
files = "{stream}/{method}_seed*.json"
each = {stream = ["stream"], method = ["a", "b"]}

[[table]]
name = "area-bench"
label = ["check"]
[[table.column]]
header = "value"
path = "ratio"
fmt = "{:.2f}x"
[[table.column]]
header = "target"
path = "target"
default = "-"
[[table.row]]
label = "ratio"
files = "bench.json"
[[table.row]]
label = "max angle"
files = "bench.json"
cells = {value = {path = "deg", reduce = "max", fmt = "{:.1f}"}, target = {default = "< 5"}}
[[table.row]]
label = "both identical"
files = "bench.json"
cells = {value = {path = ["ok", "ops_ok"], fmt = "yesno"}}
''')
    return tmp / "res"


def test_record_spec_renders_means_std_and_overrides(tmp_path):
    root = _spec_root(tmp_path)
    acc = results.render_block("area-acc", root).splitlines()
    # mean and sample std of (50, 70) = 60.0 ± 14.1; of (90, 90) = 90.0 ± 0.0; mean time per task (1 + 3) / 2
    assert acc[2:4] == ["| stream | a | 2 | 60.0 ± 14.1 | 2.00 |", "| stream | b | 2 | 90.0 ± 0.0 | 2.00 |"]
    assert acc[-1].startswith("<sub>Generated by `spikeseq results table` from 4 record(s)")
    assert "spec `res/area/tables.toml`, table `area-acc`" in acc[-1]
    bench = results.render_block("area-bench", root).splitlines()
    assert bench[2:5] == ["| ratio | 2.35x | - |", "| max angle | 4.2 | < 5 |", "| both identical | yes | - |"]
    doc = tmp_path / "README.md"
    doc.write_text("<!-- results:area-bench -->\nold\n<!-- /results -->\n")
    assert results.update_readme(doc, root) == ["area-bench"] and results.check_readme(doc, root) == []


def test_record_spec_errors_name_the_problem(tmp_path):
    root = _spec_root(tmp_path)
    spec = root / "area" / "tables.toml"
    with pytest.raises(ConfigError, match=r"unknown results table 'nope'; known tables: lmu-har.*area-acc, area-bench"):
        results.render_block("nope", root)
    spec.write_text(spec.read_text().replace('files = "bench.json"', 'files = "missing.json"', 1))
    with pytest.raises(ConfigError, match=r"no file matches 'missing\.json'"):
        results.render_block("area-bench", root)
    spec.write_text(spec.read_text().replace('"missing.json"', '"bench.json"').replace('path = "ratio"', 'path = "x"'))
    with pytest.raises(ConfigError, match="no 'x' on the path 'x'; fix the path or give the column a 'default'"):
        results.render_block("area-bench", root)
    spec.write_text(spec.read_text().replace('agg = "mean_std"', 'agg = "one"'))
    with pytest.raises(ConfigError, match="column 'ACC \\(%\\)' reads one file but the row has 2"):
        results.render_block("area-acc", root)
    (root / "other").mkdir()
    (root / "other" / "tables.toml").write_text('[[table]]\nname = "area-acc"\n')
    with pytest.raises(ConfigError, match="results table 'area-acc' is defined twice"):
        results.render_block("area-acc", root)


def test_target_table_shows_float_target_mode_and_export_per_seed(tmp_path):
    """Runs trained for a target: float after the float epochs, target mode, the interpreter's accuracy on the
    verified samples and the lowest spike agreement; they stay out of the energy table."""
    def target(before, acc, graph, spikes):
        return {"target": "loihi", "float_before_acc": before, "target_acc": acc,
                "export": {"graph_accuracy": graph, "target_accuracy": graph, "samples": 100,
                           "spike_agreement": {"a": 1.0, "b": spikes}}}

    _art(tmp_path, 0, 0.94, label="M | D | Loihi", table="target", target=target(0.90, 0.94, 0.94, 1.0),
         energy_pj={"loihi": {"memory_on": 1.0, "memory_off": 1.0}})
    _art(tmp_path, 1, 0.92, label="M | D | Loihi", table="target", target=target(0.91, 0.92, 0.92, 0.5))
    rows = [line for line in results.render("target", results.load(tmp_path)).splitlines() if line.startswith("| M ")]
    assert rows == ["| M | D | Loihi | 2 | 90.5% (90.0, 91.0) | 93.0% (94.0, 92.0) | 93.0% (94.0, 92.0) "
                    "| 93.0% (94.0, 92.0) | 100 | 0.5000 | `spikeseq train` |"]
    with pytest.raises(ConfigError, match="no artifact under results/ names the table 'energy'"):
        results.render("energy", results.load(tmp_path))
