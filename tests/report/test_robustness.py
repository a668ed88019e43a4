"""Damaged inputs of ``spikeseq report`` and ``spikeseq results table``: one spikeseq error naming the file and
what is wrong (exit 2), nothing written; README markers parsed strictly; a language-model run reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spikeseq.cli import main
from spikeseq.errors import ConfigError
from spikeseq.report import results
from spikeseq.report.build import write_report

# --- README markers -------------------------------------------------------------------------------------------------


def _artifact_root(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "fam" / "r-s0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"table": "delays-temporal", "label": "learned", "seed": 0, "producer": "spikeseq train",
                                "metrics": {"test_acc": 0.9425, "eff_acs": 3036.0, "activation_sparsity": 0.858}}))
    return tmp_path / "results"


BAD_READMES = {
    "unclosed": ("intro\n<!-- results:delays-temporal -->\nold table\n\nhand-written text\n"
                 "<!-- results:lmu-har -->\n<!-- /results -->\nmore text\n", "README.md:2: the block"),
    "unclosed at end": ("intro\n<!-- results:delays-temporal -->\nhand-written text\n",
                        "README.md:2: .*end of the file"),
    "stray close": ("intro\n<!-- /results -->\n<!-- results:delays-temporal -->\n<!-- /results -->\n",
                    "README.md:2: a <!-- /results --> marker without"),
    "duplicate": ("<!-- results:delays-temporal -->\n<!-- /results -->\ntext\n<!-- results:delays-temporal -->\n"
                  "<!-- /results -->\n", "README.md:4: the results block 'delays-temporal' appears twice"),
}


@pytest.mark.parametrize("case", list(BAD_READMES))
def test_damaged_markers_refuse_and_leave_the_readme_unchanged(tmp_path, capsys, case):
    text, msg = BAD_READMES[case]
    res = _artifact_root(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_bytes(text.encode())
    for check in ([], ["--check"]):
        assert main(["results", "table", *check, "--readme", str(readme), "--results", str(res)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert re.search(msg, err), err
        assert readme.read_bytes() == text.encode()


def test_markers_quoted_in_prose_are_not_blocks_and_good_blocks_regenerate(tmp_path):
    res = _artifact_root(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("tables between `<!-- results:NAME -->` markers\n<!-- results:delays-temporal -->\nold\n"
                      "<!-- /results -->\nkept text\n")
    assert results.update_readme(readme, res) == ["delays-temporal"]
    text = readme.read_text()
    assert text.startswith("tables between `<!-- results:NAME -->` markers\n<!-- results:delays-temporal -->\n| ")
    assert text.endswith("do not edit by hand.</sub>\n<!-- /results -->\nkept text\n")
    assert results.check_readme(readme, res) == []


def test_readme_without_blocks_is_an_error_not_nothing(tmp_path, capsys):
    res = _artifact_root(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("no blocks here\n")
    assert main(["results", "table", "--readme", str(readme), "--results", str(res)]) == 2
    assert "has no <!-- results:NAME -->" in capsys.readouterr().err
    assert readme.read_text() == "no blocks here\n"


# --- a language-model run and damaged run files ---------------------------------------------------------------------


def _lm_run(root: Path) -> Path:
    """A minimal run directory of a character language model (eval.json without a confusion matrix)."""
    run = root / "lm"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "finished", "seed": 0, "created": "now",
                                              "versions": {"torch": "2"}, "command": ["spikeseq", "train"]}))
    (run / "config.json").write_text(json.dumps({"name": "lm", "model": {"name": "egru_lm"},
                                                 "data": {"name": "tinyshakespeare"}}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "step": 2, "train_loss": 4.2, "train_acc": 0.01,
                                                   "val_loss": 4.21, "val_neg_bpc": -6.08, "lr": 2e-4,
                                                   "time_s": 0.03}) + "\n")
    (run / "eval.json").write_text(json.dumps({
        "checkpoint": "best", "epoch": 0, "step": 2, "best_val": {"metric": -6.08, "loss": 4.21, "epoch": 1},
        "classes": ["a", "b"], "data": {"n_train": 95, "n_val": 5, "n_test": 11, "n_classes": 2},
        "test": {"n": 11, "tokens": 1100, "loss": 4.2091, "bpc": 6.0724, "neg_bpc": -6.0724, "perplexity": 67.296,
                 "acc": 0.0087},
        "spikes": {"samples": 4, "layers": [], "raster": {}}, "model": {"name": "egru_lm", "parameters": 2889}}))
    return run


def test_report_of_a_language_model_run(tmp_path, capsys):
    run = _lm_run(tmp_path)
    assert main(["report", str(run)]) == 0
    md = (run / "report" / "report.md").read_text()
    assert "| bits per character | 6.0724 |" in md
    assert "| perplexity | 67.2960 |" in md
    assert "confusion" not in md
    assert not (run / "report" / "confusion.png").exists()


def _mutate(run: Path, name: str, fn) -> None:
    path = run / name
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


# damaged required files (run.json, config.json); damaged optional ones: tests/report/test_optional_inputs.py
DAMAGE = {
    "versions a list": (lambda r: _mutate(r, "run.json", lambda d: d.update(versions=[1, 2])),
                        r"run\.json: 'versions' must be an object"),
    "run.json a directory": (lambda r: ((r / "run.json").unlink(), (r / "run.json").mkdir()),
                             r"run\.json is a directory"),
    "config.json corrupt": (lambda r: (r / "config.json").write_text('{"name": "lm", "mod'),
                            r"config\.json is corrupt \(expected a JSON object"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_run_files_are_one_line_errors(tmp_path, capsys, case):
    damage, msg = DAMAGE[case]
    run = _lm_run(tmp_path)
    damage(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(msg, err), err
    assert not (run / "report").exists()


@pytest.mark.parametrize("blocker", ["index.html", "report.md", "training.png"])
def test_output_path_that_is_a_directory_writes_nothing(tmp_path, capsys, blocker):
    run = _lm_run(tmp_path)
    out = tmp_path / "out"
    (out / blocker).mkdir(parents=True)
    assert main(["report", str(run), "--out", str(out)]) == 2
    assert f"{out / blocker} exists and is not a file" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [blocker]
    with pytest.raises(Exception, match="Nothing was written"):
        write_report(run, out)


# --- malformed tables.toml specs and records ------------------------------------------------------------------------

GOOD_COLUMN = 'header = "acc"\npath = "metrics.acc"\nfmt = "{:.3f}"'
GOOD_ROW = 'label = "a"\nfiles = "a.json"'


def _spec(tmp_path: Path, column: str = GOOD_COLUMN, row: str = GOOD_ROW, head: str = "[[table]]",
          record: bytes | None = None) -> Path:
    area = tmp_path / "res" / "area"
    area.mkdir(parents=True)
    (area / "a.json").write_bytes(record if record is not None else
                                  json.dumps({"command": "c", "metrics": {"acc": 0.5, "n": 3}}).encode())
    (area / "tables.toml").write_text(f'{head}\nname = "t"\nlabel = ["method"]\n[[table.column]]\n{column}\n'
                                      f"[[table.row]]\n{row}\n")
    return tmp_path / "res"


SPEC_CASES = {
    "unclosed brace": ({"column": 'header = "acc"\npath = "metrics.acc"\nfmt = "{:.3f"'},
                       r"table 't', row 'a', column 'acc': fmt '\{:\.3f'"),
    "named field": ({"column": 'header = "acc"\npath = "metrics.acc"\nfmt = "{x}"'},
                    r"column 'acc': fmt '\{x\}' cannot format"),
    "int format of a float": ({"column": 'header = "acc"\npath = "metrics.acc"\nfmt = "{:d}"'},
                              r"column 'acc': fmt '\{:d\}' cannot format the value 0\.5"),
    "fmt a number": ({"column": 'header = "acc"\npath = "metrics.acc"\nfmt = 3'},
                     r"column 'acc': 'fmt' must be a format string"),
    "row without files": ({"row": 'label = "a"'}, r"row 'a': needs 'files'"),
    "unknown var in files": ({"row": 'label = "a"\nfiles = "{nope}.json"'},
                             r"row 'a': files '\{nope\}\.json' uses \{nope\}"),
    "[table] not [[table]]": ({"head": "[table]"}, r"write \[\[table\]\]"),
    "record not UTF-8": ({"record": b'{"command": "c", "metrics": {"acc": "\xff"}}'}, r"a\.json: corrupt JSON"),
    "string metric": ({"record": json.dumps({"command": "c", "metrics": {"acc": "high"}}).encode()},
                      r"column 'acc': fmt '\{:\.3f\}' cannot format the value 'high'"),
    # an absolute path raised a raw ValueError from Path.relative_to; a misspelt table key was ignored
    "absolute files": ({"row": 'label = "a"\nfiles = "/etc/hostname"'}, r"files '/etc/hostname' is an absolute path"),
    "unknown table key": ({"head": '[[table]]\ncolour = "red"'}, r"unknown table key\(s\) colour"),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_malformed_specs_and_records_are_config_errors(tmp_path, case):
    kwargs, msg = SPEC_CASES[case]
    root = _spec(tmp_path, **kwargs)
    with pytest.raises(ConfigError, match=msg) as e:
        results.render_block("t", root)
    if case not in ("record not UTF-8",):
        assert "tables.toml" in str(e.value)


def test_missing_readme_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"README not found: .*nope\.md; run from the repository root"):
        results.check_readme(tmp_path / "nope.md", tmp_path)


def test_a_good_spec_still_renders(tmp_path):
    assert "| a | 0.500 |" in results.render_block("t", _spec(tmp_path))


ARTIFACT_CASES = {
    "metric a string": ({"metrics": {"test_acc": "0.9"}}, r"column 'test acc per seed'.*a-s0\.json"),
    "metrics a list": ({"metrics": []}, r"a-s0\.json: 'metrics' must be an object"),
    "label an int": ({"label": 3}, r"a-s0\.json: 'label' must be a string"),
}


@pytest.mark.parametrize("case", list(ARTIFACT_CASES))
def test_artifacts_of_the_wrong_types_are_config_errors(tmp_path, case):
    over, msg = ARTIFACT_CASES[case]
    (tmp_path / "fam").mkdir()
    art = {"table": "delays-temporal", "label": "learned", "seed": 0, "producer": "spikeseq train",
           "metrics": {"test_acc": 0.9}, **over}
    (tmp_path / "fam" / "a-s0.json").write_text(json.dumps(art))
    with pytest.raises(ConfigError, match=msg):
        results.render("delays-temporal", results.load(tmp_path))
