"""Operation counts of SpikeGPT / RWKV-4 (hand-countable) and the export refusals."""

from __future__ import annotations

import pytest
import torch

from spikeseq.errors import ExportError
from spikeseq.graph import trace
from spikeseq.models.registry import build
from spikeseq.profile import count


@pytest.mark.parametrize("name", ["spikegpt", "rwkv4"])
def test_counts_per_token(name):
    m = build(name, n_layer=2, n_embd=8, vocab=11, ctx_len=16)
    T, B, C, L, V = 5, 3, 8, 2, 11
    ids = torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(0))
    rep = count(m, ids)
    tot = {k: sum(layer.total(k) for layer in rep.layers) for k in ("exp_ops", "div_ops", "dense_macs")}
    tokens = T * B
    assert tot["exp_ops"] == 4 * C * L * tokens  # the WKV step: 4 exponentials per channel per token
    assert tot["div_ops"] == 1 * C * L * tokens
    # dense synaptic ops: 13 C^2 per block per token (4 + 4 + 4 + 1) and the head C x V
    assert tot["dense_macs"] == (L * 13 * C * C + C * V) * tokens


def test_export_refuses_naming_wkv_and_layernorm():
    for name in ("spikegpt", "rwkv4"):
        m = build(name, size="tiny", vocab=11)
        with pytest.raises(ExportError, match=r"WKV.*LayerNorm"):
            trace(m, dt=1e-3)
