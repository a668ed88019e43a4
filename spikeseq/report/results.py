"""README results tables generated from the artifacts under ``results/``.

Every README number of a results table lives in a JSON artifact ``results/<family>/<recipe>-s<seed>.json``
(written by ``spikeseq train`` for a recipe with a ``[results]`` section, see :mod:`spikeseq.train.results`; or
converted from an older report with its provenance kept). Artifacts name the ``table`` they belong to and their
row ``label``; the artifacts of one label and ``producer`` (different seeds) form one row, so numbers of a
retired script and of ``spikeseq train`` are never averaged together. The README holds each table between
markers::

    <!-- results:lmu-har -->
    | ... generated ... |
    <!-- /results -->

:func:`update_readme` rewrites the blocks from the artifacts, :func:`check_readme` lists the blocks that differ
(``spikeseq results table --check``; a test runs it on the repository). Blocks of records (benchmarks, analyses,
per-seed runs of other tasks) are described by ``results/<area>/tables.toml`` specs instead of code
(:mod:`spikeseq.report.record_tables`).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError
from spikeseq.report.record_tables import find_specs, render_spec, sig
from spikeseq.report.record_tables import joules as _joules

BLOCK = re.compile(r"(<!-- results:(?P<table>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)
#: a block marker on a line of its own (a marker quoted inside prose, e.g. in backticks, is not one)
MARKER = re.compile(r"^<!-- (?:results:(?P<table>[\w.-]+)|(?P<close>/results)) -->[ \t]*$", re.M)


#: Records are the other JSON files under ``results/``: benchmark results (``spikeseq bench ...``) and analyses
#: (e.g. subspace angles) that README text quotes. They have no ``table``; each must name the command that wrote it.
RECORD_KEYS = ("command",)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: corrupt JSON ({e}); restore it from git or re-run its command") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None


def _is_artifact(rec: dict[str, Any]) -> bool:
    return isinstance(rec, dict) and "table" in rec


def load_records(root: str | Path) -> list[dict[str, Any]]:
    """All records (JSON files under ``root`` without a ``table``), each with its ``_path``; each must name the
    command that wrote it."""
    out = []
    for path in sorted(Path(root).rglob("*.json")):
        rec = _read(path)
        if _is_artifact(rec):
            continue
        if not isinstance(rec, dict) or any(k not in rec for k in RECORD_KEYS):
            raise ConfigError(f"{path}: neither a result artifact (no 'table') nor a record naming its 'command'; "
                              "re-run the command that writes it")
        rec["_path"] = str(path)
        out.append(rec)
    return out


#: the types of the artifact keys the tables read: (key, type(s), what)
ARTIFACT_TYPES = (("table", str, "a string"), ("label", str, "a string"), ("seed", int, "an integer"),
                  ("metrics", dict, "an object"), ("producer", str, "a string"))


def load(root: str | Path) -> list[dict[str, Any]]:
    """All training artifacts under ``root`` (JSON files with a ``table``, sorted by path), each with its
    ``_path``; records (see :func:`load_records`) are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"results folder not found: {root}")
    out = []
    for path in sorted(root.rglob("*.json")):
        art = _read(path)
        if not _is_artifact(art):
            continue
        for key in ("table", "label", "seed", "metrics"):
            if key not in art:
                raise ConfigError(f"{path}: not a result artifact (no {key!r}); see spikeseq.train.results")
        for key, types, what in ARTIFACT_TYPES:
            v = art.get(key)
            if (v is not None or key != "producer") and (not isinstance(v, types) or isinstance(v, bool)):
                raise ConfigError(f"{path}: {key!r} must be {what}, not {type(v).__name__} {json.dumps(v)[:60]}; "
                                  "re-run the command that writes it or fix the artifact")
        art["_path"] = str(path)
        out.append(art)
    return out


# --- formatting ---------------------------------------------------------------------------------------------------

def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _sig(v: float | None) -> str:
    """Three significant digits, engineering-free: 1.45e6, 2826, 12.5."""
    return "n/a" if v is None else sig(v)


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r["metrics"].get(key) for r in rows]
    vals = [v for v in vals if v is not None]
    return statistics.fmean(vals) if vals else None


