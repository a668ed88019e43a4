"""SpiNNaker2-style export of the pruned EGRU language model, verified by the interpreter, with its energy estimate.

    python examples/egru/spinnaker2_export.py --run RUN [--checkpoint last] [--windows N] \
        [--out results/egru/spinnaker2_export.json]

``RUN`` comes from ``spikeseq train examples/egru/lm_tinyshakespeare_pruned.toml``. On the Tiny Shakespeare test
windows (the last 10% of the text) it traces the model (:mod:`spikeseq.models.egru.lower`: one-hot tokens ->
EGRUCell -> Affine readout), writes the SpiNNaker2-style description (``RUN/export/spinnaker2/network.json``: CSR rows
of the pruned int8 weights, payload format, PE mapping), and compares:

- the float interpreter (float64) with the torch model (float32): largest |logit difference| and BPC of both;
- SpiNNaker2 fixed point (int8 per-gate weights, float32 gate maths) with float32 payloads and with int8 payloads
  ``round(y * 2**7)``: BPC and its change against the torch model;
- energy per token on SpiNNaker2 against a GPU (:mod:`spikeseq.models.egru.energy`, assumptions stated there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

from spikeseq.export.spinnaker2 import write_spinnaker2
from spikeseq.graph import quantize, trace
from spikeseq.graph.simulate import simulate
from spikeseq.models import registry
from spikeseq.models.egru.energy import energy_per_token, token_counts
from spikeseq.models.egru.lower import one_hot
from spikeseq.train import checkpoint
from spikeseq.train.config import load_config
from spikeseq.train.datasets import prepare, time_first
from spikeseq.train.rundir import write_json


def bpc(logits: np.ndarray, y: np.ndarray) -> float:
    """Bits per character of logits ``[T, B, V]`` against next tokens ``[T, B]`` (float64 log-softmax)."""
    z = logits.astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-np.take_along_axis(logp, y[..., None], -1).mean() / math.log(2))


def main(argv: list[str] | None = None) -> int:
    """Run the export and the measurements; write the JSON record."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--checkpoint", default="last", choices=("best", "last"))
    ap.add_argument("--windows", type=int, default=None, help="test windows (default: all)")
    ap.add_argument("--frac-bits", type=int, default=7, help="int8 payload fractional bits (y < 1: 7)")
    ap.add_argument("--out", type=Path, default=Path("results/egru/spinnaker2_export.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(a.run / "config.toml")
    model = registry.build(cfg.model.name, **cfg.model.kwargs)
    model.load_state_dict(checkpoint.load(a.run / "checkpoints" / f"{a.checkpoint}.pt", map_location="cpu")["model"])
    model.eval()
    data = prepare(cfg.data, cfg.train.seed)
    n = len(data.test) if a.windows is None else min(a.windows, len(data.test))
    x = time_first(data.test.x[:n])                      # [T, B] token ids
    y = time_first(data.test.y[:n]).numpy()              # [T, B] next tokens
    with torch.no_grad():
        ref = model(x)[0].numpy()
    vocab = model.vocab
    g = trace(model, dt=1e-3, input_shape=(vocab,))
    xs = one_hot(x.numpy(), vocab)
    flt = simulate(g, xs, record="outputs").output
    runs = {}
    for label, f in (("float32_payload", None), ("int8_payload", a.frac_bits)):
        r = simulate(g, xs, numerics="spinnaker2", quantize_kwargs={"payload_frac_bits": f},
                     record=[k for k in g.nodes if g.nodes[k].kind == "EGRUCell"] + g.outputs())
        runs[label] = {"payload_frac_bits": f, "bpc": bpc(r.output, y),
                       "bpc_change_vs_model": bpc(r.output, y) - bpc(ref, y),
                       "next_char_agreement_vs_model": float((r.output.argmax(-1) == ref.argmax(-1)).mean()),
                       "max_abs_logit_diff": float(np.abs(r.output - ref).max())}
        if f is not None:
            qg = quantize(g, "spinnaker2", payload_frac_bits=f)
            counts = token_counts(qg, xs, {k: v for k, v in r.traces.items() if k in qg.nodes})
    out_dir = a.run / "export" / "spinnaker2"
    ex = write_spinnaker2(g, out_dir / "network.json", payload_frac_bits=a.frac_bits)
    desc = json.loads(ex.path.read_text())
    csr = {q["name"]: {"rows": len(q["indptr"]) - 1, "synapses": len(q["weights"])} for q in desc["projections"]}
    record = {
        "command": "python examples/egru/spinnaker2_export.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "run": str(a.run), "checkpoint": a.checkpoint, "windows": n, "tokens": int(y.size),
        "model": {"bpc": bpc(ref, y), "dtype": "float32"},
        "float_interpreter": {"bpc": bpc(flt, y), "bpc_change_vs_model": bpc(flt, y) - bpc(ref, y),
                              "max_abs_logit_diff": float(np.abs(flt - ref).max()),
                              "tolerance_note": "float64 interpreter vs float32 torch: differences are float32 "
                                                "rounding (about 1e-6 relative per op, accumulated over 100 steps)",
                              "next_char_agreement_vs_model": float((flt.argmax(-1) == ref.argmax(-1)).mean())},
        "spinnaker2": runs,
        "export": {"path": str(ex.path), "projections": csr, "mapping": ex.mapping.to_dict()},
        "energy_per_token": {"counts": counts, **energy_per_token(counts)},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(a.out, record)
    print(json.dumps({k: record[k] for k in ("model", "float_interpreter", "spinnaker2")}, indent=1))
    print(json.dumps({k: v for k, v in record["energy_per_token"].items() if k != "sources"}, indent=1))
    print(ex.mapping.to_markdown())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SPIKESEQ_DATA", "/work/shared/data")
    sys.exit(main())
