"""The files of a run directory that a report reads (written by ``spikeseq train/eval/profile/export``).

The report layer reads files only: it never imports :mod:`spikeseq.train`, so a report can be rebuilt from a
copied run directory without the data or the model code. ``run.json`` and ``config.json`` (and a continual run's
``continual.json``) are required: a damaged one is a :class:`ConfigError`. The other inputs are optional: a damaged
one (corrupt JSON, wrong schema, undecodable text) is left out with a :class:`ReportInputWarning` naming the file
and the problem, and recorded in :attr:`RunArtefacts.skipped` so that the report says so.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError

EXPORT_TARGETS = ("nir", "loihi", "spinnaker2")


class ReportInputWarning(UserWarning):
    """An optional input of a report is damaged: the report is written without it, and says so."""


def remedy(rel: str, run: Path | str) -> str:
    """How to write the optional input ``rel`` (a path relative to the run directory ``run``) again."""
    if rel.startswith("export/"):
        return f"run `spikeseq export {run} --target {Path(rel).stem}`"
    if rel in ("eval.json", "profile.json", "profile.md"):
        return f"run `spikeseq {Path(rel).stem} {run}`"
    return "repair or delete its damaged line (`spikeseq train` writes one line per epoch)"


#: the end of the load-time checks' messages, replaced by :func:`remedy` for optional inputs
_GENERIC_FIX = "; re-run the command that writes it"


def _read_json(path: Path, fix: str = "; nothing was changed. Re-run the command that writes it (run.json: restore "
                                     "it from a backup)") -> Any:
    """A JSON object artefact, ``None`` when the file is missing; :class:`ConfigError` (ending with ``fix``) when it
    is corrupt."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        value = e
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a JSON file; remove or rename it, or re-run the command that "
                          "writes it") from None
    except OSError as e:
        raise ConfigError(f"{path} cannot be read ({e.strerror or e})") from None
    if not isinstance(value, dict):
        why = value if isinstance(value, Exception) else f"a JSON {type(value).__name__}"
        raise ConfigError(f"{path} is corrupt (expected a JSON object, got {why}){fix}")
    return value


NUM = (int, float)

#: The keys of each artefact that the report reads: key -> (type(s), required) or a nested schema (a required
#: object). Checked when a file is read, so a damaged file is one error naming the file and key, not a traceback.
Schema = dict[str, Any]
RUN_SCHEMA: Schema = {"status": (str, False), "seed": (int, False), "world_size": (int, False),
                      "created": (str, False), "versions": (dict, False), "git": (str, False),
                      "command": (list, False)}
CONFIG_SCHEMA: Schema = {"name": (str, False), "model": (dict, False), "data": (dict, False)}
EVAL_SCHEMA: Schema = {
    "checkpoint": (str, True), "epoch": (int, True), "best_val": (dict, True), "classes": (list, True),
    "data": {"n_train": (int, True), "n_val": (int, True), "n_test": (int, True)},
    "test": {"n": (int, True), "loss": (NUM, True), "acc": (NUM, False), "confusion": (list, False),
             "bpc": (NUM, False), "perplexity": (NUM, False), "tokens": (int, False)},
    "spikes": {"samples": (int, True), "layers": (list, True), "raster": (dict, True)},
    "model": {"parameters": (int, True)},
}
SPIKE_LAYER_SCHEMA: Schema = {"name": (str, True), "neurons": (int, True), "steps": (int, True),
                              "rate": (NUM, True), "spikes_per_sample": (NUM, True)}
RASTER_SCHEMA: Schema = {"neurons": (int, True), "steps": (int, True), "events": (list, True)}
METRICS_SCHEMA: Schema = {"epoch": (int, True), "step": (int, True), "train_loss": (NUM, True),
                          "train_acc": (NUM, True), "val_loss": (NUM, False), "val_acc": (NUM, False),
                          "lr": (NUM, False), "time_s": (NUM, False)}
PROFILE_SCHEMA: Schema = {"samples": (int, True), "energy": (dict, True),
                          "report": {"time_steps": (int, True), "layers": (list, True),
                                     "totals_per_sample": (dict, True)}}
PROFILE_LAYER_SCHEMA: Schema = {"name": (str, True), "totals_per_sample": (dict, True)}
ENERGY_SCHEMA: Schema = {"memory_on": {"total_pj": (NUM, False), "notes": (list, False),
                                       "per_layer_pj": (dict, False)},
                         "memory_off": {"total_pj": (NUM, False)}}
