"""``spikeseq results table [--check]`` and ``spikeseq results show``: exit codes and what they write."""

from __future__ import annotations

import json

from spikeseq.cli import main


def _results(tmp_path):
    path = tmp_path / "results" / "fam" / "r-s0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"table": "delays-temporal", "label": "learned", "seed": 0, "producer": "spikeseq train",
                                "metrics": {"test_acc": 0.9425, "eff_acs": 3036.0, "activation_sparsity": 0.858}}))
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- results:delays-temporal -->\n<!-- /results -->\n")
    return readme, tmp_path / "results"


def test_check_fails_when_stale_and_table_regenerates(tmp_path, capsys):
    readme, res = _results(tmp_path)
    assert main(["results", "table", "--check", "--readme", str(readme), "--results", str(res)]) == 1
    assert "delays-temporal differ" in capsys.readouterr().err
    assert main(["results", "table", "--readme", str(readme), "--results", str(res)]) == 0
    assert "| learned | 0 | 94.2% | 94.2 ± 0.0% | 3036 | 0.858 | `spikeseq train` |" in readme.read_text()
    assert main(["results", "table", "--check", "--readme", str(readme), "--results", str(res)]) == 0
    assert main(["results", "show", "delays-temporal", "--results", str(res)]) == 0
    assert "| learned |" in capsys.readouterr().out


def test_unknown_table_is_a_clear_error(tmp_path, capsys):
    _, res = _results(tmp_path)
    assert main(["results", "show", "nope", "--results", str(res)]) == 2
    err = capsys.readouterr().err
    assert "unknown results table 'nope'; known tables: lmu-har, delays-temporal, target, energy" in err
