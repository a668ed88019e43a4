"""ACC / BWT of an accuracy matrix: known answers, and equality with Avalanche's forgetting on the same matrix."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from spikeseq.continual import metrics
from spikeseq.errors import ContinualError

R = [[0.90, np.nan, np.nan],
     [0.80, 0.95, np.nan],
     [0.70, 0.85, 0.99]]


def test_known_answer():
    assert metrics.acc(R) == pytest.approx((0.70 + 0.85 + 0.99) / 3)
    assert metrics.bwt(R) == pytest.approx(((0.70 - 0.90) + (0.85 - 0.95)) / 2)
    assert metrics.bwt([[0.5]]) == 0.0


def test_bad_matrix():
    with pytest.raises(ContinualError, match="square"):
        metrics.acc([[1.0, 0.0]])
    with pytest.raises(ContinualError, match="NaN"):
        metrics.bwt([[0.9, 0.0], [np.nan, 0.8]])


def _avalanche_functional():
    """Avalanche's ``evaluation/functional.py`` (numpy only), loaded by path: importing the ``avalanche`` package
    itself needs torchvision, which spikeseq does not install (it pins torch)."""
    spec = importlib.util.find_spec("avalanche")
    if spec is None or spec.origin is None:
        pytest.skip("avalanche-lib is not installed (Makefile PEERS_NO_DEPS installs it)")
    path = Path(spec.origin).parent / "evaluation" / "functional.py"
    mod_spec = importlib.util.spec_from_file_location("_avalanche_functional", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def test_equals_avalanche_stream_bwt():
    av = _avalanche_functional()
    rng = np.random.default_rng(0)
    for t in (2, 3, 5):
        r = np.tril(rng.uniform(0.3, 1.0, (t, t)))
        f = av.forgetting(r)  # F[j, k] = R[k, k] - R[j, k] for j > k
        # Avalanche's stream forgetting after the last experience averages the experiences trained before it;
        # its BWT is minus that (forgetting_bwt.forgetting_to_bwt)
        assert metrics.bwt(r) == pytest.approx(-float(np.mean(f[-1, :-1])), abs=1e-12)
        assert metrics.acc(r) == pytest.approx(float(np.mean(r[-1])), abs=1e-12)
