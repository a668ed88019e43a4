"""The activity-sparse C++ EGRU (``backend="cpu"``) against the reference: outputs, final state, all gradients."""

from __future__ import annotations

import pytest
import torch

from spikeseq import kernels as K
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.kernels.egru import cpu
from tests.kernels._egru_compare import assert_same, make

pytestmark = pytest.mark.native


@pytest.mark.parametrize("case", [
    dict(),
    dict(state=False),
    dict(theta_scalar=True),
    dict(weight_density=0.2),          # CSR recurrent weights
    dict(input_density=0.1),           # event-driven input projection
    dict(T=1, B=1, H=1, I=1),
    dict(H=37, B=4, I=9, T=5),         # a width that is no multiple of the vector length
    dict(H=40, B=2, I=70, T=3, input_density=0.2),  # packed 8-vector panels (3H = 120) plus a tail, both products
])
def test_float64_matches_reference(case):
    x, st, p = make(**case)
    out = assert_same("cpu", x, st, p, atol=1e-12)
    if out[1].numel() > 1:
        assert 0 < float(out[1].detach().mean()) < 1     # the run has events and silent units


def test_zoneout_mask_and_eps():
    x, st, p = make(seed=4)
    mask = torch.rand(x.shape[0], x.shape[1], 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert_same("cpu", x, st, p, atol=1e-12, zoneout=mask, eps=3.6)
    assert_same("cpu", x, st, p, atol=1e-12, zoneout=0.25, training=False)


def test_float32_matches_reference():
    # float32: outputs and gradients within 1e-5 (the events are identical here; an event can flip only where c~
    # is within rounding of theta, see specs/models.md §4 on EvNN's numerical tests).
    x, st, p = make(dtype=torch.float32, seed=5, H=16, I=8)
    assert_same("cpu", x, st, p, atol=2e-5)


def test_sparse_backward_skips_units_and_uses_fewer_products():
    # eps = 3.6: support half-width 0.28; with low thresholds most silent units lie outside it
    x, st, p = make(T=20, B=4, H=32, I=8, seed=6)
    assert_same("cpu", x, st, p, atol=1e-12, eps=3.6)
    assert cpu.last_stats["backward_skipped_fraction"] > 0.05


def test_event_linear_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 7, dtype=torch.float64, generator=g) * (torch.rand(10, 7, generator=g) < 0.2)
    w = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    xr = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(cpu.EventLinear.apply, (xr, w, b))
    torch.testing.assert_close(cpu.EventLinear.apply(x, w, b), torch.nn.functional.linear(x, w, b))


def test_dispatch_auto_picks_cpu_and_checks_like_the_reference():
    x, st, p = make()
    assert K.dispatch.resolve("egru_scan", "auto", x, st, **p).name == "cpu"
    with pytest.raises(ParameterError, match="eps"):
        K.egru_scan(x, st, backend="cpu", eps=-1.0, **p)
    with pytest.raises(ShapeError, match="empty time axis"):
        K.egru_scan(x[:0], None, backend="cpu", **p)


@pytest.mark.parametrize("which", ["y", "e", "c", "y_last"])
def test_one_output_loss_with_expanded_gradients(which):
    # .sum() hands the kernel stride-0 (expanded) output gradients and zeros for the other outputs
    x, _, p = make(T=9, H=10, I=4, seed=7, state=False)
    grads = {}
    for backend in ("torch", "cpu"):
        ps = {k: v.clone().requires_grad_() for k, v in p.items()}
        out, st = K.egru_scan(x, None, backend=backend, eps=3.6, **ps)
        loss = {"y": out.y, "e": out.e, "c": st.c, "y_last": st.y}[which].sum()
        grads[backend] = torch.autograd.grad(loss, list(ps.values()))
    for a, b in zip(grads["torch"], grads["cpu"], strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


def test_csr_input_projection_for_pruned_input_weights():
    x, st, p = make(seed=8, H=9, I=20)
    p["weight_ih"] = p["weight_ih"] * (torch.rand(p["weight_ih"].shape, generator=torch.Generator().manual_seed(0),
                                                  dtype=torch.float64) < 0.1)
    assert cpu.density(p["weight_ih"]) < cpu.CSR_DENSITY
    assert_same("cpu", x, st, p, atol=1e-12)
    w = p["weight_ih"].clone().requires_grad_()
    xs = x.reshape(-1, 20).clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: cpu.CSRLinear.apply(a, b, None), (xs[:6], w))


def test_csr_input_projection_of_sparse_inputs_takes_only_nonzero_pairs():
    # events (10% density) through pruned weights: egru_gather_csr_mm, against the dense product and through a scan
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 30, dtype=torch.float64, generator=g) * (torch.rand(40, 30, generator=g,
                                                                            dtype=torch.float64) < 0.1)
    w = torch.randn(21, 30, dtype=torch.float64, generator=g) * (torch.rand(21, 30, generator=g,
                                                                            dtype=torch.float64) < 0.1)
    b = torch.randn(21, dtype=torch.float64, generator=g)
    assert cpu.density(x) <= cpu.INPUT_DENSITY_MAX and cpu.density(w) < cpu.CSR_DENSITY
    torch.testing.assert_close(cpu.CSRLinear.apply(x, w, b), torch.nn.functional.linear(x, w, b), atol=1e-12, rtol=0)
    xs, st, p = make(seed=11, H=7, I=30, input_density=0.1)
    p["weight_ih"] = p["weight_ih"] * (torch.rand(p["weight_ih"].shape, generator=g, dtype=torch.float64) < 0.1)
    assert_same("cpu", xs, st, p, atol=1e-12)


def test_inference_without_saved_gates_gives_the_same_outputs():
    x, st, p = make(seed=9, H=13)
    out, new = K.egru_scan(x, st, backend="cpu", **p)
    with torch.no_grad():
        out2, new2 = K.egru_scan(x, st, backend="cpu", **p)
    torch.testing.assert_close(out2.y, out.y.detach(), rtol=0, atol=0)
    torch.testing.assert_close(new2.c, new.c.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("dense_min", [0.0, 2.0])
def test_backward_dense_product_and_per_unit_paths_match_reference(dense_min, monkeypatch):
    # 0.0: dL/dy = gh R through the packed register-blocked product at every step; 2.0: never (per-unit dot
    # products of the needed units only). H = 37 and B = 11 leave partial panels and row tails of the product.
    monkeypatch.setattr(cpu, "BWD_DENSE_MIN", dense_min)
    x, st, p = make(T=6, B=11, H=37, I=9, seed=8)
    assert_same("cpu", x, st, p, atol=1e-12, eps=3.6)
    x, st, p = make(dtype=torch.float32, T=5, B=7, H=21, I=8, seed=9)
    assert_same("cpu", x, st, p, atol=2e-5)
