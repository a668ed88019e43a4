"""Probe of the command line and of run directories (session 13): each case raised a raw traceback, gave a message
that did not say how to go on, wasted minutes before refusing, or exited 0 on doing nothing. Every test asserts the
exit status, the message and what is left on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spikeseq.cli import main
from spikeseq.errors import ConfigError
from tests.faults.conftest import tree_digest, write_tiny_config


@pytest.fixture(scope="module")
def _trained(tmp_path_factory) -> Path:
    """A finished tiny run (eval.json, both checkpoints) of the faults suite's tensor-file config."""
    folder = tmp_path_factory.mktemp("probe_s13")
    cfg = write_tiny_config(folder, epochs=1)
    mp = pytest.MonkeyPatch()
    mp.setenv("SPIKESEQ_PROGRESS", "0")
    try:
        assert main(["train", str(cfg), "--out", str(folder / "run")]) == 0
    finally:
        mp.undo()
    return folder / "run"


@pytest.fixture
def run_dir(_trained: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the finished run for a test to damage."""
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    return Path(shutil.copytree(_trained, tmp_path / "run"))


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --- eval / export on damaged run directories -----------------------------------------------------------------------

@pytest.mark.parametrize("content", ['{"model": ', "", "[1, 2]"])
def test_damaged_config_json_says_how_to_recover(run_dir: Path, content: str, capsys):
    """Was: "config.json: corrupt JSON (...)" and nothing about what to do."""
    (run_dir / "config.json").write_text(content)
    before = tree_digest(run_dir)
    assert main(["eval", str(run_dir)]) == 2
    err = _one_line_error(capsys)
    assert "config.json" in err and "config.toml holds the same config" in err
    assert f"spikeseq train {run_dir / 'config.toml'} --out {run_dir} --force" in err
    assert tree_digest(run_dir) == before


def test_the_retrain_command_the_message_gives_works(run_dir: Path, capsys):
    (run_dir / "config.json").write_text("{")
    assert main(["train", str(run_dir / "config.toml"), "--out", str(run_dir), "--force", "--no-eval"]) == 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert json.loads((run_dir / "config.json").read_text())["model"]["name"] == "snn_mlp"


def test_finished_run_without_any_checkpoint_is_not_asked_to_finish_an_epoch(run_dir: Path, capsys):
    """Was: "checkpoint not found: ...best.pt; has the run finished an epoch yet?" for a finished run."""
    for p in (run_dir / "checkpoints").glob("*.pt"):
        p.unlink()
    assert main(["eval", str(run_dir)]) == 2
    err = _one_line_error(capsys)
    assert "finished an epoch" not in err
    assert "best.pt and checkpoints/last.pt are both missing" in err and "--force" in err


def test_truncated_checkpoint_names_the_option_that_uses_the_other(run_dir: Path, capsys):
    best = run_dir / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:1000])
    assert main(["eval", str(run_dir), "--checkpoint", "best"]) == 2
    err = _one_line_error(capsys)
    assert "unreadable" in err and "pass --checkpoint last" in err
    assert main(["eval", str(run_dir), "--checkpoint", "last"]) == 0   # and that advice works


def test_export_without_a_time_step_says_where_to_put_one(run_dir: Path, monkeypatch, capsys):
    """Was: "set [export] dt (seconds) in the config", with no run-level way named (export has no --set)."""
    import spikeseq.train.runs as runs

    monkeypatch.setattr(runs, "model_dt", lambda model: None)  # a model none of whose modules stores dt
    assert main(["export", str(run_dir), "--target", "nir"]) == 2
    err = _one_line_error(capsys)
    assert "--set export.dt=SECONDS" in err and str(run_dir / "config.json") in err
    assert not (run_dir / "export").exists()  # nothing written


# --- bench-run ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content,got", [("{}", 'no "checkpoint"'), ("[1]", "a JSON list"),
                                         ('{"checkpoint": 3}', '"checkpoint": 3')])
def test_bench_run_eval_json_without_the_checkpoint_is_a_config_error(run_dir: Path, content: str, got: str):
    """Was: KeyError / TypeError traceback from read_json(eval.json)["checkpoint"]."""
    from spikeseq.train.cmd_bench_run import trained_stack

    (run_dir / "eval.json").write_text(content)
    with pytest.raises(ConfigError) as e:
        trained_stack(run_dir, 2)
    assert "eval.json does not name the evaluated checkpoint" in str(e.value) and got in str(e.value)
    assert f"spikeseq eval {run_dir}" in str(e.value)


def _no_timing(monkeypatch):
    import spikeseq.train.cmd_bench_run as br

    def boom(*a, **k):
        raise AssertionError("the output path must be judged before the run is loaded and timed")

    monkeypatch.setattr(br, "trained_stack", boom)
    monkeypatch.setattr(br, "time_interleaved", boom)
    monkeypatch.setattr(br.cpu, "available", lambda: (True, ""))


def test_bench_run_unwritable_json_is_refused_before_the_timing(run_dir: Path, tmp_path: Path, monkeypatch, capsys):
    """Was: minutes of timing, then "cannot write ..." and no record."""
    _no_timing(monkeypatch)
    blocker = tmp_path / "afile"
    blocker.write_text("")
    assert main(["bench-run", str(run_dir), "--json", str(blocker / "r.json")]) == 2
    assert "afile is a file, not a directory" in _one_line_error(capsys)
    (tmp_path / "adir").mkdir()
    assert main(["bench-run", str(run_dir), "--json", str(tmp_path / "adir")]) == 2
    assert "it is a directory" in _one_line_error(capsys)
    assert main(["bench-run", str(run_dir), "--json", "/proc/spikeseq-probe/r.json"]) == 2
    assert "cannot" in _one_line_error(capsys)
    assert list((tmp_path / "adir").iterdir()) == [] and not (run_dir / "bench_run.json").exists()


def test_bench_run_missing_run_is_not_created_by_the_output_check(tmp_path: Path, monkeypatch, capsys):
    import spikeseq.train.cmd_bench_run as br

    monkeypatch.setattr(br.cpu, "available", lambda: (True, ""))
    assert main(["bench-run", str(tmp_path / "nothere")]) == 2
    assert "no eval.json" in _one_line_error(capsys)
    assert not (tmp_path / "nothere").exists()


# --- bench ----------------------------------------------------------------------------------------------------------

def test_bench_sizes_beyond_memory_are_a_parameter_error(capsys):
    """Was: numpy's _ArrayMemoryError traceback (71 PiB)."""
    assert main(["bench", "interp", "--inputs", "100000000", "--outputs", "100000000", "--steps", "2",
                 "--repeats", "1"]) == 2
    err = _one_line_error(capsys)
    assert "need more memory than this machine has" in err and "--inputs 100000000" in err
    assert "choose smaller sizes" in err


def test_bench_torch_allocator_failure_is_translated_and_other_errors_are_not(monkeypatch, capsys):
    import spikeseq.bench.interp as interp

    def oom(args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 2800000000000000 bytes")

    monkeypatch.setattr(interp, "run", oom)
    assert main(["bench", "interp", "--steps", "7"]) == 2
    assert "need more memory" in _one_line_error(capsys)

    def bug(args):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(interp, "run", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):   # a real bug keeps its traceback
        main(["bench", "interp"])


@pytest.mark.parametrize("argv,needle", [
    (["--settings", ","], "names no setting"),
    (["--settings", " "], "names no setting"),
    (["--settings", "medium", "--quick"], "--quick runs only the tiny 'quick' setting"),
])
def test_bench_sim_settings_that_run_nothing_or_are_ignored_are_refused(tmp_path: Path, argv, needle, capsys):
    """Was: exit 0 and a record with "settings": [] (empty list), or --settings silently ignored under --quick."""
    out = tmp_path / "sim.json"
    assert main(["bench", "sim", *argv, "--json", str(out)]) == 2
    assert needle in _one_line_error(capsys)
    assert not out.exists()


# --- results table --------------------------------------------------------------------------------------------------

def test_results_table_with_an_empty_spec_names_the_spec(tmp_path: Path, capsys):
    """Was: "unknown results table 'x'" (the spec file emptied was not named)."""
    root = tmp_path / "results"
    (root / "area").mkdir(parents=True)
    (root / "area" / "tables.toml").write_text("# all tables lost\n")
    readme = tmp_path / "README.md"
    text = "# r\n\n<!-- results:area-acc -->\nold\n<!-- /results -->\n"
    readme.write_text(text)
    assert main(["results", "table", "--readme", str(readme), "--results", str(root)]) == 2
    err = _one_line_error(capsys)
    assert f"{root / 'area' / 'tables.toml'} defines no table" in err and "git checkout" in err
    assert readme.read_text() == text


# --- demo -----------------------------------------------------------------------------------------------------------

def test_demo_refuses_a_bad_out_before_loading_data(tmp_path: Path, monkeypatch, capsys):
    """Was: data loaded first (seconds), then refused; a run.json that is a JSON list gave an AttributeError
    traceback."""
    import spikeseq.train.cmd_demo as demo

    def boom(*a, **k):
        raise AssertionError("--out must be judged before the data is loaded")

    monkeypatch.setattr(demo, "_pick_data", boom)
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["demo", "--out", str(afile)]) == 2
    assert "is a file, not a directory" in _one_line_error(capsys)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("keep")
    assert main(["demo", "--out", str(other)]) == 2
    assert "non-empty directory that is not a spikeseq run" in _one_line_error(capsys)
    listed = tmp_path / "listed"
    listed.mkdir()
    (listed / "run.json").write_text("[]")
    assert main(["demo", "--out", str(listed)]) == 2
    assert "run.json is corrupt" in _one_line_error(capsys)
    assert (other / "x").read_text() == "keep" and (listed / "run.json").read_text() == "[]"


# --- train: where the run and its artifact go ----------------------------------------------------------------------

def test_train_out_in_a_folder_that_takes_no_new_folders(tmp_path: Path, monkeypatch, capsys):
    """Was: "[Errno 2] No such file or directory: '/proc/.spk.18713bde.tmp'" (a temporary name, no fix)."""
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    cfg = write_tiny_config(tmp_path, epochs=1)
    assert main(["train", str(cfg), "--out", "/proc/spikeseq-probe-run"]) == 2
    err = _one_line_error(capsys)
    assert "cannot create the run directory /proc/spikeseq-probe-run" in err and "writable folder" in err
    assert ".tmp" not in err


def test_train_results_dir_that_is_a_file_is_refused_before_training(tmp_path: Path, monkeypatch, capsys):
    """Was: the whole training ran, then "cannot create the folder .../afile/<family>" and no artifact."""
    import tomllib

    import tomli_w

    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    cfg = write_tiny_config(tmp_path, epochs=1)
    raw = tomllib.loads(cfg.read_text())
    raw["results"] = {"table": "probe", "label": "tiny"}
    cfg.write_text(tomli_w.dumps(raw))
    blocker = tmp_path / "afile"
    blocker.write_text("")
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--results-dir", str(blocker / "sub")]) == 2
    err = _one_line_error(capsys)
    assert f"--results-dir {blocker / 'sub'}: {blocker} is a file, not a directory" in err
    assert not out.exists() and blocker.read_text() == ""
    # --no-eval writes no artifact, so the same --results-dir is no reason to refuse
    assert main(["train", str(cfg), "--out", str(out), "--results-dir", str(blocker), "--no-eval"]) == 0


def test_two_trainings_into_one_new_out_the_second_is_refused_cleanly(tmp_path: Path, monkeypatch, capsys):
    """Another command fills --out between the checks and the rename (simulated through os.replace): a
    ConfigError, not "[Errno 39] Directory not empty: '.run.x.tmp' -> 'run'", and no staging folder is left."""
    import os

    import spikeseq.train.rundir as rundir

    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    cfg = write_tiny_config(tmp_path, epochs=1)
    out = tmp_path / "run"
    real = os.replace

    def racing(src, dst):
        if Path(dst) == out.absolute():
            out.mkdir(exist_ok=True)
            (out / "run.json").write_text('{"status": "running"}')   # the other command's run
        return real(src, dst)

    monkeypatch.setattr(rundir.os, "replace", racing)
    assert main(["train", str(cfg), "--out", str(out), "--no-eval"]) == 2
    err = _one_line_error(capsys)
    assert "was filled by another command" in err and "choose another --out" in err
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]            # the other run is untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]  # no staging folder left


