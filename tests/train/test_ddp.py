"""Two CPU processes (torchrun, gloo) reach the same weights as one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import tomli_w
import torch

from spikeseq.train import checkpoint
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir


def test_two_processes_match_one(tmp_path, tiny_data, tiny_raw):
    # 90 samples, global batch 16: 6 steps, the last one with 10 samples (5 per rank). Summed float32 gradients
    # are reduced in a different order, hence a tolerance (measured difference about 3e-8) instead of equality.
    raw = tiny_raw(tiny_data, epochs=1, max_steps=6)
    raw["data"].update(val_fraction=0.0, max_train=90)
    cfg_path = tmp_path / "ddp.toml"
    cfg_path.write_text(tomli_w.dumps(raw))
    env = {**os.environ, "SPIKESEQ_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "spikeseq.cli", "train", str(cfg_path), "--out", str(tmp_path / "two"),
                           "--nproc", "2", "--no-eval"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    cfg = from_dict(raw)
    one = RunDir.prepare(tmp_path / "one", cfg)
    fit(cfg, one, quiet=True)

    a, b = checkpoint.load(one.last), checkpoint.load(tmp_path / "two" / "checkpoints" / "last.pt")
    assert a["position"] == b["position"] == {"epoch": 1, "batch": 0, "step": 6}
    assert b["world_size"] == 2 and a["world_size"] == 1
    init = None
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=1e-6, msg=k)
        if k.endswith("weight"):
            init = k
    assert init is not None
    # the two runs did train (the weights differ from a fresh model built with the same seed)
    checkpoint.seed_everything(cfg.train.seed)
    from spikeseq.train.loop import build_model
    fresh = build_model(cfg.model).state_dict()
    assert (fresh[init] - a["model"][init]).abs().max() > 1e-3
    meta = RunDir.open(tmp_path / "two").meta.read_text()
    assert '"status": "finished"' in meta and '"world_size": 2' in meta