EXPORT_SCHEMA: Schema = {"error": (str, False), "samples": (int, False), "steps": (int, False),
                         "output_agreement": (NUM, False), "prediction_agreement": (NUM, False),
                         "model_accuracy": (NUM, False), "graph_accuracy": (NUM, False),
                         "accuracy_drop": (NUM, False), "output_max_abs_diff": (NUM, False),
                         "layer_agreement": (dict, False), "spike_metrics": (dict, False),
                         "artifact": (str, False)}
SPIKE_METRIC_SCHEMA: Schema = {"precision": (NUM, False), "recall": (NUM, False), "rate_model": (NUM, True),
                               "rate_graph": (NUM, True)}
CONTINUAL_SCHEMA: Schema = {"R": (list, True), "acc": (NUM, True), "bwt": (NUM, True), "method": (str, True),
                            "stream": (str, True), "setting": (str, False), "tasks": (list, False),
                            "diagnostics": (dict, False)}


def _type_name(types: Any) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return "a number" if set(types) == {int, float} else " or ".join(names.get(t, t.__name__) for t in types)


def check(path: Path | str, obj: Any, schema: Schema, where: str = "") -> Any:
    """``obj`` (a JSON value read from ``path``) checked against ``schema``; :class:`ConfigError` naming the file
    and the key that is missing or of the wrong type. Returns ``obj``."""
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: {where.rstrip('.') or 'the file'} must be a JSON object, not "
                          f"{type(obj).__name__} {json.dumps(obj)[:60]}; re-run the command that writes it")
    for key, spec in schema.items():
        name = f"{where}{key}"
        if isinstance(spec, dict):
            if key not in obj:
                raise ConfigError(f"{path}: no {name!r}; re-run the command that writes it")
            check(path, obj[key], spec, f"{name}.")
            continue
        types, required = spec
        v = obj.get(key)
        if v is None:
            if required:
                raise ConfigError(f"{path}: no {name!r}; re-run the command that writes it")
            continue
        tt = types if isinstance(types, tuple) else (types,)
        if not isinstance(v, tt) or (isinstance(v, bool) and bool not in tt):
            raise ConfigError(f"{path}: {name!r} must be {_type_name(types)}, not {type(v).__name__} "
                              f"{json.dumps(v)[:60]}; re-run the command that writes it")
    return obj


def _check_items(path: Path, items: Any, schema: Schema, where: str) -> None:
    """Each value of the list or object ``items`` checked against ``schema``."""
    pairs = items.items() if isinstance(items, dict) else enumerate(items)
    for k, item in pairs:
        check(path, item, schema, f"{where}[{k!r}].")


def _check_eval(path: Path, ev: dict[str, Any]) -> dict[str, Any]:
    check(path, ev, EVAL_SCHEMA)
    _check_items(path, ev["spikes"]["layers"], SPIKE_LAYER_SCHEMA, "spikes.layers")
    _check_items(path, ev["spikes"]["raster"], RASTER_SCHEMA, "spikes.raster")
    if not isinstance(ev["best_val"].get("metric"), (*NUM, type(None))):
        raise ConfigError(f"{path}: 'best_val.metric' must be a number; re-run `spikeseq eval`")
    cm = ev["test"].get("confusion")
    if cm is not None and not all(isinstance(r, list) and all(isinstance(c, int) for c in r) for r in cm):
        raise ConfigError(f"{path}: 'test.confusion' must be a list of lists of counts; re-run `spikeseq eval`")
    return ev


def _check_profile(path: Path, prof: dict[str, Any]) -> dict[str, Any]:
    check(path, prof, PROFILE_SCHEMA)
    _check_items(path, prof["report"]["layers"], PROFILE_LAYER_SCHEMA, "report.layers")
    _check_items(path, prof["energy"], ENERGY_SCHEMA, "energy")
    return prof


def _check_export(path: Path, r: dict[str, Any]) -> dict[str, Any]:
    check(path, r, EXPORT_SCHEMA)
    for k, v in (r.get("layer_agreement") or {}).items():
        if not isinstance(v, NUM) or isinstance(v, bool):
            raise ConfigError(f"{path}: 'layer_agreement[{k!r}]' must be a number; re-run `spikeseq export`")
    _check_items(path, r.get("spike_metrics") or {}, SPIKE_METRIC_SCHEMA, "spike_metrics")
    return r


