"""Collect the Tiny Shakespeare language-model runs into ``results/egru/lm_tinyshakespeare.json``.

    python examples/egru/lm_results.py --egru runs/egru --gru runs/gru [--lstm runs/lstm] [--pruned runs/pruned] \
        [--out results/egru/lm_tinyshakespeare.json]

Each run directory comes from ``spikeseq train examples/egru/<recipe>.toml``. Per run: the command, commit, seed and
config of the run (run.json / config.json) and the test bits per character (eval.json, the checkpoint named by
``train.eval_checkpoint``). For EGRU runs, measured on the test split with the evaluated checkpoint: the activity
sparsity (fraction of zero events, per layer and overall), the weight sparsity of every EGRU matrix, and from
:func:`spikeseq.profile.count` on ``--profile-windows`` test windows the effective / dense MACs of the recurrent and
input products (activity x weight density) and of the whole model. The EGRU-vs-GRU BPC gap is stated against the
issue's targets (2% dense, 5% at 95% weight sparsity).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from spikeseq import profile
from spikeseq.models import registry
from spikeseq.train import checkpoint
from spikeseq.train.config import load_config
from spikeseq.train.datasets import prepare, time_first
from spikeseq.train.tasks.language_modelling import lm_evaluate


def _read(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


def run_summary(run: Path) -> dict:
    """Command, commit, seed, config and test metrics of one finished run."""
    info, cfg, ev = _read(run, "run.json"), _read(run, "config.json"), _read(run, "eval.json")
    return {"run": str(run), "command": " ".join(info["command"]), "git": info.get("git"),
            "git_dirty": info.get("git_dirty"), "seed": info["seed"], "config": cfg,
            "test": ev["test"], "checkpoint": ev["checkpoint"], "epoch": ev["epoch"],
            "params": ev.get("model", {}).get("parameters"), "train_time_s": _train_time(run)}


def _train_time(run: Path) -> float | None:
    path = run / "metrics.jsonl"
    if not path.exists():
        return None
    lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    return lines[-1].get("time_s") if lines else None


@torch.no_grad()
def egru_measurements(run: Path, profile_windows: int, ckpt: str | None = None) -> dict:
    """Activity / weight sparsity and effective MACs of the evaluated checkpoint (or ``ckpt``) on the test split;
    with ``ckpt`` also that checkpoint's test metrics."""
    cfg = load_config(run / "config.toml")
    ev = _read(run, "eval.json")
    name = ckpt or ev["checkpoint"]
    ck = checkpoint.load(run / "checkpoints" / f"{name}.pt", map_location="cpu")
    model = registry.build(cfg.model.name, **cfg.model.kwargs)
    model.load_state_dict(ck["model"])
    model.eval()
    data = prepare(cfg.data, cfg.train.seed)
    zeros = torch.zeros(model.rnn.num_layers, dtype=torch.float64)
    total = 0
    for i in range(0, len(data.test), 256):
        x = time_first(data.test.x[i:i + 256])
        _, _, events = model.forward_events(x)
        zeros += (events == 0).double().sum(dim=(1, 2, 3))
        total += events[0].numel()
    act_layers = (zeros / total).tolist()
    rep = profile.count(model, time_first(data.test.x[:profile_windows]), strict=True)
    sums: dict[str, dict[str, float]] = {}
    for layer in rep.layers:
        part = "recurrent" if layer.name.endswith(".recurrent") else "input" if layer.name.endswith(".input") \
            else "decoder" if layer.name.endswith("decoder") else None
        if part is None:
            continue
        for key in ("dense_macs", "eff_macs"):
            sums.setdefault(part, {}).setdefault(key, 0.0)
            sums[part][key] += layer.total(key) / rep.n_samples
    for v in sums.values():
        v["eff_over_dense"] = v["eff_macs"] / v["dense_macs"]
    dense = sum(v["dense_macs"] for v in sums.values())
    eff = sum(v["eff_macs"] for v in sums.values())
    w_sp = model.weight_sparsity()
    w_hh = [v for k, v in w_sp.items() if k.startswith("weight_hh")]
    activity = sum(act_layers) / len(act_layers)
    extra = {}
    if ckpt is not None:
        test = lm_evaluate(model, data.test, cfg, torch.device("cpu"), data.n_classes)
        extra = {"test": test, "checkpoint": name, "epoch": ck["position"]["epoch"],
                 "test_of_eval_json": ev["test"], "checkpoint_of_eval_json": ev["checkpoint"]}
    return {
        **extra,
        "activity_sparsity": activity, "activity_sparsity_per_layer": act_layers,
        "weight_sparsity": w_sp,
        "nonzero_parameters": sum(int((q != 0).sum()) for q in model.parameters()),
        "recurrent_weight_density": 1.0 - sum(w_hh) / len(w_hh),
        "activity_x_weight_density": (1.0 - activity) * (1.0 - sum(w_hh) / len(w_hh)),
        "macs_per_window": {"parts": sums, "dense": dense, "effective": eff, "effective_over_dense": eff / dense},
        "profile_windows": rep.n_samples,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--egru", type=Path, required=True)
    ap.add_argument("--gru", type=Path, required=True)
    ap.add_argument("--lstm", type=Path)
    ap.add_argument("--pruned", type=Path)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=RUN",
                    help="another EGRU run (e.g. a different activity regularisation), reported as egru_NAME")
    ap.add_argument("--pruned-variant", action="append", default=[], metavar="NAME=RUN",
                    help="another pruned EGRU run (e.g. a wider layer), reported as egru_pruned_NAME at its last "
                         "checkpoint against the 5 %% target")
    ap.add_argument("--profile-windows", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("results/egru/lm_tinyshakespeare.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    runs = {"egru": args.egru, "gru": args.gru, "lstm": args.lstm, "egru_pruned": args.pruned}
    for option, prefix in ((args.variant, "egru_"), (args.pruned_variant, "egru_pruned_")):
        for v in option:
            name, _, path = v.partition("=")
            if not path:
                ap.error(f"--variant / --pruned-variant take NAME=RUN, got {v!r}")
            runs[prefix + name] = Path(path)
    metrics: dict[str, dict] = {}
    for name, run in runs.items():
        if run is None:
            continue
        if not (run / "eval.json").exists():
            print(f"{run}: no eval.json (the run did not finish); skipped", file=sys.stderr)
            continue
        s = run_summary(run)
        if name.startswith("egru"):
            # the pruned model is measured at its final (fully pruned) state, whatever eval.json picked
            s.update(egru_measurements(run, args.profile_windows,
                                       "last" if name.startswith("egru_pruned") else None))
        metrics[name] = s
        print(f"{name:12s} test bpc {s['test']['bpc']:.4f}" + (
            f"  activity sparsity {s['activity_sparsity']:.3f}  weight density "
            f"{s['recurrent_weight_density']:.3f}  effective/dense MACs "
            f"{s['macs_per_window']['effective_over_dense']:.3f}" if "activity_sparsity" in s else ""))
    comparison = {}
    if "gru" in metrics:
        ref = metrics["gru"]["test"]["bpc"]
        named = [("egru", 0.02), ("egru_pruned", 0.05), ("lstm", None)]
        named += [(n, 0.05 if n.startswith("egru_pruned_") else 0.02) for n in metrics
                  if n.startswith("egru_") and n != "egru_pruned"]
        for name, target in named:
            if name in metrics:
                gap = metrics[name]["test"]["bpc"] / ref - 1.0
                comparison[name] = {"bpc_over_gru_minus_1": gap, "target": target,
                                    "met": None if target is None else bool(gap <= target and (
                                        metrics[name].get("activity_sparsity", 1.0) >= 0.8))}
    out = {"schema": 1, "producer": "examples/egru/lm_results.py", "dataset": "tinyshakespeare (first 90% train, "
           "last 10% test)", "metric": "test bits per character", "metrics": metrics,
           "comparison_vs_gru": comparison,
           "command": "python examples/egru/lm_results.py " + " ".join(
               f"--{k} {v}" for k, v in (("egru", args.egru), ("gru", args.gru), ("lstm", args.lstm),
                                         ("pruned", args.pruned), *(("variant", v) for v in args.variant),
                                         *(("pruned-variant", v) for v in args.pruned_variant))
               if v is not None)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2, default=str))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
