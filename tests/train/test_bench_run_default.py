"""`spikeseq bench-run RUN` writes its record into the run directory unless --json names a file: a casual run never
overwrites a committed record under results/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeseq.cli import build_parser, main
from spikeseq.train import cmd_bench_run


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


TEXT = "to be or not to be that is the question\n" * 40


@pytest.mark.native
@pytest.mark.filterwarnings("ignore:.*input.txt has .* bytes, the manifest records")   # a tiny text, on purpose
def test_bench_run_without_json_writes_into_the_run(tmp_path, monkeypatch):
    base = tmp_path / "text" / "tinyshakespeare"
    base.mkdir(parents=True)
    (base / "input.txt").write_text(TEXT)
    recipe = tmp_path / "lm.toml"
    recipe.write_text(f"""name = "tiny"
task = "language_modelling"
[model]
name = "egru_lm"
vocab = {len(set(TEXT))}
embed = 8
hidden = 16
thr_mean = 0.1
[data]
name = "tinyshakespeare"
root = "{tmp_path}"
seq_len = 12
val_fraction = 0.1
[train]
epochs = 1
batch_size = 8
lr = 0.02
threads = 1
""")
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    monkeypatch.chdir(tmp_path)   # a results/ folder here would catch the old default
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    assert main(["bench-run", str(run), "--batch", "2", "--reps", "1"]) == 0
    record = json.loads((run / "bench_run.json").read_text())
    assert record["trained"]["input_shape"] == [12, 2, 8]
    assert not (tmp_path / "results").exists()
