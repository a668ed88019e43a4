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
import os
import statistics
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError

SPEC_NAME = "tables.toml"
COLUMN_KEYS = {"header", "path", "fmt", "scale", "reduce", "agg", "default"}
ROW_KEYS = {"label", "files", "vars", "cells", "each"}
TABLE_KEYS = {"name", "label", "column", "row"}
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
            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: invalid TOML ({e}); fix the table spec") from None
        tables = spec.get("table", [])
        if not tables:
            raise ConfigError(f"{path} defines no table (no [[table]] with a name and columns): the file is empty or "
                              f"lost its tables; restore it (e.g. `git checkout -- {path}`) or delete it if the README "
                              "has no block for its tables")
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConfigError(f"{path}: 'table' must be an array of tables: write [[table]] (two brackets) before "
                              "each table, not [table]")
        for table in tables:
            name = table.get("name")
            if name is not None and not isinstance(name, str):
                raise ConfigError(f"{path}: a table name must be a string, not {name!r}")
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
    vals = [_get(rec, _fill(p, fill, "path"), where) for p in paths]
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
    if fmt in NAMED_FORMATS:
        return NAMED_FORMATS[fmt](v)
    try:
        return fmt.format(v)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise ConfigError(f"fmt {fmt!r} cannot format the value {v!r} ({type(e).__name__}: {e}); use a format such "
                          f"as \"{{:.3f}}\" with one positional field, or one of {', '.join(NAMED_FORMATS)}") from None


def _fill(template: str, fill: Mapping[str, Any], what: str) -> str:
    """``template.format(**fill)``; :class:`ConfigError` naming ``what`` for an unknown ``{var}`` or a bad brace."""
    try:
        return template.format(**fill)
    except KeyError as e:
        raise ConfigError(f"{what} {template!r} uses {{{e.args[0]}}}, which the row does not define (row vars / "
                          f"each: {', '.join(fill) or 'none'})") from None
    except (ValueError, IndexError) as e:
        raise ConfigError(f"{what} {template!r} is not a valid template ({e}); write literal braces as {{{{ }}}}") \
            from None


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
    if Path(pattern).is_absolute():
        raise ConfigError(f"{spec}: files {pattern!r} is an absolute path; 'files' is a file name or glob pattern "
                          f"relative to the spec's folder {base}")
    paths = sorted(glob.glob(str(base / pattern)))
    if not paths:
        raise ConfigError(f"{spec}: no file matches {pattern!r} under {base}; run the command that writes it")
    out = []
    for p in paths:
        try:
            out.append((os.path.relpath(p, base.parent.parent), json.loads(Path(p).read_text(encoding="utf-8"))))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: corrupt JSON ({e}); restore it from git or re-run its command") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot be read ({e.strerror or e}); the spec {spec} matches it") from None
    return out


def _check_column(col: dict[str, Any], where: str) -> None:
    """The types of a column's keys (a wrong type is a :class:`ConfigError`, not a traceback later)."""
    header = col.get("header")
    if header is not None and not isinstance(header, str):
        raise ConfigError(f"{where}: a column 'header' must be a string, not {header!r}")
    cwhere = f"{where}, column {header!r}"
    path = col.get("path")
    if path is not None and not (isinstance(path, str) or (isinstance(path, list) and path
                                                            and all(isinstance(p, str) for p in path))):
        raise ConfigError(f"{cwhere}: 'path' must be a dotted path string or a list of them, not {path!r}")
    if "fmt" in col and not isinstance(col["fmt"], str):
        raise ConfigError(f"{cwhere}: 'fmt' must be a format string such as \"{{:.3f}}\" or one of "
                          f"{', '.join(NAMED_FORMATS)}, not {col['fmt']!r}")
    if "scale" in col and (not isinstance(col["scale"], (int, float)) or isinstance(col["scale"], bool)):
        raise ConfigError(f"{cwhere}: 'scale' must be a number, not {col['scale']!r}")
    for key in ("agg", "reduce"):
        if key in col and not isinstance(col[key], str):
            raise ConfigError(f"{cwhere}: {key!r} must be a string, not {col[key]!r}")