def _acc(rows: list[dict]) -> str:
    accs = [r["metrics"]["test_acc"] for r in rows]
    if len(accs) == 1:
        return f"{_pct(accs[0])}%"
    return f"{_pct(statistics.fmean(accs))}% ({', '.join(_pct(a) for a in accs)})"


def _acc_std(rows: list[dict]) -> str:
    accs = [r["metrics"]["test_acc"] for r in rows]
    std = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{_pct(statistics.fmean(accs))} ± {_pct(std)}%"


def _sparsity(rows: list[dict]) -> str:
    v = _mean(rows, "activation_sparsity")
    spiking = any((r["metrics"].get("eff_acs") or 0) > 0 for r in rows)
    return "n/a (non-spiking)" if not spiking or v is None else f"{v:.3f}"


def _params(rows: list[dict]) -> str:
    p = rows[0]["metrics"]["params"]
    return f"{round(p / 1000)}k" if p >= 1000 else str(p)


def _energy(table: str, both: bool = False) -> Callable[[list[dict]], str]:
    """Mean energy per inference on a hardware table (``both``: memory terms on / off)."""

    def fmt(rows: list[dict]) -> str:
        vals = [r["metrics"].get("energy_pj", {}).get(table) for r in rows]
        on = [v["memory_on"] for v in vals if v and v.get("memory_on") is not None]
        off = [v["memory_off"] for v in vals if v and v.get("memory_off") is not None]
        if not on:
            return "n/a"
        if not both:
            return _joules(statistics.fmean(on))
        return f"{_joules(statistics.fmean(on))} / {_joules(statistics.fmean(off))}"
    return fmt


def _target(key: str, export: bool = False) -> Callable[[list[dict]], str]:
    """Mean and per-seed values of ``metrics.target[key]`` (``export``: of ``metrics.target.export[key]``) of runs
    trained for a target (:mod:`spikeseq.train.target`), as percentages; "n/a" where a run has none."""

    def fmt(rows: list[dict]) -> str:
        vals = []
        for r in rows:
            t = r["metrics"].get("target") or {}
            vals.append((t.get("export") or {}).get(key) if export else t.get(key))
        if any(v is None for v in vals):
            return "n/a"
        if len(vals) == 1:
            return f"{_pct(vals[0])}%"
        return f"{_pct(statistics.fmean(vals))}% ({', '.join(_pct(v) for v in vals)})"
    return fmt


def _spike_agreement(rows: list[dict]) -> str:
    """The lowest per-node spike agreement of target mode vs the interpreter over the rows' runs (1 = identical)."""
    vals = [v for r in rows for v in ((r["metrics"].get("target") or {}).get("export") or {})
            .get("spike_agreement", {}).values()]
    if not vals:
        return "n/a"
    return "identical" if min(vals) == 1.0 else f"{min(vals):.4f}"


def _export_samples(rows: list[dict]) -> str:
    n = {((r["metrics"].get("target") or {}).get("export") or {}).get("samples") for r in rows}
    return "n/a" if None in n or len(n) != 1 else str(n.pop())


@dataclass(frozen=True)
class Table:
    """A README table: the headers its labels fill (``label`` split at `` | ``) and the computed columns.

    ``select``: which artifacts form the table; ``None``: those whose ``table`` names it."""

    label_headers: tuple[str, ...]
    columns: tuple[tuple[str, Callable[[list[dict]], str]], ...]
    select: Callable[[dict], bool] | None = None


def _has_energy(art: dict) -> bool:
    """Float runs of ``spikeseq train`` with energy numbers (runs trained for a target are in the ``target`` table:
    their op counts are those of the float forward of the weights, not of the target's computation)."""
    return (art.get("producer") == "spikeseq train" and bool(art["metrics"].get("energy_pj"))
            and not art["metrics"].get("target"))


