"""`spikeseq bench-run RUN` writes its record into the run directory unless --json names a file: a casual run never
overwrites a committed record under results/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeseq.cli import build_parser, main
from spikeseq.train import cmd_bench_run
from tests.train._tiny_lm import train_tiny_egru_lm


def _args(*argv: str):
    return build_parser("bench-run").parse_args(["bench-run", *argv])


def test_default_record_goes_to_the_run_directory_not_results():
    args = _args("runs/egru")
    assert args.json is None
    out = cmd_bench_run.record_path(args)
    assert out == Path("runs/egru/bench_run.json")
    assert "results" not in out.parts


def test_default_for_a_run_inside_the_repository_is_still_not_results(tmp_path):
    out = cmd_bench_run.record_path(_args(str(tmp_path / "run")))
    assert out == tmp_path / "run" / "bench_run.json" and "results" not in out.relative_to(tmp_path).parts


def test_json_names_the_record_explicitly():
    args = _args("runs/egru", "--json", "results/egru/bench_trained.json")
    assert cmd_bench_run.record_path(args) == Path("results/egru/bench_trained.json")


def test_help_states_the_default(capsys):
    try:
        build_parser("bench-run").parse_args(["bench-run", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert "default: RUN/bench_run.json" in text and "only when named here" in text


@pytest.mark.native
@pytest.mark.filterwarnings("ignore:.*input.txt has .* bytes, the manifest records")   # a tiny text, on purpose
def test_bench_run_without_json_writes_into_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    monkeypatch.chdir(tmp_path)   # a results/ folder here would catch the old default
    run = train_tiny_egru_lm(tmp_path, hidden=16, seq_len=12)
    assert main(["bench-run", str(run), "--batch", "2", "--reps", "1"]) == 0
    record = json.loads((run / "bench_run.json").read_text())
    assert record["trained"]["input_shape"] == [12, 2, 8]
    assert not (tmp_path / "results").exists()
