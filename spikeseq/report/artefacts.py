"""The files of a run directory that a report reads (written by ``spikeseq train/eval/profile/export``).

The report layer reads files only: it never imports :mod:`spikeseq.train`, so a report can be rebuilt from a
copied run directory without the data or the model code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError

EXPORT_TARGETS = ("nir", "loihi", "spinnaker2")


def _read_json(path: Path) -> Any:
    """A JSON object artefact, ``None`` when the file is missing; :class:`ConfigError` when it is corrupt."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        value = e
    if not isinstance(value, dict):
        why = value if isinstance(value, Exception) else f"a JSON {type(value).__name__}"
        raise ConfigError(f"{path} is corrupt (expected a JSON object, got {why}); nothing was changed. Re-run the "
                          "command that writes it (run.json: restore it from a backup)")
    return value


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

    @property
    def name(self) -> str:
        """The run's name: the config's ``name``, else the directory name."""
        return self.config.get("name") or self.path.name


def load(path: str | Path) -> RunArtefacts:
    """Read the artefacts of run directory ``path``; ``ConfigError`` if missing, not a run, or corrupt JSON."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"run directory not found: {path} (create one with `spikeseq train CONFIG`)")
    meta = _read_json(path / "run.json")
    if meta is None:
        raise ConfigError(f"{path} is not a spikeseq run directory (no run.json); give the --out directory of a "
                          "`spikeseq train` run")
    config = _read_json(path / "config.json") or {}
    metrics = []
    if (path / "metrics.jsonl").is_file():
        for line in (path / "metrics.jsonl").read_text().splitlines():
            try:
                metrics.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    exports, export_md = {}, {}
    export_dir = path / "export"
    for target in EXPORT_TARGETS:
        d = _read_json(export_dir / f"{target}.json")
        if d is not None:
            exports[target] = d
            md = export_dir / f"{target}.md"
            if md.is_file():
                export_md[target] = md.read_text()
    png = path / "profile.png"
    md = path / "profile.md"
    return RunArtefacts(path, meta, config, metrics, _read_json(path / "eval.json"), _read_json(path / "profile.json"),
                        md.read_text() if md.is_file() else None, png if png.is_file() else None, exports, export_md)
