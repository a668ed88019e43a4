"""README tables rendered from records (benchmark and analysis JSON files) by a spec, not by code.

Training artifacts have fixed keys, so :mod:`spikeseq.report.results` renders them with code. Records (``spikeseq
bench ...`` output, per-seed continual-learning runs, collected language-model results) each have their own
shape, so a table of records is described by a spec file ``results/<area>/tables.toml`` beside the files it
reads; the code here knows no model or family::

    [[table]]
    name = "area-lm"                          # the README block <!-- results:area-lm -->
    label = ["model"]                         # headers of the label cells (label split at " | ")
    [[table.column]]
    header = "test BPC"
    path = "metrics.{key}.test.bpc"           # dotted JSON path; {var} filled from the row; a list: their
                                              # sum (all booleans: true iff all are)
    fmt = "{:.3f}"                            # a format string, or "sig" / "joules" / "yesno"
    agg = "mean_std"                          # over the row's files: one (default) | mean | mean_std | count
    [[table.row]]
    label = "EGRU"
    files = "lm.json"                         # relative to the spec's folder; a glob pattern for several seeds
    vars = {key = "egru"}
    cells = {"test BPC" = {path = "other.bpc"}}   # per-row override of a column's keys (optional)
    each = {stream = ["a", "b"]}              # optional: one row per combination, "{stream}" in label/files/paths

Column keys: ``header``, ``path``, ``fmt`` (default ``"{}"``), ``scale`` (multiplies numbers), ``reduce``
(``max`` / ``min`` / ``mean`` of a list value), ``agg`` and ``default`` (the cell text when the path is absent
or null; without it an absent path is an error and null is "n/a"). ``mean_std`` is the mean and sample standard
deviation over the files.
"""

from __future__ import annotations

import glob
import itertools
import json
import statistics
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError

SPEC_NAME = "tables.toml"
COLUMN_KEYS = {"header", "path", "fmt", "scale", "reduce", "agg", "default"}
ROW_KEYS = {"label", "files", "vars", "cells", "each"}
AGGS = ("one", "mean", "mean_std", "count")
REDUCERS: dict[str, Callable[[list[float]], float]] = {"max": max, "min": min, "mean": statistics.fmean}


def joules(pj: float) -> str:
    """Energy in pJ written with a readable unit: 97.6 nJ, 6.88 µJ."""
    for unit, scale in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def sig(v: float) -> str:
    """Three significant digits, no exponent below 1e4: 2826, 12.5, 1.45e6."""
    if v == 0:
        return "0"
    if abs(v) >= 1e4:
        mant, exp = f"{v:.2e}".split("e")
        return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


NAMED_FORMATS: dict[str, Callable[[Any], str]] = {"sig": sig, "joules": joules,
                                                  "yesno": lambda v: "yes" if v else "no"}


