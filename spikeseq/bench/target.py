"""``spikeseq bench target RECIPE...``: the cost of training for a target (``[train] target``) against float training.

For each recipe (a ``spikeseq train`` TOML; e.g. ``examples/nmnist_snn_mlp.toml`` and the L2MU HAPT recipe), the
model is built as the recipe says and one batch of ``[train] batch_size`` real training samples is taken from the
dataset registry (``SPIKESEQ_DATA``; standardised, scaled and padded as the recipe asks). A training step is forward
+ cross-entropy of the recipe's readout + backward + Adam update on that batch: float (the model's own forward),
Loihi target mode and SpiNNaker2 target mode (:class:`spikeseq.graph.target_mode.TargetMode`, which re-traces and
re-quantises the model every step, as in training; Loihi with ``reset_policy = "zero"`` and, for real-valued inputs,
the input bits chosen from the batch; SpiNNaker2 with the recipe's ``[export.spinnaker2] payload_frac_bits``; both
with the recipe's ``[export] dt`` for models without a time step). A target the model cannot run (EGRU cells on
Loihi) is named in the report with the check's message (``refused``), not timed. The steps run interleaved (float,
loihi, spinnaker2, float, ...; :func:`spikeseq.timing.time_interleaved`) so load on a shared machine hits all
alike; the report gives the median step time of each and the ratios target / float (issue #19's goal: <= 1.5).
With ``--json`` the measurements go to a record (``command``, ``machine``; per recipe, keyed by its file name
without ``.toml``: the input shape, median step times in ms, the ratios and the refused targets).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

import torch

from spikeseq._args import positive_int

#: the overhead issue #19 asks for: a target-mode step at most this many times a float step
GOAL = 1.5


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench target`` options to ``parser``."""
    parser.add_argument("recipes", nargs="+", type=Path,
                        help="spikeseq train recipes (TOML files) whose model and data are timed")
    parser.add_argument("--reps", type=positive_int, default=10, help="interleaved repetitions (default 10)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batch", type=positive_int, default=None, help="batch size (default: the recipe's)")
    parser.add_argument("--json", default=None, help="write the measurements to this JSON record")


#: ``[data]`` keys of a recipe that ``spikeseq train`` handles itself (not loader keywords)
_DATA_KEYS = ("name", "val_fraction", "normalize", "input_scale", "max_train", "max_test", "pad_end",
              "cv_folds", "cv_fold")


def _setup(recipe: Path, batch: int | None):
    """(train section, export section, model, x [T, B, ...], y) of one recipe: its model
    (``spikeseq.models.registry``) and its first ``batch`` training samples from the dataset registry (standardised
    per channel when the recipe normalises, rounded by ``input_scale``, padded by ``pad_end``: the shape and value
    kind training sees)."""
    import tomllib

    from spikeseq.data import registry as data
    from spikeseq.errors import ConfigError
    from spikeseq.models import registry

    try:
        raw = tomllib.loads(Path(recipe).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"bench target: cannot read recipe {recipe}: {e}") from None
    train, export = dict(raw.get("train", {})), dict(raw.get("export", {}))
    model_kw, data_kw = dict(raw["model"]), dict(raw["data"])
    ds = data.load(data_kw["name"], "train", **{k: v for k, v in data_kw.items() if k not in _DATA_KEYS})
    n = batch or int(train.get("batch_size", 64))
    x, y = torch.as_tensor(ds.x[:n]).float(), torch.as_tensor(ds.y[:n]).long()
    if data_kw.get("normalize"):
        flat = x.reshape(-1, x.shape[-1])
        x = (x - flat.mean(0)) / flat.std(0).clamp_min(1e-8)
    if data_kw.get("input_scale"):
        x = torch.round(x * float(data_kw["input_scale"]))
    if data_kw.get("pad_end"):
        x = torch.cat([x, x.new_zeros(x.shape[0], int(data_kw["pad_end"]), *x.shape[2:])], dim=1)
    torch.manual_seed(int(train.get("seed", 0)))
    model = registry.build(model_kw.pop("name"), **model_kw)
    return train, export, model, x.transpose(0, 1).contiguous(), y


