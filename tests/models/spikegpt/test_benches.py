"""Tiny versions of `spikeseq bench wkv` and `spikeseq bench generation` (the real runs are recorded under
results/spikegpt/), and the sampler of `spikeseq generate`."""

from __future__ import annotations

import json

import torch

from spikeseq.cli import main
from spikeseq.train.cmd_generate import sample


def test_bench_wkv_tiny(tmp_path, capsys):
    out = tmp_path / "wkv.json"
    assert main(["bench", "wkv", "--T", "24", "--B", "2", "--C", "8", "--reps", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["ms_fwd_bwd"]) == {"reference", "chunked", "chunked_compiled", "cpu", "projections"}
    r = res["ratios"]
    assert r["block_over_projections_cpu"] == (res["ms_fwd_bwd"]["projections"] + res["ms_fwd_bwd"]["cpu"]) / \
        res["ms_fwd_bwd"]["projections"]
    assert res["config"]["T"] == 24


def test_bench_wkv_refuses_a_size_below_one_naming_the_option(tmp_path, capsys):
    for opt in ("--reps", "--threads", "--compiled-chunk", "--T"):
        out = tmp_path / "wkv.json"
        assert main(["bench", "wkv", "--T", "8", "--B", "1", "--C", "8", opt, "0", "--json", str(out)]) == 2
        assert f"{opt} must be at least 1, got 0" in capsys.readouterr().err
        assert not out.exists()


def test_bench_generation_tiny(tmp_path):
    out = tmp_path / "gen.json"
    assert main(["bench", "generation", "--model", "rwkv4", "--size", "tiny", "--vocab", "20", "--tokens", "30",
                 "--speed-tokens", "10", "--block", "5", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["memory"]["state_bytes"] == 2 * 7 * 32 * 4  # 2 blocks x 7 state fields x C = 32 floats
    assert set(res["memory"]["rss_mb_at_tokens"]) == {"3", "15", "30"}
    if "rwkv_tokens_per_s" in res["speed"]:  # the rwkv package runs the same model to the same logits
        assert res["speed"]["max_abs_logit_diff_last_token_of_block"] <= 1e-4


def test_sampler_greedy_and_top_p():
    logits = torch.tensor([[0.0, 3.0, 1.0, -1.0]])
    g = torch.Generator().manual_seed(0)
    assert int(sample(logits, 0.0, 0.9, g)[0]) == 1  # greedy
    # top_p below the largest probability keeps only the argmax, whatever the seed
    p1 = float(torch.softmax(logits, -1)[0, 1])
    assert {int(sample(logits, 1.0, p1 * 0.99, torch.Generator().manual_seed(s))[0]) for s in range(20)} == {1}
    # at temperature 1 and top_p 1 every token can come out
    seen = {int(sample(logits, 1.0, 1.0, torch.Generator().manual_seed(s))[0]) for s in range(400)}
    assert seen == {0, 1, 2, 3}
