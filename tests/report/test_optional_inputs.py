"""A damaged optional input of `spikeseq report` (eval, profile, export or metrics file) does not stop the report:
its section is left out with a ReportInputWarning naming the file and the problem, and the report says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spikeseq.cli import main
from spikeseq.report.artefacts import ReportInputWarning
from tests.report.test_robustness import _lm_run, _mutate

PROFILE = {"samples": 2, "report": {"time_steps": 3, "layers": [], "totals_per_sample": {"eff_macs": 7.0}},
           "energy": {}}


def _export(run: Path, text: str) -> None:
    (run / "export").mkdir(exist_ok=True)
    (run / "export" / "nir.json").write_text(text)


# case -> (damage, file left out, what is wrong, sections that say so, command that restores it)
OPTIONAL = {
    "profile.json cut short": (lambda r: (r / "profile.json").write_text('{"samples": 2, "rep'), "profile.json",
                               r"profile\.json is corrupt \(expected a JSON object, got Unterminated string",
                               ["Operations and energy"], "spikeseq profile"),
    "profile without totals": (lambda r: (r / "profile.json").write_text(json.dumps(
        {"samples": 2, "report": {"time_steps": 3, "layers": []}, "energy": {}})), "profile.json",
        r"profile\.json: no 'report\.totals_per_sample'", ["Operations and energy"], "spikeseq profile"),
    "profile.md not UTF-8": (lambda r: ((r / "profile.json").write_text(json.dumps(PROFILE)),
                                        (r / "profile.md").write_bytes(b"\xff\xfe| a |\n")),
                             "profile.md", r"profile\.md is not UTF-8 text", ["Operations and energy"],
                             "spikeseq profile"),
    "export a list": (lambda r: _export(r, "[1, 2]"), "export/nir.json",
                      r"nir\.json is corrupt \(expected a JSON object, got a JSON list\)", ["Export verification"],
                      "--target nir"),
    "export value types": (lambda r: _export(r, json.dumps({"samples": "many"})), "export/nir.json",
                           r"nir\.json: 'samples' must be an integer, not str", ["Export verification"],
                           "--target nir"),
    "eval test not an object": (lambda r: _mutate(r, "eval.json", lambda d: d.update(test="oops")), "eval.json",
                                r"eval\.json: test must be a JSON object, not str",
                                ["Test evaluation", "Spikes"], "spikeseq eval"),
    "metrics line without keys": (lambda r: (r / "metrics.jsonl").write_text(
        (r / "metrics.jsonl").read_text() + '{"epoch": 2}\n'), "metrics.jsonl", r"metrics\.jsonl:2: no 'step'",
        ["Training"], "damaged line"),
}


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("case", list(OPTIONAL))
def test_damaged_optional_file_leaves_out_its_section_and_says_so(tmp_path, capsys, case):
    damage, rel, problem, sections, fix = OPTIONAL[case]
    run = _lm_run(tmp_path)
    damage(run)
    with pytest.warns(ReportInputWarning, match=rf"left out the damaged file {re.escape(rel)}: .*{problem}.*to "
                                                rf"restore it, .*{re.escape(fix)}"):
        assert main(["report", str(run)]) == 0
    md = (run / "report" / "report.md").read_text()
    html = (run / "report" / "index.html").read_text()
    for title in sections:
        assert re.search(rf"Left out: {re.escape(rel)} is damaged: .*{problem}", _section(md, title)), title
    assert f"| damaged inputs left out | {rel} |" in md
    assert "Left out: " in html and "damaged inputs left out" in html
    if rel != "eval.json":   # the sections of intact files are all there
        assert "| bits per character | 6.0724 |" in _section(md, "Test evaluation")
    assert '"name": "lm"' in _section(md, "Configuration")


def test_section_that_cannot_be_built_from_its_file_is_left_out(tmp_path):
    run = _lm_run(tmp_path)   # a raster event of three numbers passes the load-time check, not the plot
    _mutate(run, "eval.json", lambda d: d["spikes"].update(
        layers=[{"name": "l1", "neurons": 2, "steps": 3, "rate": 0.1, "spikes_per_sample": 0.6}],
        raster={"l1": {"neurons": 2, "steps": 3, "events": [[0, 1, 2]]}}))
    with pytest.warns(ReportInputWarning, match=r"the report section 'spikes' cannot be built from eval\.json "
                                                r"\(ValueError: .*\); the section is left out"):
        assert main(["report", str(run)]) == 0
    md = (run / "report" / "report.md").read_text()
    assert "Left out: the report section 'spikes' cannot be built" in _section(md, "Spikes")
    assert "| bits per character | 6.0724 |" in _section(md, "Test evaluation")
    assert not (run / "report" / "raster.png").exists() and (run / "report" / "training.png").exists()


def test_damaged_required_file_still_fails(tmp_path, capsys):
    run = _lm_run(tmp_path)
    (run / "config.json").write_text("[]")
    (run / "profile.json").write_text("{")
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "config.json is corrupt (expected a JSON object, got a JSON list)" in err
    assert not (run / "report").exists()