def _s2_options(export: dict) -> dict:
    """The recipe's ``[export.spinnaker2]`` numeric options target mode takes (``payload_frac_bits``)."""
    sec = export.get("spinnaker2", {}) or {}
    return {k: sec[k] for k in ("payload_frac_bits",) if k in sec}


def _logits(out, readout: str) -> torch.Tensor:
    y = out[0] if isinstance(out, tuple) else out
    if readout == "sum":
        return y.sum(0)
    if readout == "last":
        return y[-1]
    if readout == "softmax_sum":
        return torch.softmax(y, dim=-1).sum(0)
    return y.mean(0)


def _step_fn(train: dict, module: torch.nn.Module, params, x, y):
    opt = torch.optim.Adam(list(params), lr=float(train.get("lr", 1e-3)))
    readout = str(train.get("readout", "mean"))

    def step() -> None:
        module.train()
        loss = torch.nn.functional.cross_entropy(_logits(module(x), readout), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def run(args: argparse.Namespace) -> int:
    """Time float and target-mode training steps side by side for every recipe; print and optionally record."""
    from spikeseq.errors import ConfigError
    from spikeseq.graph.quantize import input_frac_bits
    from spikeseq.graph.target_mode import TargetMode, TargetSettings, check_target
    from spikeseq.timing import time_interleaved

    torch.set_num_threads(args.threads)
    rows: dict[str, dict] = {}
    for recipe in args.recipes:
        train, export, model, x, y = _setup(recipe, args.batch)
        real = not torch.equal(x.float(), torch.round(x.float()))
        settings = {
            "loihi": TargetSettings("loihi", reset_policy="zero",
                                    input_frac_bits=input_frac_bits(float(x.abs().max()), 8) if real else None),
            "spinnaker2": TargetSettings("spinnaker2", **_s2_options(export)),
        }
        fns = {}
        float_model = copy.deepcopy(model)
        fns["float"] = _step_fn(train, float_model, float_model.parameters(), x, y)
        refused = {}
        for target, s in settings.items():
            m = copy.deepcopy(model)
            try:
                check_target(m, s, dt=export.get("dt"), input_shape=tuple(x.shape[2:]))
            except ConfigError as e:   # a model the target cannot run (EGRU cells on Loihi): named, not timed
                refused[target] = str(e)
                continue
            tm = TargetMode(m, s, dt=export.get("dt"), integer_inputs=not real)   # the data checked once, as training
            fns[target] = _step_fn(train, tm, [p for p in m.parameters() if p.requires_grad], x, y)
        ms = time_interleaved(fns, reps=args.reps, warmup=1)
        rows[Path(recipe).stem] = {"recipe": str(recipe), "shape": list(x.shape), "median_ms": ms,
                                   "ratio": {t: ms[t] / ms["float"] for t in settings if t in ms}, "refused": refused}
        print(f"{recipe}: x {list(x.shape)} ({'real-valued' if real else 'integer'} inputs), "
              f"{args.reps} interleaved reps, {torch.get_num_threads()} torch threads")
        for name, v in ms.items():
            extra = "" if name == "float" else f"   {v / ms['float']:.2f}x float (goal <= {GOAL})"
            print(f"  {name:11s} training step median {v:9.1f} ms{extra}")
        for name, why in refused.items():
            print(f"  {name:11s} refused: {why}")
    if args.json:
        from spikeseq import _atomic
        from spikeseq.provenance import bench_command, cpu_model, git_commit

        machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads()}
        worst = max((r for row in rows.values() for r in row["ratio"].values()), default=float("nan"))
        _atomic.write_text(args.json, json.dumps({
            "bench": "target", "command": bench_command("target"), "commit": git_commit(),
            "machine": machine, "reps": args.reps, "goal_ratio": GOAL, "worst_ratio": worst,
            "meets_goal": worst <= GOAL, "recipes": rows}, indent=2) + "\n")
    return 0
