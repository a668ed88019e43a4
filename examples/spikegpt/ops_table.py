"""The operations table of trained SpikeGPT / RWKV-4 runs: MACs vs ACs, WKV exponentials and divisions, LayerNorm,
memory traffic, per token (RNN mode) and per 64-token sequence (parallel form), and energy per token on every
hardware table of spikeseq (memory terms on and off). Writes results/spikegpt/ops_<model>.json.

    python examples/spikegpt/ops_table.py runs/shakespeare_spikegpt runs/shakespeare_rwkv4

Counts come from ``spikeseq.profile.count`` on test windows (the same ops in both forms: the parallel form and the
RNN step compute the same products). Exponentials, divisions, comparisons and nonlinearities are counted but not
priced (no hardware table has a figure for them): the energies are lower bounds for the WKV part. SpikeGPT's
claims for comparison (specs/energy.md §4): v2/v3 "20x fewer operations", v5/TMLR "32.2x"; those count only the
spike-driven synaptic ops against a dense ANN's, not WKV, LayerNorm or memory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from spikeseq import hardware
from spikeseq.data import text_lm
from spikeseq.errors import ConfigError
from spikeseq.profile import count
from spikeseq.profile.energy import estimate
from spikeseq.train.runs import load_run

KEYS = ("dense_macs", "eff_macs", "eff_acs", "bias_adds", "state_mults", "state_adds", "state_cmps", "nonlin_ops",
        "exp_ops", "div_ops", "neuron_updates", "spikes_out", "mem_weight_reads", "mem_state_reads",
        "mem_state_writes", "mem_input_reads", "mem_output_writes")


def table(run: Path, n_windows: int = 8) -> dict:
    """Per-token and per-sequence counts, the split by layer type, and energies per token."""
    lr = load_run(run, "last")
    test = text_lm.tinyshakespeare(None, "test", seq_len=lr.model.config.ctx_len)
    x = test.x[:n_windows].t().contiguous()  # [T, B] ids
    T, B = x.shape
    rep = count(lr.model, x)
    tokens = T * B
    totals = {k: sum(layer.total(k) for layer in rep.layers) for k in KEYS}
    by_type: dict[str, dict[str, float]] = {}
    for layer in rep.layers:
        d = by_type.setdefault(layer.type if hasattr(layer, "type") else "?", {k: 0.0 for k in KEYS})
        for k in KEYS:
            d[k] += layer.total(k) / tokens
    energy = {}
    for name in hardware.available():
        for mem in (True, False):
            try:
                e = estimate(rep, name, memory=mem)
            except ConfigError as err:  # a table without figures (Loihi 2)
                energy[name] = {"pj_per_token": None, "notes": [str(err)]}
                break
            energy[f"{name}{'' if mem else '_no_memory'}"] = {"pj_per_token": e.total_pj * rep.n_samples / tokens,
                                                               "notes": list(e.notes)}
    per_token = {k: v / tokens for k, v in totals.items()}
    synaptic = per_token["eff_macs"] + per_token["eff_acs"]
    return {
        "run": str(run), "model": lr.cfg.model.name, "tokens_profiled": tokens, "window": T,
        "per_token": per_token, "per_sequence_of_window": {k: v * T for k, v in per_token.items()},
        "by_layer_type_per_token": by_type,
        "ac_fraction_of_synaptic_ops": per_token["eff_acs"] / synaptic if synaptic else None,
        "dense_over_effective_synaptic_ops": per_token["dense_macs"] / synaptic if synaptic else None,
        "energy_per_token": energy,
        "not_counted": rep.not_counted,
    }


def main(argv: list[str]) -> int:
    """Profile each run in ``argv`` and write its JSON."""
    torch.set_num_threads(1)
    out = Path("results/spikegpt")
    out.mkdir(parents=True, exist_ok=True)
    for r in argv:
        res = {"command": "python examples/spikegpt/ops_table.py " + " ".join(argv), **table(Path(r))}
        (out / f"ops_{res['model']}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
        pt = res["per_token"]
        print(f"{res['model']}: per token dense {pt['dense_macs']:.0f}, MAC {pt['eff_macs']:.0f}, "
              f"AC {pt['eff_acs']:.0f}, exp {pt['exp_ops']:.0f}, div {pt['div_ops']:.0f}, "
              f"AC share {res['ac_fraction_of_synaptic_ops']:.3f}, dense/effective "
              f"{res['dense_over_effective_synaptic_ops']:.2f}")
        for k, v in res["energy_per_token"].items():
            if v["pj_per_token"] is not None:
                print(f"  {k:26s} {v['pj_per_token'] / 1e3:10.1f} nJ/token")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
