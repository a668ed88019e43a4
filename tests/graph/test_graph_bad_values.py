"""The interpreter and the writers refuse NaN / Inf parameters and mismatched shapes instead of running a NaN weight
as a silent neuron or writing a graph whose edges do not fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq.errors import NonFiniteError, ShapeError
from spikeseq.export.nir import write_nir
from spikeseq.graph import ir
from spikeseq.graph.simulate import simulate
from spikeseq.verify.core import export_and_verify


def _graph(w: np.ndarray, threshold: float = 1.0, n_in: int = 3) -> ir.Graph:
    n = w.shape[0]
    return ir.Graph({"input": ir.Input((n_in,)), "lin": ir.Linear(w),
                     "lif": ir.LIF(tau=np.full(n, 1e-2), r=np.ones(n), v_threshold=np.full(n, threshold)),
                     "output": ir.Output((n,))}, [("input", "lin"), ("lin", "lif"), ("lif", "output")], dt=1e-3)


def test_a_nan_weight_is_refused_by_the_interpreter_and_the_nir_writer(tmp_path):
    w = np.ones((2, 3), np.float32)
    w[1, 2] = np.nan
    g = _graph(w)
    with pytest.raises(NonFiniteError, match=r"node 'lin' \(Linear\): weight holds NaN"):
        simulate(g, np.ones((4, 1, 3)))
    with pytest.raises(NonFiniteError, match="weight holds NaN"):
        write_nir(g, tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()


def test_an_infinite_threshold_is_valid_but_nan_inputs_are_not():
    g = _graph(np.ones((2, 3), np.float32), threshold=np.inf)      # a population that never fires
    r = simulate(g, np.ones((4, 1, 3)))
    assert r.events["lif"] == 0
    x = np.ones((4, 1, 3))
    x[2, 0, 1] = np.nan
    with pytest.raises(NonFiniteError, match="input 'input' holds NaN or Inf"):
        simulate(g, x)
    with pytest.raises(ShapeError, match="T >= 1"):
        simulate(g, np.ones((0, 1, 3)))


def test_mismatched_shapes_are_refused_before_simulating_or_writing(tmp_path):
    g = _graph(np.ones((2, 5), np.float32), n_in=8)                 # Linear takes 5, the input sends 8
    with pytest.raises(ShapeError, match=r"edge input -> lin: input sends shape \(8,\) but lin expects \(5,\)"):
        simulate(g, np.ones((2, 1, 8)))
    with pytest.raises(ShapeError, match="edge input -> lin"):
        write_nir(g, tmp_path / "m.nir")


def test_export_and_verify_checks_its_inputs_before_writing(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    out = tmp_path / "m.nir"
    with pytest.raises(ShapeError, match="at least one sample"):
        export_and_verify(model, "nir", out, torch.zeros(4, 0, 3), dt=1e-3)
    with pytest.raises(ShapeError, match="3 labels for 2 samples"):
        export_and_verify(model, "nir", out, torch.zeros(4, 2, 3), labels=[0, 1, 1], dt=1e-3)
    with pytest.raises(NonFiniteError, match="NaN or Inf"):
        export_and_verify(model, "nir", out, torch.full((4, 2, 3), float("nan")), dt=1e-3)
    assert not out.exists()