def _check_row(row: dict[str, Any], where: str, spec: Path) -> None:
    """The keys and types of a row."""
    label = row.get("label")
    if not isinstance(label, str):
        raise ConfigError(f"{where}: every [[table.row]] needs a 'label' string (got {label!r})")
    rwhere = f"{where}, row {label!r}"
    if not isinstance(row.get("files"), str):
        raise ConfigError(f"{rwhere}: needs 'files', a file name or glob pattern relative to the spec's folder "
                          f"(got {row.get('files')!r})")
    if not isinstance(row.get("vars", {}), dict):
        raise ConfigError(f"{rwhere}: 'vars' must be a table, e.g. vars = {{key = \"egru\"}}")
    each = row.get("each", {})
    if not isinstance(each, dict) or not all(isinstance(v, list) for v in each.values()):
        raise ConfigError(f"{rwhere}: 'each' must map names to lists, e.g. each = {{stream = [\"a\", \"b\"]}}")
    cells = row.get("cells", {})
    if not isinstance(cells, dict) or not all(isinstance(v, dict) for v in cells.values()):
        raise ConfigError(f"{rwhere}: 'cells' must map column headers to tables of column keys")
    for header, over in cells.items():
        _check_keys(over, COLUMN_KEYS, "cells", spec)
        _check_column({"header": header, **over}, rwhere)


def _safe_cell(recs: list[tuple[str, dict[str, Any]]], col: dict[str, Any], fill: dict[str, str], where: str) -> str:
    """:func:`_cell`, with any failure a :class:`ConfigError` naming the spec, table, row, column and files."""
    cwhere = f"{where}, column {col['header']!r}"
    try:
        return _cell(recs, col, fill)
    except ConfigError as e:
        raise ConfigError(f"{cwhere}: {e}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, statistics.StatisticsError) as e:
        raise ConfigError(f"{cwhere}: cannot compute the cell from {', '.join(p for p, _ in recs)} "
                          f"({type(e).__name__}: {e}); check the path, fmt, reduce and agg against the files") \
            from None


def render_spec(name: str, spec: Path, table: dict[str, Any]) -> str:
    """The Markdown table ``name`` described by ``table`` (from the spec file ``spec``), with its footer."""
    columns = table.get("column", [])
    label_headers = table.get("label", ["row"])
    where = f"{spec}: table {name!r}"
    _check_keys(table, TABLE_KEYS, "table", spec)
    if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
        raise ConfigError(f"{where}: columns must be written [[table.column]] (an array of tables)")
    if not isinstance(table.get("row", []), list) or not all(isinstance(r, dict) for r in table.get("row", [])):
        raise ConfigError(f"{where}: rows must be written [[table.row]] (an array of tables)")
    if not isinstance(label_headers, list) or not all(isinstance(h, str) for h in label_headers):
        raise ConfigError(f"{where}: 'label' must be a list of header strings, e.g. label = [\"model\"]")
    for col in columns:
        _check_column(col, where)
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
        _check_row(row, where, spec)
        cells_over = row.get("cells", {})
        unknown = set(cells_over) - {c["header"] for c in columns}
        if unknown:
            raise ConfigError(f"{spec}: row {row.get('label')!r} overrides unknown column(s) {sorted(unknown)}")
        for fill in _expand(row):
            rwhere = f"{where}, row {row['label']!r}"
            recs = _load(spec, _fill(row["files"], fill, f"{rwhere}: files"))
            files.update(p for p, _ in recs)
            label = [c.strip() for c in _fill(row["label"], fill, f"{rwhere}: label").split(" | ")]
            if len(label) != len(label_headers):
                raise ConfigError(f"{spec}: label {row['label']!r} must have {len(label_headers)} part(s) separated "
                                  f"by ' | ' ({', '.join(label_headers)})")
            cells = [_safe_cell(recs, {**c, **cells_over.get(c["header"], {})}, fill, rwhere) for c in columns]
            lines.append("| " + " | ".join([*label, *cells]) + " |")
    if len(lines) == 2:
        raise ConfigError(f"{spec}: table {name!r} has no [[table.row]]")
    rel = "/".join(spec.parts[-3:])
    lines.append("")
    lines.append(f"<sub>Generated by `spikeseq results table` from {len(files)} record(s) under `results/` (spec "
                 f"`{rel}`, table `{name}`); do not edit by hand.</sub>")
    return "\n".join(lines) + "\n"
