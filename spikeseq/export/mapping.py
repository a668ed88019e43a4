"""Placement of neuron populations onto cores (Loihi) or processing elements (SpiNNaker2), and the report.

Each population is split into equal contiguous slices, one per core/PE; the largest slice size that satisfies every
per-unit limit is chosen (input axons, synapse memory, neurons per core for Loihi; SRAM bytes and atoms per PE for
SpiNNaker2). A population that does not fit even one neuron per unit, or a total beyond the chip, is reported in
``problems`` (and :func:`raise_if_unfit` turns it into an :class:`~spikeseq.errors.ExportError` naming the node and
the limit).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from spikeseq.errors import ExportError


@dataclass
class PlacedPopulation:
    """One neuron population placed on cores/PEs: sizes, largest ``fan_in``, ``per_unit`` neurons on each of ``units``.

    ``usage`` maps each per-unit limit to ``(worst use, limit)``, e.g. ``{"input_axons": (n, limit)}``.
    """

    node: str
    neurons: int
    fan_in: int             # largest number of synapses onto one neuron
    synapses: int
    per_unit: int           # neurons per core / PE
    units: int              # cores / PEs used
    usage: dict = field(default_factory=dict)   # worst-case unit usage vs limit, e.g. {"input_axons": (n, limit)}


@dataclass
class MappingReport:
    """Placement of a whole graph on a target: populations, cores/PEs used, and the ``problems`` that stop a fit."""

    target: str
    unit: str               # "core" or "PE"
    populations: list[PlacedPopulation]
    units_used: int
    units_per_chip: int
    problems: list[str]
    assumptions: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """Whether the graph fits (no ``problems``)."""
        return not self.problems

    @property
    def chips(self) -> int:
        """Chips needed: ``ceil(units_used / units_per_chip)``, at least 1."""
        return max(1, math.ceil(self.units_used / self.units_per_chip))

    def to_dict(self) -> dict:
        """The report as plain JSON-ready data, with ``fits`` and ``chips`` added."""
        d = asdict(self)
        d.update(fits=self.fits, chips=self.chips)
        return d

    def to_markdown(self) -> str:
        """The report as a Markdown table (one row per population) plus problems and assumptions."""
        lines = [f"**{self.target} mapping**: {self.units_used} {self.unit}s used "
                 f"({self.chips} chip(s) of {self.units_per_chip}); {'fits' if self.fits else 'DOES NOT FIT'}", "",
                 f"| population | neurons | fan-in | synapses | neurons/{self.unit} | {self.unit}s | worst usage |",
                 "|---|---|---|---|---|---|---|"]
        for p in self.populations:
            use = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in p.usage.items())
            lines.append(f"| {p.node} | {p.neurons} | {p.fan_in} | {p.synapses} | {p.per_unit} | {p.units} | {use} |")
        if self.problems:
            lines += ["", "Does not fit:"] + [f"- {p}" for p in self.problems]
        if self.assumptions:
            lines += ["", "Assumptions:"] + [f"- {a}" for a in self.assumptions]
        return "\n".join(lines)


def raise_if_unfit(report: MappingReport) -> None:
    """Raise ``ExportError`` naming every problem when ``report`` does not fit its target."""
    if report.problems:
        raise ExportError(f"the graph does not fit {report.target}: " + "; ".join(report.problems))


def column_slices(m: sp.csc_matrix, per_unit: int) -> list[tuple[int, int, int]]:
    """(distinct presynaptic rows, synapses, max column nnz) for each slice of ``per_unit`` columns."""
    m = sp.csc_matrix(m)
    n = m.shape[1]
    col_nnz = np.diff(m.indptr)
    starts = np.arange(0, n, per_unit)
    nnz = np.add.reduceat(col_nnz, starts) if n else np.zeros(0, np.int64)
    peak = np.maximum.reduceat(col_nnz, starts) if n else np.zeros(0, np.int64)
    if per_unit == 1:
        rows = col_nnz
    else:
        rows = np.array([np.unique(m.indices[m.indptr[lo]:m.indptr[min(n, lo + per_unit)]]).size for lo in starts])
    return [(int(r), int(z), int(p)) for r, z, p in zip(rows, nnz, peak)]


def best_split(n: int, cap: int, ok) -> int:
    """Largest per-unit size in 1..min(n, cap) for which ``ok(size)`` holds (0 if none); ``ok`` is assumed
    monotone (smaller slices never use more per unit)."""
    hi = min(n, cap)
    if hi < 1 or not ok(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def place_on_pes(name: str, m: sp.csc_matrix, n: int, lim, *, state_bytes: int, group: int = 1,
                 what: str = "neuron") -> tuple[PlacedPopulation, str | None]:
    """SpiNNaker2 placement of population ``name``: ``n`` neurons (``what``) of ``state_bytes`` each, whose synapses
    are the ``group`` consecutive columns per neuron of ``m`` (``[pre, n * group]``, CSR rows stored on the PE of their
    columns), split into equal slices that fit a PE's SRAM (``lim``: :func:`spikeseq.graph.targets.spinnaker2`) and
    atom limit. Returns the placement and the problem (``None`` when it fits)."""
    budget = lim.sram_bytes_per_pe - lim.reserved_bytes_per_pe

    def bytes_of(size: int) -> int:
        return max(size * state_bytes + rows * lim.row_header_bytes + nnz * lim.synapse_word_bytes
                   for rows, nnz, _ in column_slices(m, size * group))

    size = best_split(n, lim.max_atoms_per_pe, lambda s: bytes_of(s) <= budget)
    fan_in = int(np.diff(m.indptr).max(initial=0))
    if size == 0:
        return PlacedPopulation(name, n, fan_in, int(m.nnz), 0, 0, {}), (
            f"population {name!r}: one {what} with fan-in {fan_in} needs {bytes_of(1)} bytes, above the {budget} "
            f"bytes left of a PE's {lim.sram_bytes_per_pe} bytes SRAM")
    return PlacedPopulation(name, n, fan_in, int(m.nnz), size, math.ceil(n / size), {
        "sram_bytes": (bytes_of(size) + lim.reserved_bytes_per_pe, lim.sram_bytes_per_pe),
        "atoms": (size, lim.max_atoms_per_pe)}), None
