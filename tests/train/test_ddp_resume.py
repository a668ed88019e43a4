"""Two processes (torchrun, gloo) killed in the middle of an epoch and resumed end with bitwise the weights,
optimizer state and metrics of the uninterrupted two-process run (gradient accumulation and dropout included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from spikeseq.train import checkpoint
from spikeseq.train.rundir import RunDir

WORKER = Path(__file__).with_name("ddp_resume_worker.py")


def test_two_process_resume_is_bitwise(tmp_path, tiny_data, tiny_raw):
    # 90 samples, micro-batches of 16 (8 per rank), 2 per optimizer step: 3 steps per epoch, 2 epochs; last.pt every
    # 2 steps; killed at step 5 -> resumed from step 4 (epoch 1, micro-batch 2). Dropout draws from each rank's
    # own random stream, so resuming needs every rank's RNG state; the epoch's running sums must be counted once.
    raw = tiny_raw(tiny_data, epochs=2, accumulate=2, checkpoint_every=2)
    raw["data"].update(val_fraction=0.0, max_train=90)
    raw["model"] = {"name": "delay_snn", "n_inputs": 4, "n_outputs": 3, "n_hidden": 6, "n_layers": 1,
                    "max_delay": 2, "dropout": 0.3, "backend": "torch"}
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(raw))
    env = {**os.environ, "SPIKESEQ_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(WORKER), str(cfg_path), str(tmp_path), "5"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    full, killed = RunDir(tmp_path / "full"), RunDir(tmp_path / "killed")
    a, b = checkpoint.load(full.last), checkpoint.load(killed.last)
    assert a["position"] == b["position"] == {"epoch": 2, "batch": 0, "step": 6}
    assert a["world_size"] == b["world_size"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for key, st in a["optimizer"]["state"].items():
        for name, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["optimizer"]["state"][key][name])), (key, name)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "time_s"} for r in rs]  # noqa: E731
    assert strip(full.read_metrics()) == strip(killed.read_metrics())
    # the epoch's sums cover every sample once (a double-counted resume would report more than 90)
    assert [round(m["train_acc"] * 90) / 90 for m in killed.read_metrics()] == \
        [m["train_acc"] for m in killed.read_metrics()]
    # the two ranks' random streams differ, so restoring rank 0's state on both would have changed the run
    ranks = a["rng_ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])
