"""Oja subspace rule and projection helpers (spikeseq.functional.plasticity): known answers and convergence."""

from __future__ import annotations

import math

import pytest
import torch

from spikeseq.errors import ParameterError, ShapeError
from spikeseq.functional import plasticity as fp


def test_delta_known_answer():
    h = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    # sample 1: y = 2, x_hat = [2, 0], y (x - x_hat) = [0, 2]; sample 2: y = 0 -> 0; batch mean [0, 1]
    assert torch.equal(fp.oja_subspace_delta(h, x), torch.tensor([[0.0, 1.0]], dtype=torch.float64))


def test_spike_quantise_known_answer():
    y = torch.tensor([5.3, -25.0, 0.2])
    # S = 20, T_l = 40: 5.3/20*40 = 10.6 -> 11 -> 5.5; -25 clamps to -20; 0.2*2 = 0.4 -> 0
    assert torch.equal(fp.spike_quantise(y, 20.0, 40.0), torch.tensor([5.5, -20.0, 0.0]))


def test_step_momentum_clamp_and_fixed_rows():
    h = torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    m = torch.zeros_like(h)
    x = torch.tensor([[0.0, 100.0]], dtype=torch.float64)
    h2, m2 = fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=1, iterations=1)
    # row 1: y = 50, x_hat = [0, 25] (row 0 gives y = 0), delta = 50 * [0, 75] = 3750 -> clamp 10
    assert torch.equal(h2[0], h[0]) and torch.equal(m2[0], m[0])
    assert torch.allclose(m2[1], torch.tensor([0.0, 0.1 * 10.0], dtype=torch.float64))
    assert torch.allclose(h2[1], torch.tensor([0.0, 0.5 + 0.1 * 1.0], dtype=torch.float64))


def test_principal_angles_known_answer():
    a = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    th = 0.3
    b = torch.tensor([[math.cos(th), math.sin(th), 0.0]], dtype=torch.float64)
    assert torch.allclose(fp.principal_angles(a, b), torch.tensor([th], dtype=torch.float64))
    plane = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=torch.float64)
    assert torch.allclose(fp.principal_angles(plane, 3 * plane.flip(0)), torch.zeros(2, dtype=torch.float64),
                          atol=1e-7)


def _synthetic(n_batches: int, n: int = 32, k: int = 4, batch: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(n, k, generator=g))[0].t()
    z = torch.randn(n_batches * batch, k, generator=g) * torch.linspace(3.0, 1.5, k)
    return z @ basis + 0.1 * torch.randn(n_batches * batch, n, generator=g)


def test_oja_converges_to_pca_subspace_synthetic():
    n, k, bs = 32, 4, 64
    x = _synthetic(200, n, k, bs)
    h = torch.linalg.qr(torch.randn(n, k, generator=torch.Generator().manual_seed(1)))[0].t().contiguous()
    m = torch.zeros_like(h)
    for i in range(200):
        h, m = fp.oja_subspace_step(h, m, x[i * bs:(i + 1) * bs], lr=0.01)
    angles = torch.rad2deg(fp.principal_angles(h, fp.principal_subspace(x, k)))
    assert float(angles.max()) < 5.0
    assert float((h @ h.t() - torch.eye(k)).abs().max()) < 1e-2  # fixed point: orthonormal rows


def test_new_rows_learn_the_residual_subspace():
    """Old rows fixed on the top-2 directions; 2 new rows converge to the next 2 principal directions."""
    n, k, bs = 32, 4, 64
    x = _synthetic(300, n, k, bs, seed=2)
    ref = fp.principal_subspace(x, k)
    h = torch.cat([ref[:2], torch.linalg.qr(torch.randn(n, 2, generator=torch.Generator().manual_seed(3)))[0].t()])
    h, m = h.contiguous(), torch.zeros(k, n)
    for i in range(300):
        h, m = fp.oja_subspace_step(h, m, x[i * bs:(i + 1) * bs], lr=0.01, plastic_from=2)
    assert torch.equal(h[:2], ref[:2])
    assert float(torch.rad2deg(fp.principal_angles(h[2:], ref[2:])).max()) < 5.0


def test_subspace_quality_known_answer():
    c = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
    e = torch.eye(4, dtype=torch.float64)
    q = fp.subspace_quality(c, e[:2])
    assert q["k"] == 2 and q["captured"] == pytest.approx(0.7) and q["best"] == pytest.approx(0.7)
    assert q["ratio"] == pytest.approx(1.0)
    q = fp.subspace_quality(c, 3.0 * e[2:])           # any spanning rows: the subspace, not their scale, counts
    assert q["captured"] == pytest.approx(0.3) and q["ratio"] == pytest.approx(3.0 / 7.0)
    q = fp.subspace_quality(c, (e[0] + e[3]).unsqueeze(0))   # the direction (1, 0, 0, 1) / sqrt 2: (4 + 1) / 2
    assert q["captured"] == pytest.approx(0.25) and q["best"] == pytest.approx(0.4)
    with pytest.raises(ShapeError):
        fp.subspace_quality(c, e[:2, :3])


