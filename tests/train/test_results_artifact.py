"""``spikeseq train RECIPE --seed S`` of a recipe with ``[results]`` writes ``results/<family>/<recipe>-s<S>.json``:
provenance, and accuracy and op counts of one trained model (the checkpoint the accuracy is reported for)."""

from __future__ import annotations

import json
import os
import sys

import pytest
import tomli_w

from spikeseq import profile
from spikeseq.errors import ConfigError
from spikeseq.train.results import config_hash, record
from spikeseq.train.runs import load_run, sample_inputs


def test_train_with_results_writes_the_artifact_of_one_run(tmp_path, tiny_data, tiny_raw, monkeypatch, capsys):
    from spikeseq.cli import main

    raw = tiny_raw(tiny_data, epochs=2, eval_checkpoint="last")
    raw["results"] = {"table": "lmu-har", "label": "tiny MLP | tiny data", "profile_samples": 8}
    recipe = tmp_path / "examples" / "lifnet" / "tiny_recipe.toml"
    recipe.parent.mkdir(parents=True)
    recipe.write_text(tomli_w.dumps(raw))
    monkeypatch.setenv("SPIKESEQ_PROGRESS", "0")
    argv = ["train", str(recipe), "--seed", "3", "--out", str(tmp_path / "run3"), "--results-dir",
            str(tmp_path / "results")]
    monkeypatch.setattr(sys, "argv", ["spikeseq", *argv])
    assert main(argv) == 0
    path = tmp_path / "results" / "lifnet" / "tiny_recipe-s3.json"
    assert f"result artifact: {path}" in capsys.readouterr().err
    art = json.loads(path.read_text())
    assert art["seed"] == 3 and art["config"]["train"]["seed"] == 3 and art["family"] == "lifnet"
    assert art["command"][:5] == ["spikeseq", "train", str(recipe), "--seed", "3"]
    other_seed = json.loads(json.dumps(art["config"]))
    other_seed["train"]["seed"] = 4
    assert art["config_hash"] == config_hash(art["config"]) == config_hash(other_seed)  # seeds share the hash
    other_seed["train"]["lr"] = 0.5
    assert config_hash(other_seed) != art["config_hash"]
    assert art["git"]["commit"] and art["versions"]["torch"] and art["machine"]["threads"] == 1
    assert art["machine"]["cores"] == os.cpu_count() and art["machine"]["cpu"]
    assert len(art["time"]["epoch_s"]) == 2 and art["time"]["train_s"] > 0
    # accuracy: the test evaluation of the last checkpoint, written by the same command
    ev = json.loads((tmp_path / "run3" / "eval.json").read_text())
    m = art["metrics"]
    assert ev["checkpoint"] == m["checkpoint"] == "last" and m["test_acc"] == ev["test"]["acc"]
    assert m["test_n"] == 40 and m["params"] == ev["model"]["parameters"]
    # op counts: the profiler on the same weights and the same seeded test samples
    lr = load_run(tmp_path / "run3", "last")
    x, _ = sample_inputs(lr.data(), 8, lr.cfg.train.seed)
    tot = profile.count(lr.model, x).totals()
    assert m["profile_samples"] == 8
    for key in ("dense_macs", "eff_macs", "eff_acs", "spikes_out"):
        assert m[key] == tot[key], key
    assert m["activation_sparsity"] == 1.0 - tot["out_nonzero"] / tot["out_elements"]
    assert m["eff_acs"] > 0 and set(m["energy_pj"]) >= {"loihi", "horowitz45nm"}


def test_record_refuses_runs_without_results_section_or_unfinished(tmp_path, tiny_data, tiny_raw):
    from spikeseq.train.config import from_dict
    from spikeseq.train.loop import fit
    from spikeseq.train.rundir import RunDir

    cfg = from_dict(tiny_raw(tiny_data, epochs=1))
    run = RunDir.prepare(tmp_path / "r", cfg, argv=["spikeseq", "train", "x.toml"])
    fit(cfg, run, quiet=True)
    with pytest.raises(ConfigError, match=r"has no \[results\] table"):
        record(run.path, out_root=tmp_path / "res")
    raw = tiny_raw(tiny_data, epochs=1)
    raw["results"] = {"table": "lmu-har", "label": "a | b"}
    cfg = from_dict(raw)
    run = RunDir.prepare(tmp_path / "r2", cfg, argv=["spikeseq", "train", "x.toml"])
    fit(cfg, run, quiet=True)
    run.set_status("running")  # as after a kill (fit itself records "finished")
    with pytest.raises(ConfigError, match="status is 'running'; only a finished run is recorded"):
        record(run.path, out_root=tmp_path / "res")