TABLES: dict[str, Table] = {
    "lmu-har": Table(("model", "dataset"), (
        ("seeds", lambda rs: str(len(rs))),
        ("test acc (per seed)", _acc),
        ("activation sparsity", _sparsity),
        ("eff. AC / sample", lambda rs: _sig(_mean(rs, "eff_acs"))),
        ("eff. MAC / sample", lambda rs: _sig(_mean(rs, "eff_macs"))),
        ("params", _params),
    )),
    "delays-temporal": Table(("delays",), (
        ("seeds", lambda rs: ", ".join(str(r["seed"]) for r in rs)),
        ("test acc per seed", lambda rs: ", ".join(f"{_pct(r['metrics']['test_acc'])}%" for r in rs)),
        ("mean ± std", _acc_std),
        ("eff. AC / sample", lambda rs: _sig(_mean(rs, "eff_acs"))),
        ("activation sparsity", _sparsity),
    )),
    "target": Table(("model", "dataset", "target"), (
        ("seeds", lambda rs: str(len(rs))),
        ("float, after the float epochs", _target("float_before_acc")),
        ("target mode (test set)", _target("target_acc")),
        ("exported graph, bit-exact interpreter", _target("graph_accuracy", export=True)),
        ("target mode on the same samples", _target("target_accuracy", export=True)),
        ("samples", _export_samples),
        ("spike agreement (lowest node)", _spike_agreement),
    )),
    "energy": Table(("row",), (
        ("recipe", lambda rs: f"`{rs[0].get('family')}/{rs[0].get('recipe')}`"),
        ("data", lambda rs: str(rs[0].get("config", {}).get("data", {}).get("name", "?"))),
        ("seeds", lambda rs: str(len(rs))),
        ("test acc", _acc),
        ("dense MACs", lambda rs: _sig(_mean(rs, "dense_macs"))),
        ("eff. ACs", lambda rs: _sig(_mean(rs, "eff_acs"))),
        ("eff. MACs", lambda rs: _sig(_mean(rs, "eff_macs"))),
        ("act. sparsity", _sparsity),
        ("Horowitz 45 nm (mem on / off)", _energy("horowitz45nm", both=True)),
        ("Loihi", _energy("loihi")),
        ("SpiNNaker 2", _energy("spinnaker2")),
        ("TrueNorth", _energy("truenorth")),
    ), select=_has_energy),
}


def _column(table: str, header: str, fn: Callable[[list[dict]], str], rows: list[dict]) -> str:
    """``fn(rows)``; a metric of the wrong type is a :class:`ConfigError` naming the artifacts and the column."""
    try:
        return fn(rows)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, statistics.StatisticsError) as e:
        raise ConfigError(f"table {table!r}, column {header!r}: cannot compute it from "
                          f"{', '.join(r['_path'] for r in rows)} ({type(e).__name__}: {e}); a metric is missing or "
                          "not a number: re-run the command that writes the artifact") from None


