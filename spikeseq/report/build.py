"""``write_report(run_dir)``: RUN/report/index.html (self-contained) + RUN/report/report.md (+ its PNGs).

Sections: summary, training curves, test evaluation (confusion matrix), spikes (raster, firing rates), operations
and energy per hardware table (the profiler's tables and bars), export verification per target, and the resolved
config. A section whose artefact is missing says which command produces it instead of showing anything made up.
A section whose optional artefact is damaged (:attr:`~spikeseq.report.artefacts.RunArtefacts.skipped`), or cannot
be built from it, is left out with a :class:`~spikeseq.report.artefacts.ReportInputWarning` and a note naming the
file and the problem; the summary lists such files. Damaged required files (run.json, config.json) are errors.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError, OutputError, SpikeseqError
from spikeseq.report import plots
from spikeseq.report.artefacts import EXPORT_TARGETS, ReportInputWarning, RunArtefacts, load, remedy
from spikeseq.report.document import Block, to_html, to_markdown

SECTIONS = ("Summary", "Training", "Test evaluation", "Spikes", "Operations and energy", "Export verification",
            "Configuration")


def _f(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}"
    return str(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _missing(cmd: str, run: RunArtefacts) -> Block:
    return ("note", f"Not available: run `spikeseq {cmd} {run.path}` to produce this section.")


def _skipped(run: RunArtefacts, rel: str) -> Block:
    """The note of a section left out because its optional input ``rel`` is damaged."""
    return ("note", f"Left out: {rel} is damaged: {run.skipped[rel]}. To restore it, {remedy(rel, run.path)}.")


def _summary(run: RunArtefacts) -> list[Block]:
    cfg, meta, ev = run.config, run.meta, run.eval
    model = cfg.get("model", {})
    data = cfg.get("data", {})
    rows = [
        ["run", str(run.path)], ["status", meta.get("status", "?")], ["model", model.get("name", "?")],
        ["dataset", data.get("name", "?")], ["seed", meta.get("seed")],
        ["processes", meta.get("world_size", 1)], ["created", meta.get("created", "?")],
    ]
    if ev:
        rows += [["parameters", ev["model"]["parameters"]],
                 ["samples train / val / test", f"{ev['data']['n_train']} / {ev['data']['n_val']} / "
                                                f"{ev['data']['n_test']}"],
                 ["test accuracy", f"{_pct(ev['test'].get('acc'))} ({ev['checkpoint']} checkpoint, epoch "
                                   f"{ev['epoch']})"]]
        if ev["test"].get("bpc") is not None:
            rows.append(["test bits per character / perplexity",
                         f"{_f(ev['test']['bpc'])} / {_f(ev['test'].get('perplexity'))}"])
    if run.metrics:
        rows.append(["epochs / steps", f"{run.metrics[-1]['epoch']} / {run.metrics[-1]['step']}"])
        rows.append(["training time", f"{run.metrics[-1].get('time_s', 0):.1f} s"])
    if run.profile:
        tot = run.profile["report"]["totals_per_sample"]
        rows.append(["effective MACs / ACs per sample", f"{_f(tot.get('eff_macs'))} / {_f(tot.get('eff_acs'))}"])
    for target, r in run.exports.items():
        rows.append([f"export {target}", "failed: " + r["error"] if "error" in r else "verified (see below)"])
    versions = meta.get("versions", {})
    rows.append(["versions", ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform")])
    if meta.get("git"):
        rows.append(["git commit", meta["git"]])
    rows.append(["command", " ".join(meta.get("command", []))])
    if run.skipped:
        rows.append(["damaged inputs left out", ", ".join(run.skipped)])
    return [("h", 2, "Summary"), ("table", ["", ""], [[k, _f(v)] for k, v in rows])]


def _training(run: RunArtefacts, images: dict[str, bytes]) -> list[Block]:
    out: list[Block] = [("h", 2, "Training")]
    if "metrics.jsonl" in run.skipped:
        return [*out, _skipped(run, "metrics.jsonl")]
    if not run.metrics:
        return [*out, ("note", "No finished epoch in metrics.jsonl yet.")]
    images["training.png"] = plots.training_curves(run.metrics)
    out.append(("img", "training.png", images["training.png"], "training and validation loss and accuracy"))
    rows = [[m["epoch"], m["step"], _f(m["train_loss"]), _pct(m["train_acc"]), _f(m.get("val_loss")),
             _pct(m.get("val_acc")), _f(m.get("lr")), _f(m.get("time_s"), 3)] for m in run.metrics]
    out.append(("table", ["epoch", "step", "train loss", "train acc", "val loss", "val acc", "lr", "time s"], rows))
    return out


def _continual(run: RunArtefacts, images: dict[str, bytes]) -> list[Block]:
    """A continual run: the accuracy matrix R as a heat map and a table, ACC and BWT."""
    c = run.continual
    out: list[Block] = [("h", 2, "Continual learning")]
    images["accuracy_matrix.png"] = plots.accuracy_matrix(c["R"], c.get("tasks"))
    out.append(("img", "accuracy_matrix.png", images["accuracy_matrix.png"],
                "accuracy matrix R (row j: after training task j; column i: test task i)"))
    n = len(c["R"])
    rows = [[f"after task {j}", *[_pct(v) for v in row]] for j, row in enumerate(c["R"])]
    out.append(("table", ["", *[f"task {i}" for i in range(n)]], rows))
    out.append(("table", ["method", "stream", "setting", "ACC", "BWT"],
                [[c["method"], c["stream"], c.get("setting", "?"), _pct(c["acc"]), f"{100 * c['bwt']:+.2f} %"]]))
    out.append(("note", "ACC = mean of R[T-1, i]; BWT = mean over i < T-1 of R[T-1, i] - R[i, i] (the HLOP paper, "
                        "GEM and Avalanche); tasks: " + ", ".join(c.get("tasks", []))))
    quality = (c.get("diagnostics") or {}).get("subspace_quality")
    if quality:
        layers = sorted({name for task in quality for name in task})
        rows = [[f"task {j}", *[_subspace_cell(task.get(name)) for name in layers]] for j, task in enumerate(quality)]
        out.append(("table", ["Hebbian subspace", *layers], rows))
        out.append(("note", "per task and layer: new lateral neurons k, the share of the task's residual input energy "
                            "they capture / the most k directions can (PCA); 1.00 = the principal subspace"))
    return out


def _subspace_cell(q: dict | None) -> str:
    """``k: captured / best`` of one layer and task (``-`` when the layer has no entry)."""
    if not q:
        return "-"
    return f"k {q['k']}: {q['captured']:.3f} / {q['best']:.3f}"


def _evaluation(run: RunArtefacts, images: dict[str, bytes]) -> list[Block]:
    out: list[Block] = [("h", 2, "Test evaluation")]
    ev = run.eval
    if "eval.json" in run.skipped:
        return [*out, _skipped(run, "eval.json")]
    if not ev:
        return [*out, _missing("eval", run)]
    test = ev["test"]
    metric = ev["best_val"].get("metric")
    # a language model selects on the negative bits per character, not on an accuracy
    best = f"metric {_f(metric)}" if test.get("bpc") is not None else _pct(metric)
    out.append(("p", f"Test accuracy **{_pct(test.get('acc'))}** on {test['n']} samples (loss {_f(test['loss'])}), "
                     f"{ev['checkpoint']} checkpoint from epoch {ev['epoch']} (best validation "
                     f"{best})."))
    lm = [(label, test[k]) for k, label in (("bpc", "bits per character"), ("perplexity", "perplexity"),
                                             ("tokens", "tokens")) if test.get(k) is not None]
    if lm:  # a language model: per-token metrics, no confusion matrix over the vocabulary
        out.append(("table", ["test metric", "value"], [[label, _f(v)] for label, v in lm]))
    cm = test.get("confusion")
    if cm is None:
        if not lm:
            out.append(("note", "eval.json has no confusion matrix for this task."))
        return out
    classes = ev["classes"]
    images["confusion.png"] = plots.confusion(cm, classes)
    out.append(("img", "confusion.png", images["confusion.png"], "confusion matrix"))
    rows = []
    for i, c in enumerate(classes):
        n = sum(cm[i]) if i < len(cm) else 0
        rows.append([c, n, _pct(cm[i][i] / n) if n and i < len(cm[i]) else "-"])
    out.append(("table", ["class", "test samples", "recall"], rows))
    return out


def _spikes(run: RunArtefacts, images: dict[str, bytes]) -> list[Block]:
    out: list[Block] = [("h", 2, "Spikes")]
    ev = run.eval
    if "eval.json" in run.skipped:
        return [*out, _skipped(run, "eval.json")]
    if not ev:
        return [*out, _missing("eval", run)]
    sp = ev["spikes"]
    if not sp["layers"]:
        return [*out, ("note", "The model has no spiking layers that the recorder recognises (modules with v_th).")]
    images["raster.png"] = plots.raster(sp["raster"])
    images["rates.png"] = plots.firing_rates(sp["layers"])
    out += [("img", "raster.png", images["raster.png"], "spike raster"),
            ("img", "rates.png", images["rates.png"], "firing rate per layer"),
            ("table", ["layer", "neurons", "time steps", "firing rate", "spikes / sample"],
             [[lay["name"], lay["neurons"], lay["steps"], f"{lay['rate']:.4f}", _f(lay["spikes_per_sample"], 5)]
              for lay in sp["layers"]]),
            ("p", f"Firing rate = spikes / (neurons x time steps x samples) over {sp['samples']} test samples.")]
    return out


def _energy(run: RunArtefacts, images: dict[str, bytes]) -> list[Block]:
    out: list[Block] = [("h", 2, "Operations and energy")]
    prof = run.profile
    if "profile.json" in run.skipped:
        return [*out, _skipped(run, "profile.json")]
    if not prof:
        return [*out, _missing("profile", run)]
    rep = prof["report"]
    out.append(("p", f"Counted by `spikeseq.profile` on {prof['samples']} test samples, per sample "
                     f"(T = {rep['time_steps']})."))
    if run.profile_png is None:  # the profiler's own figure shows the operations per layer when present
        images["ops.png"] = plots.ops_bars(rep["layers"])
        out.append(("img", "ops.png", images["ops.png"], "operations per layer"))
    energy = prof["energy"]
    rows = []
    for t, e in energy.items():
        on, off = e["memory_on"]["total_pj"], e["memory_off"]["total_pj"]
        notes = "; ".join(dict.fromkeys(e["memory_on"].get("notes", [])))
        rows.append([t, "-" if on is None else f"{on / 1e3:.4g} nJ", "-" if off is None else f"{off / 1e3:.4g} nJ",
                     notes[:300]])
    out.append(("table", ["hardware table", "energy / inference (with memory)", "compute only", "notes"], rows))
    if any(e["memory_on"].get("total_pj") for e in energy.values()):
        images["energy.png"] = plots.energy_bars(energy)
        images["energy_layers.png"] = plots.layer_energy_bars(energy)
        out += [("img", "energy.png", images["energy.png"], "energy per hardware table"),
                ("img", "energy_layers.png", images["energy_layers.png"], "energy per layer and hardware table")]
    if run.profile_md:
        out += [("h", 3, "Profiler tables"), ("md", run.profile_md)]
    elif "profile.md" in run.skipped:
        out += [("h", 3, "Profiler tables"), _skipped(run, "profile.md")]
    if run.profile_png is not None:
        images["profile.png"] = run.profile_png.read_bytes()
        out.append(("img", "profile.png", images["profile.png"], "profiler plot"))
    return out


#: rows of the export table: (key in the verification result, label, format)
EXPORT_ROWS = (
    ("samples", "samples x steps", None), ("output_agreement", "output agreement", "pct"),
    ("prediction_agreement", "prediction agreement", "pct"), ("model_accuracy", "accuracy, torch model", "pct"),
    ("graph_accuracy", "accuracy, exported graph", "pct"), ("accuracy_drop", "accuracy drop (points)", "pts"),
    ("output_max_abs_diff", "output max abs difference", None), ("layer_agreement", "spike agreement per layer", None),
    ("spike_metrics", "spike events per layer: precision / recall, firing rate model / graph", None),
    ("artifact", "file", None),
)


def _export_cell(r: dict[str, Any], key: str, fmt: str | None, root: Path) -> str:
    if key == "samples":
        return f"{r.get('samples')} x {r.get('steps')}"
    if key == "layer_agreement":
        la = r.get("layer_agreement") or {}
        return ", ".join(f"{k} {_pct(v)}" for k, v in la.items()) or "-"
    if key == "spike_metrics":
        sm = r.get("spike_metrics") or {}
        pc = lambda v: "n/a" if v is None else _pct(v)  # noqa: E731
        return ", ".join(f"{k} {pc(m['precision'])} / {pc(m['recall'])}, rate {m['rate_model']:.3f} / "
                         f"{m['rate_graph']:.3f}" for k, m in sm.items()) or "-"
    v = r.get(key)
    if v is None:
        return "-"
    if fmt == "pct":
        return _pct(v)
    if fmt == "pts":
        return f"{100 * v:.2f}"
    if key == "artifact":
        p = Path(v)
        return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
    return _f(v)


def _exports(run: RunArtefacts) -> list[Block]:
    out: list[Block] = [("h", 2, "Export verification")]
    damaged = [_skipped(run, rel) for rel in run.skipped if rel.startswith("export/")]
    if not run.exports:
        return [*out, *(damaged or [_missing("export", run)])]
    out += damaged
    targets = [t for t in EXPORT_TARGETS if t in run.exports]
    status = ["failed" if "error" in run.exports[t] else "verified" for t in targets]
    rows = [["status", *status]]
    for key, label, fmt in EXPORT_ROWS:
        rows.append([label, *["-" if "error" in run.exports[t] else _export_cell(run.exports[t], key, fmt, run.path)
                              for t in targets]])
    out.append(("table", ["", *targets], rows))
    out.append(("p", "The exported graph runs in spikeseq's event-driven interpreter (float for NIR, the target's "
                     "fixed-point numerics for Loihi-style and SpiNNaker2-style) on held-out test samples and is "
                     "compared with the torch model step by step."))
    for t in targets:
        if "error" in run.exports[t]:
            out.append(("note", f"{t}: not exported: {run.exports[t]['error']}"))
    for target, md in run.export_md.items():
        if "error" not in run.exports.get(target, {}):
            out += [("h", 3, f"Export to {target}"), ("md", md)]
    return out


def _config(run: RunArtefacts) -> list[Block]:
    return [("h", 2, "Configuration"), ("pre", json.dumps(run.config, indent=2))]


#: the files each section reads, named when a section cannot be built from them
SECTION_FILES = {"_summary": "run.json, config.json, eval.json, metrics.jsonl, profile.json, export/*.json",
                 "_training": "metrics.jsonl", "_evaluation": "eval.json", "_spikes": "eval.json",
                 "_energy": "profile.json", "_exports": "export/*.json", "_continual": "continual.json",
                 "_config": "config.json"}


#: the sections built from optional files only: one that cannot be built is left out with a note, not an error
OPTIONAL_SECTIONS = {"_training": "Training", "_evaluation": "Test evaluation", "_spikes": "Spikes",
                     "_energy": "Operations and energy", "_exports": "Export verification"}


def _section(fn: Any, run: RunArtefacts, images: dict[str, bytes] | None = None) -> list[Block]:
    """``fn(run)`` or ``fn(run, images)``. A file whose content the load-time checks let through but the section
    cannot use is, for a section of :data:`OPTIONAL_SECTIONS`, a :class:`ReportInputWarning` and a note naming the
    section's files (its images are dropped), else a :class:`ConfigError` naming them instead of a traceback."""
    local: dict[str, bytes] = {}
    try:
        blocks = fn(run) if images is None else fn(run, local)
    except SpikeseqError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError) as e:
        what = (f"the report section {fn.__name__.strip('_')!r} cannot be built from "
                f"{SECTION_FILES.get(fn.__name__, 'its files')} ({type(e).__name__}: {e})")
        if fn.__name__ not in OPTIONAL_SECTIONS:
            raise ConfigError(f"{run.path}: {what}; re-run the command that writes the file. Nothing was written"
                              ) from None
        warnings.warn(f"report: {run.path}: {what}; the section is left out", ReportInputWarning, stacklevel=3)
        return [("h", 2, OPTIONAL_SECTIONS[fn.__name__]),
                ("note", f"Left out: {what}. Re-run the command that writes the file to restore it.")]
    if images is not None:
        images.update(local)
    return blocks


