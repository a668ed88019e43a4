"""The non-spiking RWKV-4 saved for the `rwkv` package (0.8.x, CPU fp32) runs to the same logits there."""

from __future__ import annotations

import os

import pytest
import torch

from spikeseq.errors import ConfigError
from spikeseq.models.registry import build
from spikeseq.models.spikegpt.interop import save_rwkv_checkpoint


def _model(name):
    torch.manual_seed(0)
    m = build(name, n_layer=2, n_embd=16, vocab=23, ctx_len=64).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
            else:
                p.add_(torch.randn_like(p) * 0.1)
    return m


def test_rwkv_package_gives_the_same_logits(tmp_path, monkeypatch):
    monkeypatch.setenv("RWKV_JIT_ON", "0")
    monkeypatch.setenv("RWKV_CUDA_ON", "0")
    rwkv_model = pytest.importorskip("rwkv.model", reason="the rwkv package is not installed (Makefile PEERS)")
    m = _model("rwkv4")
    path = save_rwkv_checkpoint(m, tmp_path / "rwkv4_tiny.pth")
    theirs = rwkv_model.RWKV(model=str(path), strategy="cpu fp32", verbose=False)
    ids = torch.randint(0, 23, (40,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours, _ = m(ids[:, None])
        state, outs = None, []
        for t in ids.tolist():
            out, state = theirs.forward([t], state)
            outs.append(out.float())
    assert (ours[:, 0] - torch.stack(outs)).abs().max().item() <= 1e-4
    assert os.path.getsize(path) > 0


def test_spiking_checkpoint_refused(tmp_path):
    with pytest.raises(ConfigError, match="no outside runtime"):
        save_rwkv_checkpoint(_model("spikegpt"), tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists()