# --- report ---------------------------------------------------------------------------------------------------------

def test_report_names_a_damaged_metrics_line_inside_the_file(run_dir: Path):
    """Was: a damaged line anywhere in metrics.jsonl was skipped without a word (only the last line can be cut off
    by a kill), so the training curves silently missed an epoch."""
    from spikeseq.report.artefacts import ReportInputWarning, load

    good = (run_dir / "metrics.jsonl").read_text().splitlines()[0]
    (run_dir / "metrics.jsonl").write_text(f"{good}\nnot json{{\n{good}\n")
    with pytest.warns(ReportInputWarning, match=r"left out line 2 of .*metrics\.jsonl: not JSON"):
        arts = load(run_dir)
    assert len(arts.metrics) == 2
    (run_dir / "metrics.jsonl").write_text(f"{good}\n{good[:10]}\n")   # cut off by a kill: skipped quietly
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ReportInputWarning)
        assert len(load(run_dir).metrics) == 1


# --- generate -------------------------------------------------------------------------------------------------------

def test_generate_refuses_an_infinite_temperature():
    """Was: --temperature inf sampled uniformly (logits / inf = 0), ignoring the model, with exit 0."""
    from spikeseq.train.cmd_generate import stream

    def step(ids, state):
        raise AssertionError("nothing may be fed before the arguments are checked")

    with pytest.raises(ConfigError, match="finite temperature >= 0, got inf"):
        stream(step, [1], 3, temperature=float("inf"))
    import torch

    two = list(stream(lambda ids, s: (torch.tensor([[0.0, 5.0]]), s), [0], 2, temperature=1e6, top_p=1.0, seed=0))
    assert len(two) == 2 and set(two) <= {0, 1}   # large finite temperatures stay allowed


def test_export_says_when_it_verifies_on_fewer_samples_than_asked(run_dir: Path, capsys):
    """Was: --samples 100000000 verified on the whole (small) test split without a word."""
    assert main(["export", str(run_dir), "--target", "nir", "--samples", "100000000"]) == 0
    n = json.loads((run_dir / "export" / "nir.json").read_text())["samples"]
    err = capsys.readouterr().err
    assert f"test split has {n} samples; verifying on all {n}, not the 100000000 asked for" in err
    assert main(["export", str(run_dir), "--target", "nir", "--samples", str(n)]) == 0
    assert "asked for" not in capsys.readouterr().err