def test_normalised_step_is_scale_free_and_converges_on_a_weak_residual():
    """The normalised step takes the same path for x and 100 x; the plain step's rate scales with the input
    power, so on inputs of power ~1e-2 it is still far from the principal subspace where the normalised one is
    there (the deep-layer case of HLOP: little residual energy left for the new rows)."""
    n, k, bs = 32, 4, 64
    x = _synthetic(200, n, k, bs, seed=5) * 0.03
    h0 = torch.linalg.qr(torch.randn(n, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64))[0]
    h0 = h0.t().contiguous()
    x = x.double()
    corr = x.t() @ x

    def run(scale: float, normalize: bool, lr: float):
        h, m = h0.clone(), torch.zeros_like(h0)
        for i in range(200):
            h, m = fp.oja_subspace_step(h, m, scale * x[i * bs:(i + 1) * bs], lr=lr, normalize=normalize)
        return h

    a, b = run(1.0, True, 0.5), run(100.0, True, 0.5)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert fp.subspace_quality(corr, a)["ratio"] > 0.999
    assert fp.subspace_quality(corr, run(1.0, False, 0.01))["ratio"] < 0.9


def test_in_place_step_equals_the_functional_step():
    x = _synthetic(2, 16, 3, 32, seed=7)
    h = torch.linalg.qr(torch.randn(16, 5, generator=torch.Generator().manual_seed(2)))[0].t().contiguous()
    m = torch.randn(5, 16, generator=torch.Generator().manual_seed(3)) * 0.01
    for normalize in (False, True):
        h_ref, m_ref = fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=2, normalize=normalize)
        h_in, m_in = h.clone(), m.clone()
        out_h, out_m = fp.oja_subspace_step(h_in, m_in, x, lr=0.1, plastic_from=2, normalize=normalize, inplace=True)
        assert out_h is h_in and out_m is m_in
        assert torch.equal(h_in, h_ref) and torch.equal(m_in, m_ref)
        assert torch.equal(h_in[:2], h[:2]) and not torch.equal(h_in[2:], h[2:])


def test_project_residual_is_orthogonal_to_basis():
    g = torch.Generator().manual_seed(0)
    q = fp.orthonormal_basis(torch.randn(5, 20, generator=g, dtype=torch.float64))
    grad = torch.randn(7, 20, generator=g, dtype=torch.float64)
    res = fp.project_residual(grad, q)
    assert float((res @ q.t()).abs().max()) < 1e-12
    assert torch.allclose(fp.project_residual(res, q), res)  # idempotent


def test_bad_shapes_and_parameters():
    with pytest.raises(ShapeError, match="columns of H"):
        fp.oja_subspace_delta(torch.zeros(2, 3), torch.zeros(4, 5))
    with pytest.raises(ParameterError, match="k must lie"):
        fp.principal_subspace(torch.zeros(4, 3), 5)
    with pytest.raises(ParameterError, match="plastic_from"):
        fp.oja_subspace_step(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(1, 3), lr=0.1, plastic_from=3)