def build_blocks(run: RunArtefacts) -> tuple[list[Block], dict[str, bytes]]:
    """The report's blocks (sections of the module docstring) and the PNG images they reference, by file name."""
    images: dict[str, bytes] = {}
    if run.continual is not None:
        return [*_section(_summary, run), *_section(_continual, run, images), *_section(_config, run)], images
    blocks = [*_section(_summary, run), *_section(_training, run, images), *_section(_evaluation, run, images),
              *_section(_spikes, run, images), *_section(_energy, run, images), *_section(_exports, run),
              *_section(_config, run)]
    return blocks, images


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``
    (:func:`spikeseq._atomic.write_bytes`)."""
    from spikeseq._atomic import write_bytes

    write_bytes(path, data)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write the report of a run; returns ``{"html": path, "markdown": path}``."""
    run = load(run_dir)
    from spikeseq._atomic import ensure_dir

    out = Path(out_dir) if out_dir is not None else run.path / "report"
    blocks, images = build_blocks(run)  # everything is built before the first file is written
    ensure_dir(out)
    for name in [*images, "report.md", "index.html"]:  # every output path checked before the first write
        if (out / name).exists() and not (out / name).is_file():
            raise OutputError(f"{out / name} exists and is not a file; remove or rename it, or choose another "
                              "--out folder. Nothing was written")
    title = f"spikeseq run report: {run.name}"
    for name, data in images.items():
        atomic_write(out / name, data)
    atomic_write(out / "report.md", to_markdown(title, blocks).encode("utf-8"))
    atomic_write(out / "index.html", to_html(title, blocks).encode("utf-8"))
    return {"html": out / "index.html", "markdown": out / "report.md"}
