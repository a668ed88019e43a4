"""Hardware tables (``hardware/*.toml``), read through :mod:`spikeseq.hardware`.

A table describes one target: its ``limits`` (per core / per chip capacities), number ``formats`` (bit widths and
ranges) and ``energy`` per operation. Every number carries a ``source``: each entry is a TOML table
``{value = ..., unit = "...", source = "..."}`` and a table that holds a number but no non-empty ``source`` string
fails to load (:class:`~spikeseq.errors.ConfigError`). The schema and the key names are documented in
``hardware/README.md``.

    >>> spec = load("loihi")
    >>> spec.limit("neurons_per_core")          # the plain value
    1024
    >>> spec.energy["synaptic_op"].pj           # an EnergyEntry, converted to picojoules
    23.6
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeseq.errors import ConfigError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

__all__ = ["EnergyEntry", "Entry", "HardwareSpec", "available", "hardware_dir", "load"]

#: Energy units accepted in ``[energy.*]`` entries and their factor to picojoules.
ENERGY_UNITS_PJ: dict[str, float] = {"fJ": 1e-3, "pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "µJ": 1e6, "mJ": 1e9, "J": 1e12}
SECTIONS = ("limits", "formats", "energy")


@dataclass(frozen=True)
class Entry:
    """One sourced number: ``value`` in ``unit``, taken from ``source`` (``note`` says how it was derived)."""

    value: float | int
    unit: str
    source: str
    note: str = ""

    @property
    def pj(self) -> float:
        """The value in picojoules (energy entries only)."""
        if self.unit not in ENERGY_UNITS_PJ:
            raise ConfigError(f"unit {self.unit!r} is not an energy unit; use one of {sorted(ENERGY_UNITS_PJ)}")
        return float(self.value) * ENERGY_UNITS_PJ[self.unit]


#: Energy entries are plain :class:`Entry` objects whose unit is one of :data:`ENERGY_UNITS_PJ`.
EnergyEntry = Entry


@dataclass(frozen=True)
class HardwareSpec:
    """A parsed hardware table. ``limits``/``formats``/``energy`` map key -> :class:`Entry`; ``raw`` is the TOML."""

    name: str
    description: str
    kind: str
    limits: dict[str, Entry]
    formats: dict[str, Entry]
    energy: dict[str, Entry]
    notes: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    path: str = ""

    def limit(self, key: str) -> float | int:
        """The value of ``limits.<key>``; a missing key raises with the list of keys this target has."""
        return self._get("limits", self.limits, key).value

    def format(self, key: str) -> float | int:
        """The value of ``formats.<key>``."""
        return self._get("formats", self.formats, key).value

    def energy_pj(self, key: str) -> float:
        """``energy.<key>`` in picojoules."""
        return self._get("energy", self.energy, key).pj

    def has_energy(self) -> bool:
        """Whether the table gives any energy per operation (some targets publish none)."""
        return bool(self.energy)

    def _get(self, section: str, table: dict[str, Entry], key: str) -> Entry:
        if key not in table:
            have = ", ".join(sorted(table)) or "(none)"
            extra = f" Notes: {' '.join(self.notes)}" if self.notes and section == "energy" else ""
            raise ConfigError(f"hardware table {self.name!r} has no {section}.{key}; it has: {have}.{extra}")
        return table[key]


def hardware_dir() -> Path:
    """The directory holding the tables: ``$SPIKESEQ_HARDWARE``, the wheel's ``spikeseq/_data/hardware``, or the
    repository's ``hardware/`` (editable installs)."""
    env = os.environ.get("SPIKESEQ_HARDWARE")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / "hardware"
    if packaged.is_dir():
        return packaged
    return here.parent / "hardware"


def available() -> list[str]:
    """Names of the hardware tables found in :func:`hardware_dir` (file stems, sorted)."""
    d = hardware_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.toml"))


def load(name: str | os.PathLike) -> HardwareSpec:
    """Load a hardware table by name (``"loihi"``) or by path to a ``.toml`` file.

    Raises :class:`~spikeseq.errors.ConfigError` for an unknown name (listing the available ones), a TOML syntax
    error, or a number without a ``source``.
    """
    s = os.fspath(name)
    path = Path(s)
    if not (s.endswith(".toml") or os.sep in s or "/" in s):
        path = hardware_dir() / f"{s}.toml"
        if not path.is_file():
            raise ConfigError(
                f"unknown hardware table {s!r}; available: {', '.join(available()) or '(none)'} "
                f"(looked in {hardware_dir()}; set SPIKESEQ_HARDWARE to use another directory)"
            )
    if not path.is_file():
        raise ConfigError(f"hardware table file {path} does not exist; available names: {', '.join(available())}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e}); fix the syntax") from e
    return parse(raw, path=str(path), default_name=path.stem)


def parse(raw: dict[str, Any], *, path: str = "<dict>", default_name: str = "") -> HardwareSpec:
    """Validate a TOML document (already parsed) and build the :class:`HardwareSpec`."""
    _check_sources(raw, path, ())
    name = str(raw.get("name", default_name))
    kind = str(raw.get("kind", "none"))
    if kind not in ("arithmetic", "neuromorphic", "dense", "none"):
        raise ConfigError(f"{path}: kind = {kind!r} must be one of 'arithmetic', 'neuromorphic', 'dense', 'none'")
    sections: dict[str, dict[str, Entry]] = {}
    for sec in SECTIONS:
        table = raw.get(sec, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{sec}] must be a table of entries {{value, unit, source}}")
        sections[sec] = {k: _entry(v, path, f"{sec}.{k}") for k, v in table.items()}
    for key, e in sections["energy"].items():
        if e.unit not in ENERGY_UNITS_PJ:
            raise ConfigError(
                f"{path}: energy.{key} has unit {e.unit!r}; energy units are {', '.join(ENERGY_UNITS_PJ)}"
            )
    notes = raw.get("notes", [])
    if isinstance(notes, str):
        notes = [notes]
    return HardwareSpec(
        name=name, description=str(raw.get("description", "")), kind=kind, limits=sections["limits"],
        formats=sections["formats"], energy=sections["energy"], notes=tuple(str(n) for n in notes), raw=raw,
        path=path,
    )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_sources(node: Any, path: str, where: tuple[str, ...]) -> None:
    """Every table that holds a number directly must hold a non-empty ``source`` string."""
    if isinstance(node, dict):
        numbers = [k for k, v in node.items() if _is_number(v) or (isinstance(v, list) and any(map(_is_number, v)))]
        src = node.get("source")
        if numbers and not (isinstance(src, str) and src.strip()):
            loc = ".".join(where) or "(top level)"
            raise ConfigError(
                f"{path}: table [{loc}] holds the number(s) {', '.join(numbers)} but no source; every number in a "
                f"hardware table needs source = \"<paper / datasheet / code it comes from>\""
            )
        for k, v in node.items():
            _check_sources(v, path, (*where, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_sources(v, path, (*where, str(i)))


def _entry(v: Any, path: str, where: str) -> Entry:
    if not isinstance(v, dict) or "value" not in v:
        raise ConfigError(f"{path}: {where} must be a table {{value = ..., unit = \"...\", source = \"...\"}}")
    value = v["value"]
    if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{path}: {where}.value must be a finite number, got {value!r}")
    return Entry(value=value, unit=str(v.get("unit", "")), source=str(v["source"]), note=str(v.get("note", "")))
