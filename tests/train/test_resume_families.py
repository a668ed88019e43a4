"""Bitwise resume for every registered model (tiny configs) and for the native (C++) kernels: a run killed in the
middle of an epoch and resumed from its mid-epoch ``last.pt`` ends with exactly the weights, optimizer state and
metrics of an uninterrupted run."""

from __future__ import annotations

import os

import pytest
import torch

from spikeseq.models import registry
from spikeseq.train import checkpoint
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir

#: a tiny configuration of every registered model for [T, B, 4] inputs and 3 classes
TINY: dict[str, dict] = {
    "snn_mlp": {"n_in": 4, "n_out": 3, "hidden": 8, "tau_mem": 0.01, "backend": "torch"},
    "rsnn": {"n_in": 4, "n_out": 3, "hidden": 8, "backend": "torch"},
    "delay_snn": {"n_inputs": 4, "n_outputs": 3, "n_hidden": 6, "n_layers": 1, "max_delay": 2, "dropout": 0.2,
                  "backend": "torch"},
    "l2mu": {"input_size": 4, "n_classes": 3, "hidden_size": 8, "memory_size": 4, "order": 2, "theta": 4.0,
             "input_pop_size": 4},
    "lmuformer": {"input_size": 4, "n_classes": 3, "dim": 8, "order": 4, "theta": 8.0},
    "spiking_lmuformer": {"input_size": 4, "n_classes": 3, "dim": 8, "order": 4, "theta": 8.0},
    "gru_baseline": {"input_size": 4, "n_classes": 3, "hidden_size": 8},
    "lmu_baseline": {"input_size": 4, "n_classes": 3, "hidden_size": 8, "order": 4, "theta": 8.0, "n_u": 1},
    "egru_classifier": {"input_size": 4, "n_classes": 3, "hidden": 8, "backend": "torch"},
    "rnn_classifier": {"input_size": 4, "n_classes": 3, "hidden": 8},
}
#: a tiny configuration of every registered language model (characters of Tiny Shakespeare: vocabulary 65)
TINY_LM: dict[str, dict] = {
    "egru_lm": {"vocab": 65, "embed": 8, "hidden": 8, "backend": "torch"},
    "gru_lm": {"vocab": 65, "embed": 8, "hidden": 8},
    "lstm_lm": {"vocab": 65, "embed": 8, "hidden": 8},
}
#: the delay model also names parameter groups and uses training hooks: exercise them in the resumed run
TRAIN: dict[str, dict] = {
    "delay_snn": {"scheduler": "onecycle", "groups": {"delays": {"lr": 0.1, "scheduler": "cosine"}},
                  "readout": "softmax_sum"},
}


class Killed(Exception):
    pass


def test_every_registered_model_has_a_tiny_config():
    assert sorted(TINY | TINY_LM) == registry.names()


def _native_available() -> bool:
    from spikeseq.kernels import dispatch

    ok, why = dispatch.backends("lif_scan")["cpu"].available()
    if not ok and os.environ.get("SPIKESEQ_REQUIRE_NATIVE") == "1":
        pytest.fail(f"SPIKESEQ_REQUIRE_NATIVE=1 but the native kernels are unavailable: {why}")
    return ok


def _check_bitwise_resume(tmp_path, cfg, kill_at: int) -> None:
    full = RunDir.prepare(tmp_path / "full", cfg)
    done = fit(cfg, full, quiet=True)
    killed = RunDir.prepare(tmp_path / "killed", cfg)

    def kill(step: int) -> None:
        if step == kill_at:
            raise Killed

    with pytest.raises(Killed):
        fit(cfg, killed, on_step=kill, quiet=True)
    pos = checkpoint.load(killed.last)["position"]
    assert 0 < pos["batch"] and pos["step"] < kill_at  # the checkpoint resumed from is in the middle of an epoch
    assert fit(cfg, killed, resume=True, quiet=True)["step"] == done["step"]
    a, b = checkpoint.load(full.last), checkpoint.load(killed.last)
    assert a["position"] == b["position"]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for key, st in a["optimizer"]["state"].items():
        for name, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["optimizer"]["state"][key][name])), (key, name)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "time_s"} for r in rs]  # noqa: E731
    assert strip(full.read_metrics()) == strip(killed.read_metrics())
    assert len(full.read_metrics()) == cfg.train.epochs


@pytest.mark.parametrize("name", sorted(TINY))
def test_bitwise_resume_of_every_model(tmp_path, tiny_data, tiny_raw, name):
    # 96 training samples / batch 16 = 6 steps per epoch; last.pt every 4 steps: killed at step 5, the run resumes
    # from step 4 (epoch 0, batch 4); 2 epochs
    raw = tiny_raw(tiny_data, epochs=2, checkpoint_every=4, **TRAIN.get(name, {}))
    raw["model"] = {"name": name, **TINY[name]}
    raw["task"] = "classification"  # families solving several tasks list another one first (egru)
    _check_bitwise_resume(tmp_path, from_dict(raw), kill_at=5)


@pytest.mark.parametrize("name", sorted(TINY_LM))
def test_bitwise_resume_of_every_language_model(tmp_path, tiny_raw, name):
    from spikeseq.data.paths import data_root
    from tests.conftest import require_path

    require_path(data_root() / "text" / "tinyshakespeare" / "input.txt")
    raw = tiny_raw(tmp_path / "unused.pt", epochs=2, checkpoint_every=4)
    raw["task"] = "language_modelling"
    raw["model"] = {"name": name, **TINY_LM[name]}
    raw["data"] = {"name": "tinyshakespeare", "seq_len": 8, "max_chars": 2000, "val_fraction": 0.2,
                   "max_train": 120, "max_test": 16}
    _check_bitwise_resume(tmp_path, from_dict(raw), kill_at=5)


@pytest.mark.parametrize("model", ["snn_mlp", "rsnn"])
def test_bitwise_resume_native_backend_with_accumulation(tmp_path, tiny_data, tiny_raw, model):
    if not _native_available():
        pytest.skip("native kernels unavailable (no C++ compiler)")
    # 6 micro-batches of 16 per epoch, 2 per optimizer step: 3 steps per epoch; last.pt every 2 steps: killed at
    # step 3, resumed from step 2 (epoch 0, micro-batch 4)
    raw = tiny_raw(tiny_data, epochs=2, checkpoint_every=2, accumulate=2)
    raw["model"] = {"name": model, **TINY[model], "backend": "cpu"}
    _check_bitwise_resume(tmp_path, from_dict(raw), kill_at=3)