def find_specs(root: str | Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every table of every ``tables.toml`` under ``root``: name -> (spec file, table). Duplicate names fail."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(Path(root).rglob(SPEC_NAME)):
        try:
            spec = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML ({e}); fix the table spec") from None
        for table in spec.get("table", []):
            name = table.get("name")
            if not name:
                raise ConfigError(f"{path}: a [[table]] without a 'name'; name it after its README block")
            if name in out:
                raise ConfigError(f"results table {name!r} is defined twice: {out[name][0]} and {path}")
            out[name] = (path, table)
    return out


def _get(rec: Any, path: str, where: str) -> Any:
    """The value at a dotted ``path`` of ``rec`` (list indices as numbers); KeyError when absent."""
    cur = rec
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise KeyError(f"{where}: no {part!r} on the path {path!r}")
    return cur


def _value(rec: dict[str, Any], col: dict[str, Any], fill: dict[str, str], where: str) -> Any:
    paths = col["path"] if isinstance(col["path"], list) else [col["path"]]
    vals = [_get(rec, p.format(**fill), where) for p in paths]
    if col.get("reduce"):
        vals = [REDUCERS[col["reduce"]](v) if isinstance(v, list) else v for v in vals]
    if len(vals) == 1:
        v = vals[0]
    else:
        v = all(vals) if all(isinstance(x, bool) for x in vals) else sum(vals)
    if col.get("scale") is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
        v = v * col["scale"]
    return v


def _fmt(col: dict[str, Any], v: Any) -> str:
    fmt = col.get("fmt", "{}")
    if v is None:
        return str(col.get("default", "n/a"))
    return NAMED_FORMATS[fmt](v) if fmt in NAMED_FORMATS else fmt.format(v)


def _cell(recs: list[tuple[str, dict[str, Any]]], col: dict[str, Any], fill: dict[str, str]) -> str:
    agg = col.get("agg", "one")
    if agg == "count":
        return str(len(recs))
    if agg == "one" and len(recs) != 1:
        raise ConfigError(f"column {col['header']!r} reads one file but the row has {len(recs)}: "
                          f"{', '.join(p for p, _ in recs)}; set agg = \"mean\" or \"mean_std\"")
    try:
        vals = [_value(rec, col, fill, path) for path, rec in recs]
    except KeyError as e:
        if "default" in col:
            return str(col["default"])
        raise ConfigError(f"{e.args[0]}; fix the path or give the column a 'default'") from None
    if agg == "one":
        return _fmt(col, vals[0])
    mean = statistics.fmean(vals)
    if agg == "mean":
        return _fmt(col, mean)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{_fmt(col, mean)} ± {_fmt(col, std).lstrip('+')}"


def _check_keys(keys: Any, allowed: set[str], what: str, spec: Path) -> None:
    extra = set(keys) - allowed
    if extra:
        raise ConfigError(f"{spec}: unknown {what} key(s) {', '.join(sorted(extra))}; allowed: "
                          f"{', '.join(sorted(allowed))}")


def _expand(row: dict[str, Any]) -> list[dict[str, str]]:
    """The variable fillings of a row: its ``vars`` times every combination of its ``each`` lists."""
    each = row.get("each", {})
    out = []
    for combo in itertools.product(*each.values()):
        out.append({**row.get("vars", {}), **dict(zip(each, combo, strict=True))})
    return out


def _load(spec: Path, pattern: str) -> list[tuple[str, dict[str, Any]]]:
    base = spec.parent
    paths = sorted(glob.glob(str(base / pattern)))
    if not paths:
        raise ConfigError(f"{spec}: no file matches {pattern!r} under {base}; run the command that writes it")
    out = []
    for p in paths:
        try:
            out.append((str(Path(p).relative_to(base.parent.parent)), json.loads(Path(p).read_text())))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: corrupt JSON ({e}); restore it from git or re-run its command") from None
    return out


def render_spec(name: str, spec: Path, table: dict[str, Any]) -> str:
    """The Markdown table ``name`` described by ``table`` (from the spec file ``spec``), with its footer."""
    columns = table.get("column", [])
    label_headers = table.get("label", ["row"])
    for col in columns:
        _check_keys(col, COLUMN_KEYS, "column", spec)
        if "header" not in col or ("path" not in col and col.get("agg") != "count"):
            raise ConfigError(f"{spec}: table {name!r}: every column needs a 'header' and a 'path'")
        if col.get("agg", "one") not in AGGS or col.get("reduce", "max") not in REDUCERS:
            raise ConfigError(f"{spec}: column {col['header']!r}: agg must be one of {', '.join(AGGS)}, reduce "
                              f"one of {', '.join(REDUCERS)}")
    headers = [*label_headers, *(c["header"] for c in columns)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    files: set[str] = set()
    for row in table.get("row", []):
        _check_keys(row, ROW_KEYS, "row", spec)
        cells_over = row.get("cells", {})
        unknown = set(cells_over) - {c["header"] for c in columns}
        if unknown:
            raise ConfigError(f"{spec}: row {row.get('label')!r} overrides unknown column(s) {sorted(unknown)}")
        for fill in _expand(row):
            recs = _load(spec, row["files"].format(**fill))
            files.update(p for p, _ in recs)
            label = [c.strip() for c in row["label"].format(**fill).split(" | ")]
            if len(label) != len(label_headers):
                raise ConfigError(f"{spec}: label {row['label']!r} must have {len(label_headers)} part(s) separated "
                                  f"by ' | ' ({', '.join(label_headers)})")
            cells = [_cell(recs, {**c, **cells_over.get(c["header"], {})}, fill) for c in columns]
            lines.append("| " + " | ".join([*label, *cells]) + " |")
    if len(lines) == 2:
        raise ConfigError(f"{spec}: table {name!r} has no [[table.row]]")
    rel = "/".join(spec.parts[-3:])
    lines.append("")
    lines.append(f"<sub>Generated by `spikeseq results table` from {len(files)} record(s) under `results/` (spec "
                 f"`{rel}`, table `{name}`); do not edit by hand.</sub>")
    return "\n".join(lines) + "\n"