def render(table: str, artifacts: list[dict[str, Any]]) -> str:
    """The Markdown table ``table`` from the artifacts that name it (rows in order of first appearance)."""
    if table not in TABLES:
        raise ConfigError(f"unknown results table {table!r}; known tables: {', '.join(TABLES)}")
    spec = TABLES[table]
    rows: dict[tuple[str, str], list[dict]] = {}
    for art in artifacts:
        if spec.select(art) if spec.select is not None else art["table"] == table:
            label = art["label"] if spec.select is None else " ".join(art["label"].split(" | "))
            rows.setdefault((label, art.get("producer", "unknown")), []).append(art)
    if not rows:
        raise ConfigError(f"no artifact under results/ names the table {table!r}")
    headers = [*spec.label_headers, *(h for h, _ in spec.columns), "produced by"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for (label, producer), rs in sorted(rows.items(), key=lambda kv: (kv[0][1] != "spikeseq train", kv[0])):
        rs = sorted(rs, key=lambda r: r["seed"])
        cells = [c.strip() for c in label.split("|")] if spec.select is None else [label]
        if len(cells) != len(spec.label_headers):
            raise ConfigError(f"{rs[0]['_path']}: label {label!r} must have {len(spec.label_headers)} part(s) "
                              f"separated by ' | ' ({', '.join(spec.label_headers)})")
        lines.append("| " + " | ".join([*cells, *(_column(table, h, fn, rs) for h, fn in spec.columns),
                                        f"`{producer}`"]) + " |")
    n = sum(len(rs) for rs in rows.values())
    lines.append("")
    lines.append(f"<sub>Generated by `spikeseq results table` from {n} artifact(s) under `results/` (table "
                 f"`{table}`); do not edit by hand.</sub>")
    return "\n".join(lines) + "\n"


def render_block(name: str, root: str | Path, artifacts: list[dict[str, Any]] | None = None) -> str:
    """The README block ``name``: a training table (:data:`TABLES`, from the artifacts) or a records table
    described by a ``tables.toml`` under ``root`` (see :mod:`spikeseq.report.record_tables`)."""
    if name in TABLES:
        return render(name, load(root) if artifacts is None else artifacts)
    specs = find_specs(root)
    if name not in specs:
        raise ConfigError(f"unknown results table {name!r}; known tables: {', '.join([*TABLES, *specs])} (training "
                          "tables in spikeseq.report.results, record tables in results/*/tables.toml)")
    return render_spec(name, *specs[name])


def parse_blocks(text: str, source: str | Path = "README") -> list[tuple[str, int, int]]:
    """The results blocks of ``text`` as ``(name, body start, body end)`` offsets, parsed strictly: every opening
    ``<!-- results:NAME -->`` line must be closed by a ``<!-- /results -->`` line before the next opening marker,
    a closing marker must close a block and a name may appear once; otherwise :class:`ConfigError` naming the line
    (nothing is rewritten from a README whose markers are damaged)."""
    blocks: list[tuple[str, int, int]] = []
    seen: dict[str, int] = {}
    open_: tuple[str, int, int] | None = None  # name, line, body start

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    for m in MARKER.finditer(text):
        line = line_of(m.start())
        if m.group("table"):
            name = m.group("table")
            if open_ is not None:
                raise ConfigError(f"{source}:{open_[1]}: the block <!-- results:{open_[0]} --> is not closed (the next "
                                  f"block marker is on line {line}); add a <!-- /results --> line after its table. "
                                  "Nothing was changed")
            if name in seen:
                raise ConfigError(f"{source}:{line}: the results block {name!r} appears twice (first on line "
                                  f"{seen[name]}); remove one of them. Nothing was changed")
            seen[name] = line
            open_ = (name, line, min(m.end() + 1, len(text)))
        else:
            if open_ is None:
                raise ConfigError(f"{source}:{line}: a <!-- /results --> marker without an opening "
                                  "<!-- results:NAME --> line above it; remove it or add the opening marker. "
                                  "Nothing was changed")
            blocks.append((open_[0], open_[2], m.start()))
            open_ = None
    if open_ is not None:
        raise ConfigError(f"{source}:{open_[1]}: the block <!-- results:{open_[0]} --> is not closed before the end "
                          "of the file; add a <!-- /results --> line after its table. Nothing was changed")
    return blocks


def _replace(text: str, root: str | Path, source: str | Path = "README") -> tuple[str, list[str]]:
    blocks = parse_blocks(text, source)
    if not blocks:
        raise ConfigError(f"{source} has no <!-- results:NAME --> ... <!-- /results --> block (markers on lines "
                          "of their own); nothing to regenerate. Add the markers where a table belongs, or pass the "
                          "right --readme")
    changed: list[str] = []
    artifacts = load(root)
    parts: list[str] = []
    pos = 0
    for name, start, end in blocks:
        body = render_block(name, root, artifacts)
        if body != text[start:end]:
            changed.append(name)
        parts += [text[pos:start], body]
        pos = end
    parts.append(text[pos:])
    return "".join(parts), changed


def _read_readme(readme: Path) -> str:
    try:
        return readme.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{readme} is not UTF-8 text ({e}); nothing was changed") from None
    except IsADirectoryError:
        raise ConfigError(f"{readme} is a directory, not a README file") from None
    except FileNotFoundError:
        raise ConfigError(f"README not found: {readme}; run from the repository root or pass --readme PATH") from None


def update_readme(readme: str | Path, root: str | Path) -> list[str]:
    """Regenerate every results block of ``readme`` from ``root``; returns the tables that changed.
    :class:`ConfigError` (and the file unchanged) when the README has no block or damaged markers."""
    from spikeseq.report.build import atomic_write

    readme = Path(readme)
    text, changed = _replace(_read_readme(readme), root, readme)
    if changed:
        atomic_write(readme, text.encode("utf-8"))
    return changed


def check_readme(readme: str | Path, root: str | Path) -> list[str]:
    """The results blocks of ``readme`` that differ from what ``root`` generates (empty: in sync)."""
    readme = Path(readme)
    return _replace(_read_readme(readme), root, readme)[1]
