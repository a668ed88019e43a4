"""Run continual recipes for several methods and seeds; one result artifact per run under ``results/hlop/``.

    python examples/hlop/run_results.py examples/hlop/digits_split.toml --methods finetune hlop ewc gpm multitask \
        --seeds 0 1 2
    python examples/hlop/run_results.py --summary          # results/hlop/summary.json + summary.md

Each run is an artifact of :mod:`spikeseq.train.results`' schema, ``results/hlop/<method>/<stream>-s<seed>.json``
(table ``hlop-continual``, label ``"<stream> | <method>"``): the commit, the equivalent ``spikeseq train`` command
(every run is what ``spikeseq train RECIPE --set continual.method=M --set train.seed=S`` computes, through the same
``spikeseq.train.tasks.continual.run``), the resolved config and its hash, the seed, versions, the machine and
the metrics (``test_acc`` = ACC, ``acc``, ``bwt``, R, training time per task, memory). ``--summary`` writes
``results/hlop/summary.md`` (mean ± std per stream and method).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from spikeseq.errors import ConfigError, NonFiniteError
from spikeseq.train.rundir import _git_commit, read_json, versions, write_json, write_text
from spikeseq.train.tasks import continual as C

OUT = Path("results/hlop")


def artifact(recipe: str, method: str, seed: int, cfg: C.ContinualConfig, res: dict, wall_s: float,
             commit: str | None) -> dict:
    """The result artifact of one run (schema of :mod:`spikeseq.train.results`, metrics of the continual task)."""
    from spikeseq.train.results import SCHEMA, config_hash, machine

    conf = cfg.to_dict()
    overrides = [f"continual.method={method}", f"train.seed={seed}"]
    return {
        "schema": SCHEMA, "table": "hlop-continual", "label": f"{res['stream']} | {method}",
        "recipe": res["stream"], "family": "hlop", "seed": seed, "producer": "spikeseq train",
        "runner": "examples/hlop/run_results.py", "git": {"commit": commit, "dirty": None},
        "command": f"spikeseq train {recipe} " + " ".join(f"--set {o}" for o in overrides),
        "config_hash": config_hash(conf), "config": conf, "versions": versions(),
        "machine": machine(cfg.train.threads), "time": {"wall_s": wall_s, "train_s": res.get("train_time_s")},
        "metrics": {"test_acc": res["acc"], "acc": res["acc"], "bwt": res["bwt"], "R": res["R"],
                    "memory": res.get("memory"), "tasks": res.get("tasks"), "setting": res.get("setting"),
                    **({"error": res["error"]} if "error" in res else {})},
    }


def run_one(recipe: str, method: str, seed: int, out: Path) -> Path:
    """Run one (recipe, method, seed) and write its artifact; returns the path."""
    cfg = C.load(recipe, [f"continual.method={method}", f"train.seed={seed}"])
    t0 = time.time()
    try:
        res = C.run(cfg)
    except NonFiniteError as e:  # a diverged run is a result too (e.g. a too stiff EWC penalty with SGD)
        res = {"stream": cfg.stream.name, "acc": None, "bwt": None, "R": None, "error": f"diverged: {e}"}
    blob = artifact(recipe, method, seed, cfg, res, round(time.time() - t0, 1), _git_commit())
    path = out / method / f"{res['stream']}-s{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, blob)
    if "error" in res:
        print(f"{res['stream']:16s} {method:10s} seed {seed}: {res['error']}", flush=True)
    else:
        print(f"{res['stream']:16s} {method:10s} seed {seed}: ACC {100 * res['acc']:6.2f}  BWT "
              f"{100 * res['bwt']:+6.2f}  ({blob['time']['wall_s']} s)", flush=True)
    return path


def convert(out: Path) -> None:
    """Rewrite the run records of the first version of this script (``<stream>/<method>_seed<s>.json``) as
    artifacts; the machine is this one (the records were measured on it), ``git.dirty`` unknown."""
    for p in sorted(out.glob("*/*_seed*.json")):
        b = read_json(p)
        cfg = C.from_dict(b["config"])
        m = b["metrics"]
        res = {"stream": b["stream"], **{k: m.get(k) for k in ("acc", "bwt", "R", "memory", "tasks", "setting")},
               "train_time_s": m.get("train_time_s")}
        if "error" in b:
            res["error"] = b["error"]
        blob = artifact(b["recipe"], b["method"], b["seed"], cfg, res, b.get("wall_s"), b.get("commit"))
        blob["versions"] = b.get("versions", blob["versions"])
        path = out / b["method"] / f"{b['stream']}-s{b['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, blob)
        p.unlink()


def summary(out: Path) -> dict:
    """Mean and spread (sample std) of ACC / BWT per stream and method over the seeds found under ``out``."""
    rows: dict[str, dict[str, list[dict]]] = {}
    for p in sorted(out.glob("*/*-s*.json")):
        b = read_json(p)
        stream, method = (c.strip() for c in b["label"].split("|"))
        rows.setdefault(stream, {}).setdefault(method, []).append(b)
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
                "diverged": [r["seed"] for r in all_runs if r["metrics"]["acc"] is None],
            }
    return table


def write_summary(out: Path) -> None:
    """``summary.json`` and a Markdown table of :func:`summary`."""
    table = summary(out)
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
    ap.add_argument("--summary", action="store_true", help="only (re)write summary.md")
    ap.add_argument("--convert", action="store_true", help="rewrite old run records as artifacts")
    args = ap.parse_args(argv)
    os.environ.setdefault("SPIKESEQ_DATA", str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    try:
        if args.convert:
            convert(args.out)
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
