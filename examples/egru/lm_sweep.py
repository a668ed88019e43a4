"""Choose language-model settings on the validation split: train variants side by side, record validation numbers only.

    python examples/egru/lm_sweep.py --epochs 8 --jobs 2 --runs /tmp/lm_sweep \
        --variant gru examples/egru/lm_tinyshakespeare_gru.toml \
        --variant rate19 examples/egru/lm_tinyshakespeare.toml model.activity_rate=0.19 \
        [--out results/egru/lm_sweep.json]

Each ``--variant NAME RECIPE [KEY=VALUE ...]`` runs ``spikeseq train RECIPE --seed S --set train.epochs=E --set
KEY=VALUE ...`` (``--jobs`` at a time, one thread each). Per variant the record holds what the run itself recorded
(its command, commit and resolved model / train settings, from ``run.json`` and ``config.json``), the best
validation bits per character (the checkpoint ``eval_checkpoint = "best"`` picks; the validation split is the seeded
``val_fraction`` of the training windows) and, for EGRU models, the activity sparsity of that checkpoint on the
validation split. ``--reuse`` measures runs already in ``--runs/NAME`` instead of training them again. Test numbers
are deliberately left out: a setting chosen here is then run by the recipe and reported on the test split by
``lm_results.py``, so the choice never sees the test text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from spikeseq import provenance
from spikeseq.train.datasets import time_first
from spikeseq.train.rundir import write_json
from spikeseq.train.runs import load_run


def train_command(recipe: str, sets: list[str], seed: int, epochs: int, out: Path) -> list[str]:
    """The ``spikeseq train`` command line of one variant."""
    cmd = ["spikeseq", "train", recipe, "--seed", str(seed), "--set", f"train.epochs={epochs}"]
    for s in sets:
        cmd += ["--set", s]
    return [*cmd, "--out", str(out), "--force"]


def recipe_and_overrides(command: list[str]) -> dict:
    """The recipe and the ``--set`` overrides of a ``spikeseq train`` command line (as the run recorded it)."""
    sets = [command[i + 1] for i, a in enumerate(command[:-1]) if a == "--set"]
    return {"recipe": command[2], "overrides": sets}


def chosen_validation(run: Path, checkpoint: str) -> dict:
    """The validation BPC of the checkpoint the recipe evaluates (``eval_checkpoint``: ``"best"``, the epoch with the
    best validation BPC, or ``"last"``, the final one, e.g. a pruned model's fully pruned state) and the training
    time."""
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    scored = [ln for ln in lines if ln.get("val_neg_bpc") is not None]
    if not scored:
        raise SystemExit(f"{run}: no validation BPC in metrics.jsonl (val_fraction = 0?)")
    best = scored[-1] if checkpoint == "last" else max(scored, key=lambda ln: ln["val_neg_bpc"])
    return {"val_bpc": -best["val_neg_bpc"], "checkpoint": checkpoint, "best_epoch": best["epoch"],
            "epochs": lines[-1]["epoch"],
            "val_bpc_per_epoch": [-ln["val_neg_bpc"] for ln in scored], "train_time_s": lines[-1].get("time_s")}


@torch.no_grad()
def validation_activity(run: Path, checkpoint: str) -> float | None:
    """Fraction of zero events of ``checkpoint`` on the validation split (``None`` for a non-EGRU model)."""
    lr = load_run(run, checkpoint)
    if not hasattr(lr.model, "forward_events"):
        return None
    val = lr.data().val
    zeros = total = 0
    for i in range(0, len(val), 256):
        _, _, events = lr.model.forward_events(time_first(val.x[i:i + 256]))
        zeros += int((events == 0).sum())
        total += events.numel()
    return zeros / total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", nargs="+", action="append", default=[], metavar="NAME RECIPE [KEY=VALUE]",
                    help="a name, a recipe and its overrides")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=Path, default=Path("runs/lm_sweep"))
    ap.add_argument("--out", type=Path, default=Path("results/egru/lm_sweep.json"))
    ap.add_argument("--reuse", action="store_true", help="measure runs that already finished instead of rerunning")
    args = ap.parse_args(argv)
    if not args.variant:
        ap.error("give at least one --variant")
    torch.set_num_threads(1)
    variants = {}
    for v in args.variant:
        if len(v) < 2 or any("=" not in s for s in v[2:]):
            ap.error(f"--variant takes NAME RECIPE [KEY=VALUE ...], got {v}")
        if v[0] in variants:
            ap.error(f"variant name {v[0]!r} given twice")
        variants[v[0]] = (v[1], v[2:])

    def run(name: str) -> tuple[str, int]:
        recipe, sets = variants[name]
        out = args.runs / name
        cmd = train_command(recipe, sets, args.seed, args.epochs, out)
        if args.reuse and (out / "eval.json").exists():
            return name, 0
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.runs / f"{name}.log", "w") as log:
            rc = subprocess.call([sys.executable, "-m", "spikeseq.cli", *cmd[1:]], stdout=log, stderr=subprocess.STDOUT)
        print(f"{time.strftime('%H:%M:%S')} {name}: exit {rc}", flush=True)
        return name, rc

    with ThreadPoolExecutor(args.jobs) as pool:
        finished = list(pool.map(run, variants))
    rows = {}
    for name, rc in finished:
        if rc != 0:
            print(f"{name}: training failed (exit {rc}, log {args.runs / name}.log); left out", file=sys.stderr)
            continue
        run_dir = args.runs / name
        info = json.loads((run_dir / "run.json").read_text())
        resolved = json.loads((run_dir / "config.json").read_text())
        checkpoint = resolved["train"].get("eval_checkpoint") or "best"
        row = {**recipe_and_overrides(info["command"]), "command": " ".join(info["command"]),
               "seed": info["seed"], "git": info.get("git"), "git_dirty": info.get("git_dirty"),
               "config": {"model": resolved["model"], "train": resolved["train"]},
               **chosen_validation(run_dir, checkpoint),
               "val_activity_sparsity": validation_activity(run_dir, checkpoint)}
        row["settings"] = " ".join(s for s in row["overrides"] if not s.startswith("train.epochs=")) or "(none)"
        row["model"] = resolved["model"]["name"]
        rows[name] = row
        sp = row["val_activity_sparsity"]
        print(f"{name:16s} val bpc {row['val_bpc']:.4f} (epoch {row['best_epoch']})"
              + ("" if sp is None else f"  val activity sparsity {sp:.3f}"))
    record = {"schema": 1, "producer": "examples/egru/lm_sweep.py", "metric": "validation bits per character",
              "seed": args.seed, "epochs": args.epochs, "variants": rows,
              "command": " ".join(["python", *sys.argv]), "git": provenance.git_commit(),
              "git_dirty": provenance.git_dirty(), "machine": provenance.cpu_model()}
    write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