def test_step_equals_the_rule_applied_row_by_row():
    """The step (old rows' reconstruction precomputed) equals iterating oja_subspace_delta on the full H."""
    g = torch.Generator().manual_seed(4)
    h = torch.randn(6, 10, generator=g, dtype=torch.float64) * 0.3
    m = torch.randn(6, 10, generator=g, dtype=torch.float64) * 0.01
    x = torch.randn(16, 10, generator=g, dtype=torch.float64)
    for spiking in (None, (2.0, 8.0)):
        href, mref = h.clone(), m.clone()
        for _ in range(3):
            d = fp.oja_subspace_delta(href, x, spiking=spiking)[2:].clamp(-0.05, 0.05)
            mref[2:] = 0.9 * mref[2:] + 0.1 * d
            href[2:] += 0.2 * mref[2:]
        h2, m2 = fp.oja_subspace_step(h, m, x, lr=0.2, plastic_from=2, iterations=3, clamp=0.05, spiking=spiking)
        torch.testing.assert_close(h2, href, rtol=0, atol=1e-12)
        torch.testing.assert_close(m2, mref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("plastic_from", [0, 2])
def test_gram_and_sample_forms_equal_the_rule(normalize: bool, plastic_from: int):
    """Both forms of the step equal oja_subspace_delta iterated on the full H (float64, rounding only), with the
    normalised step's residual power taken from the rows (residual) or from X^T X (gram)."""
    g = torch.Generator().manual_seed(11)
    h = torch.randn(6, 10, generator=g, dtype=torch.float64) * 0.3
    m = torch.randn(6, 10, generator=g, dtype=torch.float64) * 0.01
    x = torch.randn(40, 10, generator=g, dtype=torch.float64)
    href, mref = h.clone(), m.clone()
    r = x - (x @ h[:plastic_from].t()) @ h[:plastic_from]
    inv_power = float(x.shape[0] / (r * r).sum()) if normalize else 1.0
    for _ in range(3):
        d = fp.oja_subspace_delta(href, x)[plastic_from:] * inv_power
        mref[plastic_from:] = 0.9 * mref[plastic_from:] + 0.1 * d.clamp(-0.05, 0.05)
        href[plastic_from:] += 0.2 * mref[plastic_from:]
    for form in ("residual", "gram"):
        h2, m2 = fp.oja_subspace_step(h, m, x, lr=0.2, plastic_from=plastic_from, iterations=3, clamp=0.05,
                                      normalize=normalize, form=form)
        torch.testing.assert_close(h2, href, rtol=0, atol=1e-12)
        torch.testing.assert_close(m2, mref, rtol=0, atol=1e-12)
        assert torch.equal(h2[:plastic_from], h[:plastic_from])


def test_auto_form_follows_the_cost():
    # many rows, few features (an EGRU's step inputs): the Gram form; a batch of rates (N-MNIST's input layer),
    # or a saving under FORM_MIN_SAVING: the residual form
    tall = fp.oja_step_costs(2048, 64, 32, 8, 5)
    wide = fp.oja_step_costs(32, 578, 80, 60, 5)
    assert tall["gram"] * fp.FORM_MIN_SAVING <= tall["residual"] and wide["residual"] < wide["gram"]
    # hand count: N = 4, n = 3, k_old = 1, k_new = 2, one iteration
    assert fp.oja_step_costs(4, 3, 1, 2, 1) == {"residual": 2 * 4 * 3 * 1 + 3 * 4 * 3 * 2,
                                               "gram": 4 * 9 + 2 * 9 * 1 + (2 * 2 * 9 + 2 * 4 * 3)}
    g = torch.Generator().manual_seed(12)
    x = torch.randn(512, 8, generator=g, dtype=torch.float64)
    h = torch.randn(4, 8, generator=g, dtype=torch.float64) * 0.3
    m = torch.zeros_like(h)
    auto = fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=1)
    gram = fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=1, form="gram")
    assert torch.equal(auto[0], gram[0])
    assert not torch.equal(gram[0], fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=1, form="residual")[0])
    for rows in (4, 16):  # few rows; a Gram form cheaper by less than FORM_MIN_SAVING (1.6x at 16 rows)
        costs = fp.oja_step_costs(rows, 8, 1, 3, 5)
        assert costs["gram"] * fp.FORM_MIN_SAVING > costs["residual"]
        xs = x[:rows]
        auto = fp.oja_subspace_step(h, m, xs, lr=0.1, plastic_from=1)
        assert torch.equal(auto[0], fp.oja_subspace_step(h, m, xs, lr=0.1, plastic_from=1, form="residual")[0])
    # the spiking circuit is not a function of X^T X: auto takes the residual form, an explicit "gram" is refused
    spk = fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=1, spiking=(2.0, 8.0))
    assert torch.equal(spk[0], fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=1, spiking=(2.0, 8.0),
                                                    form="residual")[0])
    with pytest.raises(ParameterError, match="linear lateral circuit"):
        fp.oja_subspace_step(h, m, x, lr=0.1, spiking=(2.0, 8.0), form="gram")
    with pytest.raises(ParameterError, match="form must be one of"):
        fp.oja_subspace_step(h, m, x, lr=0.1, form="svd")


