"""The README's Python tour runs as written, and what it prints is what its comment says: the Loihi energy per
sample (``ProfileReport`` counts are per sample, so ``estimate()`` is already per sample: no division by the batch)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _tour() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    tour = [b for b in blocks if "report.energy(" in b and "count(net, x)" in b]
    assert len(tour) == 1, "the README has one Python tour block that profiles the net"
    return tour[0]


def test_tour_runs_and_prints_the_energy_per_sample():
    code = _tour()
    assert "/ 32" not in code
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), ns)
    printed = float(out.getvalue().strip().splitlines()[-1])
    report, x = ns["report"], ns["x"]
    assert x.shape[1] == 32 and ns["y"].shape == (100, 32, 20)
    assert printed == pytest.approx(report.energy("loihi").total_pj)
    # per sample: the same net on the first 8 samples gives the same order of magnitude, not 4x less
    from spikeseq.profile import count

    small = count(ns["net"], x[:, :8]).energy("loihi").total_pj
    assert 0.7 < small / printed < 1.3
