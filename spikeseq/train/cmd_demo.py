"""``spikeseq demo``: the main job end to end on real HAR data available offline.

train -> test evaluation -> export to NIR / Loihi-style / SpiNNaker2-style with verification -> op/energy profile
-> HTML + Markdown report, then print where the report is. The dataset is HAPT when the data root
(``SPIKESEQ_DATA``) has it, else BasicMotions. Which recipes the demo runs is data, not code: ``demo.toml`` next to
this module lists them in order of preference (``--model`` picks among their models; a model this build does not
register is an error, never replaced by another). A stage whose component is not available in this build is
reported as such (in the summary and in the report), never replaced by made-up numbers.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError, DataError, SpikeseqError

#: The demo's recipes, in order of preference (see the comments in the file).
DEMO_RECIPES = Path(__file__).with_name("demo.toml")


def _recipes(path: Path = DEMO_RECIPES) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from spikeseq.train.config import read_toml

    raw = read_toml(path)
    recipes = raw.get("recipe")
    if not isinstance(recipes, list) or not recipes:
        raise ConfigError(f"{path}: needs at least one [[recipe]] table")
    return raw.get("common", {}), recipes


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq demo`` options (``--out``, ``--dataset``, ``--model`` from ``demo.toml``, ``--set``, ...)."""
    _, recipes = _recipes()
    models = list(dict.fromkeys(r["model"]["name"] for r in recipes))
    datasets = list(dict.fromkeys(r["data"]["name"] for r in recipes))
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (default: runs/demo)")
    parser.add_argument("--dataset", choices=datasets, default=None,
                        help=f"default: the first of {', '.join(datasets)} that the data root has")
    parser.add_argument("--model", choices=models, default=None,
                        help=f"the model of the demo recipe (default: {models[0]}; recipes: {DEMO_RECIPES.name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=1")
    parser.add_argument("--force", action="store_true", help="replace a run in --out that `demo` did not write")


