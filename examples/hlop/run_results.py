"""Run continual recipes for several methods and seeds; one JSON per run under ``results/hlop/<stream>/``.

    python examples/hlop/run_results.py examples/hlop/digits_split.toml --methods finetune hlop ewc gpm multitask \
        --seeds 0 1 2
    python examples/hlop/run_results.py --summary          # results/hlop/summary.json + summary.md

One folder per recipe (``name``); each run JSON holds the commit, the equivalent ``spikeseq train`` command, the
resolved config and its hash, the seed, package versions and the metrics (R, ACC, BWT, training time per task,
memory; HLOP's subspace quality per task and layer under ``diagnostics``). Every run is what
``spikeseq train RECIPE --set continual.method=M --set train.seed=S`` computes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

from spikeseq.errors import ConfigError, NonFiniteError
from spikeseq.provenance import git_commit
from spikeseq.train import stream as S
from spikeseq.train.rundir import read_json, versions, write_json, write_text
from spikeseq.train.tasks import continual as C

OUT = Path("results/hlop")


def run_one(recipe: str, method: str, seed: int, out: Path) -> Path:
    """Run one (recipe, method, seed) and write its JSON; returns the path."""
    overrides = [f"continual.method={method}", f"train.seed={seed}"]
    cfg = C.load(recipe, overrides)
    t0 = time.time()
    conf = cfg.to_dict()
    try:
        res = S.run(cfg)
    except NonFiniteError as e:  # a diverged run is a result too (e.g. a too stiff EWC penalty with SGD)
        res = {"stream": cfg.stream.name, "acc": None, "bwt": None, "R": None, "train_time_s": None,
               "memory": None, "tasks": None, "setting": None, "diagnostics": None, "error": f"diverged: {e}"}
    blob = {
        "commit": git_commit(), "command": f"spikeseq train {recipe} " + " ".join(f"--set {o}" for o in overrides),
        "recipe": recipe, "config": conf,
        "config_hash": hashlib.sha256(json.dumps(conf, sort_keys=True).encode()).hexdigest()[:16],
        "seed": seed, "versions": versions(), "wall_s": round(time.time() - t0, 1),
        "metrics": {k: res.get(k) for k in ("acc", "bwt", "R", "train_time_s", "memory", "tasks", "setting",
                                            "diagnostics")},
        "method": method, "stream": res["stream"], "name": cfg.name,
        **({"error": res["error"]} if "error" in res else {}),
    }
    quality = (res.get("diagnostics") or {}).get("subspace_quality")
    if quality:  # the least converged layer and task: captured / best residual energy (1 = principal subspace)
        blob["metrics"]["subspace_ratio_min"] = min(q["ratio"] for task in quality for q in task.values())
    path = out / cfg.name / f"{method}_seed{seed}.json"   # by recipe: two recipes may run one stream
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, blob)
    if "error" in res:
        print(f"{cfg.name:16s} {method:10s} seed {seed}: {res['error']}", flush=True)
    else:
        print(f"{cfg.name:16s} {method:10s} seed {seed}: ACC {100 * res['acc']:6.2f}  BWT "
              f"{100 * res['bwt']:+6.2f}  ({blob['wall_s']} s)", flush=True)
    return path


def summary(out: Path) -> dict:
    """Mean and spread (sample std) of ACC / BWT per stream and method over the seeds found under ``out``."""
    rows: dict[str, dict[str, list[dict]]] = {}
    for p in sorted(out.glob("*/*_seed*.json")):
        b = read_json(p)
        rows.setdefault(b.get("name", b["stream"]), {}).setdefault(b["method"], []).append(b)
    table = {}
    for stream, methods in rows.items():
        table[stream] = {}
        for m, all_runs in methods.items():
            runs = [r for r in all_runs if r["metrics"]["acc"] is not None]
            if not runs:
                table[stream][m] = {"seeds": [], "diverged": [r["seed"] for r in all_runs]}
                continue
            acc = [100 * r["metrics"]["acc"] for r in runs]
            bwt = [100 * r["metrics"]["bwt"] for r in runs]
            table[stream][m] = {
                "seeds": [r["seed"] for r in runs], "acc": acc, "bwt": bwt,
                "acc_mean": statistics.fmean(acc), "acc_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "bwt_mean": statistics.fmean(bwt), "bwt_std": statistics.stdev(bwt) if len(bwt) > 1 else 0.0,
                "memory": runs[0]["metrics"]["memory"],
                "train_s_per_task": statistics.fmean(t for r in runs for t in r["metrics"]["train_time_s"]),
                "diverged": [r["seed"] for r in all_runs if r["metrics"]["acc"] is None],
            }
    return table


def write_summary(out: Path) -> None:
    """``summary.json`` and a Markdown table of :func:`summary`."""
    table = summary(out)
    write_json(out / "summary.json", {"command": "python examples/hlop/run_results.py --summary", **table})
    lines = ["| stream | method | seeds | ACC (%) | BWT (%) | memory |", "|---|---|---|---|---|---|"]
    order = ["multitask", "hlop", "gpm", "ewc", "finetune"]
    for stream, methods in table.items():
        for m in sorted(methods, key=lambda k: order.index(k) if k in order else 99):
            r = methods[m]
            if not r["seeds"]:
                lines.append(f"| {stream} | {m} | 0 | diverged (seeds {r['diverged']}) | | |")
                continue
            lines.append(f"| {stream} | {m} | {len(r['seeds'])} | {r['acc_mean']:.2f} ± {r['acc_std']:.2f} | "
                         f"{r['bwt_mean']:+.2f} ± {r['bwt_std']:.2f} | {r['memory'] or '-'} |")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Command line (see module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*")
    ap.add_argument("--methods", nargs="+", default=list(C.METHODS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--summary", action="store_true", help="only (re)write summary.json / summary.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("SPIKESEQ_DATA", str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    try:
        for recipe in args.recipes:
            for seed in args.seeds:
                for method in args.methods:
                    run_one(recipe, method, seed, args.out)
        write_summary(args.out)
    except ConfigError as e:
        print(f"run_results: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