def test_gram_form_reduces_and_every_form_skips_a_silent_input():
    g = torch.Generator().manual_seed(13)
    h = torch.linalg.qr(torch.randn(8, 4, generator=g, dtype=torch.float64))[0].t().contiguous()
    m = torch.zeros_like(h)
    calls: list[tuple[int, ...]] = []

    def reduce(t: torch.Tensor) -> torch.Tensor:  # what data-parallel averaging sees: the power, then each dH
        calls.append(tuple(t.shape))
        return t

    x = torch.randn(64, 8, generator=g, dtype=torch.float64)
    fp.oja_subspace_step(h, m, x, lr=0.1, plastic_from=1, iterations=2, normalize=True, reduce=reduce, form="gram")
    assert calls == [(2,), (3, 8), (3, 8)]
    # inputs inside the old rows' span (and zero inputs): no residual power, no step
    inside = torch.randn(64, 1, generator=g, dtype=torch.float64) @ h[:1]
    for silent in (torch.zeros(64, 8, dtype=torch.float64), inside):
        for form in ("residual", "gram"):
            h2, m2 = fp.oja_subspace_step(h, m, silent, lr=0.1, plastic_from=1, normalize=True, form=form)
            assert torch.equal(h2, h) and torch.equal(m2, m)
    # a residual of 1e-6 of the input's power is above the silence bound (8 eps): all forms step, alike
    tilted = inside + 1e-3 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    steps = [fp.oja_subspace_step(h, m, tilted, lr=0.1, plastic_from=1, normalize=True, form=f)[0]
             for f in ("residual", "gram")]
    assert not torch.equal(steps[0], h)
    for other in steps[1:]:
        torch.testing.assert_close(other, steps[0], rtol=0, atol=1e-9)


# ---------------------------------------------------------------- probe of session 14 (Gram form, dtypes, N = 0)
def _orth(k: int, n: int, g: torch.Generator) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))[0].t().contiguous()


@pytest.mark.parametrize("rho", [1e-5, 3e-5])
def test_gram_form_float32_is_as_accurate_as_the_residual_form_on_a_weak_residual(rho):
    """An EGRU-sized step (N = 2048 rows, n = 64, 32 old + 8 new rows) whose residual carries rho of the input's
    power (above the silence bound n * eps = 7.6e-6): the float32 Gram form forms D = C - C P and H C H^T by
    cancellation, so its step is off by ~eps / rho (5-50 %), the residual form's by ~0.1 %."""
    g = torch.Generator().manual_seed(0)
    n_rows, n, ko, kn = 2048, 64, 32, 8
    basis = _orth(n, n, g)
    h = basis[: ko + kn].float().contiguous()
    x_old = torch.randn(n_rows, ko, generator=g, dtype=torch.float64) @ basis[:ko]
    x_res = torch.randn(n_rows, n - ko, generator=g, dtype=torch.float64) @ basis[ko:]
    x64 = x_old + x_res * (rho * float(x_old.pow(2).sum()) / float(x_res.pow(2).sum())) ** 0.5
    m = torch.zeros_like(h)
    ref = fp.oja_subspace_step(h.double(), m.double(), x64, lr=0.01, plastic_from=ko, normalize=True,
                               form="residual")[0][ko:] - h[ko:].double()
    err = {}
    for form in ("residual", "gram"):
        step = fp.oja_subspace_step(h, m, x64.float(), lr=0.01, plastic_from=ko, normalize=True, form=form)[0]
        err[form] = float((step[ko:].double() - h[ko:].double() - ref).norm() / ref.norm())
    assert err["residual"] < 5e-3
    assert err["gram"] < 5e-3, err


def test_normalised_step_learns_in_bfloat16_with_more_than_128_features():
    """silent_residual_rtol = n * eps is 1.56 for bfloat16 at n = 200: every input is taken as silent, the
    normalised step never moves H (the unnormalised one does; before the Gram change it did too)."""
    g = torch.Generator().manual_seed(0)
    n = 200
    h = _orth(4, n, g).to(torch.bfloat16)
    x = torch.randn(512, n, generator=g).to(torch.bfloat16)
    h2, _ = fp.oja_subspace_step(h, torch.zeros_like(h), x, lr=0.1, normalize=True)
    assert not torch.equal(h2, h)


def test_normalised_step_in_float16_does_not_call_finite_inputs_non_finite():
    """The residual power sum |r|^2 of 512 unit-variance rows of 128 features (65536) overflows float16 (65504):
    NonFiniteError 'non-finite x' although x is finite."""
    g = torch.Generator().manual_seed(0)
    h = _orth(4, 128, g).to(torch.float16)
    x = torch.randn(512, 128, generator=g).to(torch.float16)
    assert bool(torch.isfinite(x).all())
    h2, _ = fp.oja_subspace_step(h, torch.zeros_like(h), x, lr=0.1, normalize=True)
    assert bool(torch.isfinite(h2).all()) and not torch.equal(h2, h)


@pytest.mark.parametrize("form", ["residual", "gram"])
def test_an_empty_batch_is_no_step_without_normalize(form):
    """N = 0 rows: ZeroDivisionError from the momentum weight (1 - m) / N (the normalised step skips it)."""
    h = _orth(3, 6, torch.Generator().manual_seed(0))
    m = torch.zeros_like(h)
    h2, m2 = fp.oja_subspace_step(h, m, torch.zeros(0, 6, dtype=torch.float64), lr=0.1, form=form)
    assert torch.equal(h2, h) and torch.equal(m2, m)