def _merge(common: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(recipe)
    for sec, table in common.items():
        out[sec] = {**copy.deepcopy(table), **out.get(sec, {})}
    return out


def demo_recipes(path: Path = DEMO_RECIPES) -> list[dict[str, Any]]:
    """The demo's recipes (TOML-shaped dicts, ``[common]`` merged in), in order of preference."""
    common, recipes = _recipes(path)
    return [_merge(common, r) for r in recipes]


def _candidates(model: str | None, dataset: str | None) -> list[dict[str, Any]]:
    """The demo recipes for ``model`` (default: the first recipe's) and ``dataset`` (default: any), in order; the
    model must be registered (no quiet substitute)."""
    from spikeseq.models import registry

    recipes = demo_recipes()
    model = model or recipes[0]["model"]["name"]
    registry.family_of(model)  # ConfigError naming the known models when this build lacks it
    chosen = [r for r in recipes if r["model"]["name"] == model and (dataset is None or r["data"]["name"] == dataset)]
    if not chosen:
        raise ConfigError(f"no demo recipe for model {model!r} and dataset {dataset!r} in {DEMO_RECIPES}")
    return chosen


def _pick_data(requested: str | None, model: str | None, overrides: list[str]):
    """(config, prepared data) for the first recipe whose dataset loads."""
    from spikeseq.train.config import apply_overrides, from_dict
    from spikeseq.train.datasets import prepare

    reasons = []
    for recipe in _candidates(model, requested):
        cfg = from_dict(apply_overrides(recipe, overrides), f"demo recipe {recipe.get('name', '')}")
        try:
            return cfg, prepare(cfg.data, cfg.train.seed)
        except (DataError, FileNotFoundError) as e:
            reasons.append(f"{cfg.data.name}: {e}")
            if requested:
                raise
    raise DataError("no dataset of the demo recipes found (" + "; ".join(reasons) + "); set SPIKESEQ_DATA to the "
                    "data root (e.g. ../shared/data) or fetch BasicMotions with `spikeseq data fetch basicmotions`")


def _stage(name: str, timings: dict[str, float], notes: dict[str, str], fn, *a, **kw):
    t0 = time.time()
    print(f"[demo] {name} ...", file=sys.stderr, flush=True)
    try:
        return fn(*a, **kw)
    except SpikeseqError as e:
        notes[name] = str(e)
        print(f"[demo] {name}: not done: {e}", file=sys.stderr)
        return None
    finally:
        timings[name] = round(time.time() - t0, 2)


def _prepare_out(out: Path, force: bool) -> None:
    from spikeseq.train.rundir import RunDir

    run = RunDir(out)
    if run.path.exists() and not run.path.is_dir():  # checked before the data is loaded (seconds to minutes)
        raise ConfigError(f"--out {out} is a file, not a directory; give a new or empty directory (or remove the "
                          "file)")
    if run.path.is_dir() and not run.is_run() and any(run.path.iterdir()):
        raise ConfigError(f"--out {out} is a non-empty directory that is not a spikeseq run; choose an empty or new "
                          "directory")
    if run.is_run() and not force:
        cmd = run.read_meta().get("command", [])  # ConfigError (how to repair it) when run.json is damaged
        if not isinstance(cmd, list) or "demo" not in cmd:
            raise ConfigError(f"{out} holds a run that `spikeseq demo` did not write; choose another --out or pass "
                              "--force")


def run(args: argparse.Namespace) -> int:
    """Run the demo (module docstring) and print where the report is; returns 0, 130 when interrupted.

    Unavailable stages are listed in ``demo.json`` (``not_done``); ``SpikeseqError`` when the report fails.
    """
    from spikeseq.train import loop
    from spikeseq.train.cmd_export import export_run
    from spikeseq.train.cmd_profile import profile_run
    from spikeseq.train.rundir import RunDir, write_json
    from spikeseq.train.runs import evaluate_run

    t_start = time.time()
    timings: dict[str, float] = {}
    notes: dict[str, str] = {}
    _prepare_out(args.out, args.force)
    t0 = time.time()
    cfg, data = _pick_data(args.dataset, args.model, args.overrides)
    timings["data"] = round(time.time() - t0, 2)
    print(f"[demo] {cfg.model.name} on {cfg.data.name}: {data.info['n_train']} train / {data.info['n_val']} val / "
          f"{data.info['n_test']} test windows, {data.info['sample_shape']}", file=sys.stderr)
    loop.preflight(cfg)
    run_dir = RunDir.prepare(args.out, cfg, force=True, argv=["spikeseq", "demo", *sys.argv[2:]])
    t0 = time.time()
    print("[demo] train ...", file=sys.stderr, flush=True)
    summary = loop.fit(cfg, run_dir, data=data)
    run_dir.set_status(summary["status"], step=summary["step"], best=summary["best"])
    timings["train"] = round(time.time() - t0, 2)
    if summary["status"] == "interrupted":
        print(f"[demo] interrupted; the run so far is in {run_dir.path}", file=sys.stderr)
        return 130
    ev = _stage("evaluate", timings, notes, evaluate_run, run_dir.path)
    exports = _stage("export", timings, notes, export_run, run_dir.path) or {}
    prof = _stage("profile", timings, notes, profile_run, run_dir.path)
    t0 = time.time()
    print("[demo] report ...", file=sys.stderr, flush=True)
    # The report layer is a sibling of train (import-linter): run it as its own command.
    proc = subprocess.run([sys.executable, "-m", "spikeseq.cli", "report", str(run_dir.path)], capture_output=True,
                          text=True)
    timings["report"] = round(time.time() - t0, 2)
    if proc.returncode != 0:
        notes["report"] = proc.stderr.strip()
    timings["total"] = round(time.time() - t_start, 2)
    result = {"model": cfg.model.name, "dataset": cfg.data.name, "timings_s": timings, "not_done": notes,
              "test_acc": ev["test"]["acc"] if ev else None,
              "exports": {t: ("error: " + r["error"]) if "error" in r else "ok" for t, r in exports.items()},
              "profiled": prof is not None}
    write_json(run_dir.path / "demo.json", result)
    print(json.dumps(result, indent=2), file=sys.stderr)
    html = run_dir.report_dir / "index.html"
    if proc.returncode != 0:
        raise SpikeseqError(f"the report failed: {notes['report']}")
    print(f"\nreport: {html.resolve()}")
    return 0