def _read_text(path: Path) -> str | None:
    """A text artefact, ``None`` when it is not a file; :class:`ConfigError` when it is not UTF-8 or unreadable."""
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text ({e}); re-run the command that writes it") from None
    except OSError as e:
        raise ConfigError(f"{path} cannot be read ({e.strerror or e})") from None


def _read_checked(path: Path, checker: Callable[[Path, dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
    value = _read_json(path, fix="")
    return None if value is None else checker(path, value)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl; a line cut off by an interrupted write is skipped, a record without the keys
    the report reads is a :class:`ConfigError` naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text ({e}); re-run `spikeseq train`") from None
    except OSError as e:
        raise ConfigError(f"{path} cannot be read ({e.strerror or e})") from None
    out = []
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i != last:  # only the last line can be cut off by a kill (each line is appended and fsynced)
                warnings.warn(f"report: left out line {i} of {path}: not JSON ({e}); the line was damaged after it "
                              "was written (a kill cuts off only the last line), so the training curves miss that "
                              "epoch: repair the line or re-run `spikeseq train`", ReportInputWarning, stacklevel=2)
            continue
        out.append(check(f"{path}:{i}", rec, METRICS_SCHEMA))
    return out


@dataclass
class RunArtefacts:
    """The artefacts of one run directory, each ``None``/empty when its file is absent.

    ``meta`` is run.json, ``config`` config.json, ``metrics`` the metrics.jsonl records, ``eval``/``profile`` the
    JSON of ``spikeseq eval``/``profile``, ``exports``/``export_md`` the export JSON and Markdown per target.
    """

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    eval: dict[str, Any] | None
    profile: dict[str, Any] | None
    profile_md: str | None
    profile_png: Path | None
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    export_md: dict[str, str] = field(default_factory=dict)
    #: ``continual.json`` of a ``task = "continual"`` run: accuracy matrix R, ACC, BWT, method, stream
    continual: dict[str, Any] | None = None
    #: damaged optional inputs left out: path relative to the run directory -> what is wrong with it
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The run's name: the config's ``name``, else the directory name."""
        return self.config.get("name") or self.path.name


def load(path: str | Path) -> RunArtefacts:
    """Read the artefacts of run directory ``path``; ``ConfigError`` if missing, not a run, or a required file
    (run.json, config.json, continual.json) is damaged. A damaged optional file is left out with a
    :class:`ReportInputWarning` and listed in ``skipped``."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"run directory not found: {path} (create one with `spikeseq train CONFIG`)")
    meta = _read_json(path / "run.json")
    if meta is None:
        raise ConfigError(f"{path} is not a spikeseq run directory (no run.json); give the --out directory of a "
                          "`spikeseq train` run")
    check(path / "run.json", meta, RUN_SCHEMA)
    config = check(path / "config.json", _read_json(path / "config.json") or {}, CONFIG_SCHEMA)
    skipped: dict[str, str] = {}

    def optional(rel: str, read: Callable[[Path], Any]) -> Any:
        try:
            return read(path / rel)
        except ConfigError as e:
            skipped[rel] = str(e).removesuffix(_GENERIC_FIX)
            warnings.warn(f"report: left out the damaged file {rel}: {skipped[rel]}; to restore it, "
                          f"{remedy(rel, path)}", ReportInputWarning, stacklevel=3)
            return None

    has_metrics = (path / "metrics.jsonl").is_file()
    metrics = (optional("metrics.jsonl", _read_metrics) if has_metrics else None) or []
    exports, export_md = {}, {}
    for target in EXPORT_TARGETS:
        d = optional(f"export/{target}.json", lambda p: _read_checked(p, _check_export))
        if d is not None:
            exports[target] = d
            md = optional(f"export/{target}.md", _read_text)
            if md is not None:
                export_md[target] = md
    png = path / "profile.png"
    ev = optional("eval.json", lambda p: _read_checked(p, _check_eval))
    prof = optional("profile.json", lambda p: _read_checked(p, _check_profile))
    prof_md = optional("profile.md", _read_text)
    cont = _read_json(path / "continual.json")
    return RunArtefacts(path, meta, config, metrics, ev, prof, prof_md, png if png.is_file() else None, exports,
                        export_md, cont if cont is None else check(path / "continual.json", cont, CONTINUAL_SCHEMA),
                        skipped)
