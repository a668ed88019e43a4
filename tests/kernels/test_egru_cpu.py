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
    dict(H=60, B=3, T=4, weight_density=0.3),  # CSR rows of ~54 nonzeros: whole scatter vectors plus a masked rest
])
def test_float64_matches_reference(case):
    x, st, p = make(**case)
    out = assert_same("cpu", x, st, p, atol=1e-12)
    if out[1].numel() > 1:
        assert 0 < float(out[1].detach().mean()) < 1     # the run has events and silent units


@pytest.mark.parametrize("uses", [(0,), (1,), (2, 3), (0, 2), (3,)])
def test_gradients_when_the_loss_reads_some_outputs(uses):
    """The outputs a loss does not read (the events of a plain language model, the final state) reach the backward
    as None, not as zero tensors: the gradients still equal the reference's."""
    x, st, p = make(seed=8, H=20, I=6, T=6)
    assert_same("cpu", x, st, p, atol=1e-12, uses=uses)


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
    x, st, p = make(dtype=torch.float32, seed=6, H=60, I=8, weight_density=0.3)  # CSR recurrent weights, float32
    assert_same("cpu", x, st, p, atol=2e-5)


def test_sparse_backward_skips_units_and_uses_fewer_products():
    # eps = 3.6: support half-width 0.28; with low thresholds most silent units lie outside it
    x, st, p = make(T=20, B=4, H=32, I=8, seed=6)
    assert_same("cpu", x, st, p, atol=1e-12, eps=3.6)
    assert cpu.last_stats["backward_skipped_fraction"] > 0.05


@pytest.mark.parametrize("density", [0.05, 0.2, 0.6])  # weight gradient by gather_outer (2x) / the dense product
def test_event_linear_gradients(density):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 7, dtype=torch.float64, generator=g) * (torch.rand(40, 7, generator=g) < density)
    assert (cpu.input_density(x) <= cpu.OUTER_DENSITY_MAX) == (density < cpu.OUTER_DENSITY_MAX)
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows", [1, 33, 70])
@pytest.mark.parametrize("path", ["blocked", "gather"])
def test_pruned_input_projection_both_paths_match_the_dense_product(dtype, rows, path, monkeypatch):
    # egru_csr_mm (blocks of rows, a tiled write-back) and egru_gather_csr_mm (scatter per nonzero input), whichever
    # the input density picks: row counts that are not whole blocks, outputs that are not whole tiles, 0-weight rows
    monkeypatch.setattr(cpu, "GATHER_NONZEROS_PER_LANE", 0.0 if path == "blocked" else 1e9)
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, 37, dtype=dtype, generator=g) * (torch.rand(rows, 37, generator=g) < 0.3)
    w = torch.randn(45, 37, dtype=dtype, generator=g) * (torch.rand(45, 37, generator=g) < 0.1)
    w[3] = 0  # an output with no weight
    b = torch.randn(45, dtype=dtype, generator=g)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(cpu.CSRLinear.apply(x, w, b), torch.nn.functional.linear(x, w, b), atol=tol, rtol=0)
    torch.testing.assert_close(cpu.CSRLinear.apply(x, torch.zeros_like(w), None), torch.zeros(rows, 45, dtype=dtype))


def test_compressed_rows_of_a_transposed_view_are_its_nonzeros_in_row_order():
    w = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3.0, 4.0], [0.0, 0.0, 0.0]])
    rowptr, col, val = cpu._csr(w.t())  # read in place through the view's strides
    assert rowptr.tolist() == [0, 1, 3, 4] and col.tolist() == [1, 0, 2, 2] and val.tolist() == [1.0, 2.0, 3.0, 4.0]
    rowptr, col, val = cpu._csr(torch.zeros(2, 5))
    assert rowptr.tolist() == [0, 0, 0] and col.numel() == 0 and val.numel() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 37), (45, 16), (33, 100)])
def test_compressed_rows_of_contiguous_rows_and_of_the_transpose_match_the_strided_reading(dtype, shape):
    # the vectorised count and compress of contiguous rows, and the counting-sort transpose of compressed rows, against
    # the strided reading of the same matrix: the same arrays (an all-zero row, a NaN counted as a nonzero)
    g = torch.Generator().manual_seed(shape[1])
    w = torch.randn(shape, dtype=dtype, generator=g) * (torch.rand(shape, generator=g, dtype=dtype) < 0.3)
    w[0] = 0
    if w.numel() > 2:
        w.view(-1)[-1] = float("nan")
    strided = w.t().contiguous().t()  # the same values, columns contiguous instead of rows
    assert strided.stride(1) != 1 or shape[1] == 1

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.equal(a, b) if not a.is_floating_point() else torch.equal(a.nan_to_num(7.0), b.nan_to_num(7.0))

    assert all(same(a, b) for a, b in zip(cpu._csr(w), cpu._csr(strided), strict=True))
    assert all(same(a, b) for a, b in zip(cpu._csr_transpose(*cpu._csr(w), shape[1]), cpu._csr(w.t()), strict=True))
    assert cpu.density(w) == int(torch.count_nonzero(w)) / w.numel()


def test_input_density_of_a_large_input_is_estimated_from_a_sample():
    x = torch.zeros(cpu.DENSITY_SAMPLES * 4)
    x[::5] = 1.0
    assert abs(cpu.input_density(x) - 0.2) < 0.01 and cpu.density(x) == pytest.approx(0.2, abs=1e-6)
    assert cpu.gather_pays(0.0, torch.float32) and not cpu.gather_pays(1.0, torch.float64)


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


def test_backward_per_unit_products_over_several_column_chunks(monkeypatch):
    # the needed (unit, row) pairs' dot products run chunk by chunk of 16 vectors of gh (pair_dots): in float64,
    # 3H = 300 is chunks of 16, 16 and 5 vectors plus a scalar tail of 4; in float32, 3H = 270 is 16 vectors and a
    # tail of 14 (T = 1: dL/dy0 of every unit, the gradients small enough for float32's 2e-5)
    monkeypatch.setattr(cpu, "BWD_DENSE_MIN", 2.0)
    x, st, p = make(T=3, B=9, H=100, I=7, seed=11)
    assert_same("cpu", x, st, p, atol=1e-12, eps=3.6)
    assert 0.05 < cpu.last_stats["backward_skipped_fraction"] < 0.95
    x, st, p = make(dtype=torch.float32, T=1, B=6, H=90, I=5, seed=12)
    assert_same("cpu", x, st, p, atol=2e-5)


def test_event_linear_weight_gradient_over_row_chunks_and_panels_is_thread_independent():
    # gather_outer: 600 rows are three chunks of 256, 150 outputs two panels of 64 doubles and a tail of 22; the sums
    # run in ascending row order whatever the thread count (threads split the input units)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(600, 70, dtype=torch.float64, generator=g) * (torch.rand(600, 70, generator=g) < 0.2)
    assert cpu.input_density(x) <= cpu.OUTER_DENSITY_MAX
    w = torch.randn(150, 70, dtype=torch.float64, requires_grad=True)
    gout = torch.randn(600, 150, dtype=torch.float64, generator=g)
    grads = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            w.grad = None
            cpu.EventLinear.apply(x, w, None).backward(gout)
            grads.append(w.grad.clone())
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(grads[0], gout.t() @ x, atol=1e-12, rtol=0)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("pruned", [False, True])
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients_like_the_reference(pruned):
    # torch.nn.GRU accepts a batch of 0; the C++ loop reshaped to [T, 0, -1] (ambiguous) and its backward divided
    # by a zero per-thread share (SIGFPE)
    from spikeseq.nn.egru import EGRU
    for backend in ("torch", "cpu"):
        m = EGRU(4, 8, num_layers=2, backend=backend, seed=0)
        if pruned:
            with torch.no_grad():
                m.weight_hh_l0.mul_(torch.rand(24, 8, generator=torch.Generator().manual_seed(0)) < 0.1)
        x = torch.randn(5, 0, 4, requires_grad=True)
        out, st = m(x)
        assert out.y.shape == (5, 0, 8) and st.c.shape == (2, 0, 8)
        (out.y.sum() + st.c.sum()).backward()
        assert x.grad.shape == x.shape
        assert float(m.weight_hh_l0.grad.abs().sum()) == 0.0 and float(m.threshold_l0.grad.abs().sum()) == 0.0


@pytest.mark.parametrize("case", [
    dict(T=7, B=5, H=37, I=11, weight_density=0.2),        # CSR recurrent weights, partial vectors
    dict(T=6, B=37, H=24, I=19, weight_density=0.15),      # CSR recurrent weights, three blocks of rows (one partial)
    dict(T=9, B=3, H=64, I=20),                            # dense recurrent weights
    dict(T=1, B=1, H=16, I=8, state=False),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("zoneout", [True, False])
def test_inference_with_the_input_projection_fused_into_the_loop(case, dtype, threads, zoneout, monkeypatch):
    # no gradient asked and a pruned W_ih: each step's W x[t] is computed inside the time loop (egru_fwd_infer; with
    # pruned R and no zoneout mask, blocks of rows held transposed through the sequence: egru_infer_blocks); the same
    # numbers as the unfused loop bit for bit (the same per-row sums), and the reference's within rounding
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    x, st, p = make(dtype=dtype, seed=11, **case)
    g = torch.Generator().manual_seed(3)
    p["weight_ih"] = p["weight_ih"] * (torch.rand(p["weight_ih"].shape, generator=g, dtype=dtype) < 0.1)
    mask = torch.rand(x.shape[0], x.shape[1], p["weight_hh"].shape[1], generator=g, dtype=dtype)  # zoneout mask
    mask = mask if zoneout else 0.0
    calls = []
    fused = cpu._inference
    monkeypatch.setattr(cpu, "_inference", lambda *a: calls.append(1) or fused(*a))
    with torch.no_grad():
        out, new = K.egru_scan(x, st, backend="cpu", zoneout=mask, **p)
        assert calls == [1]
        monkeypatch.setattr(cpu, "fused_input", lambda *a: False)
        out2, new2 = K.egru_scan(x, st, backend="cpu", zoneout=mask, **p)
        ref, ref_new = K.egru_scan(x, st, backend="torch", zoneout=mask, **p)
    for a, b in zip((*out, *new), (*out2, *new2)):
        assert torch.equal(a, b)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for a, b in zip((*out, *new), (*ref, *ref_new)):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)


def test_a_gradient_or_a_dense_input_weight_keeps_the_unfused_loop():
    x, st, p = make(T=5, B=2, H=8, I=6)
    assert not cpu.fused_input(x, p["weight_ih"])                           # dense W_ih
    pruned = p["weight_ih"] * (torch.arange(p["weight_ih"].numel()).reshape(p["weight_ih"].shape) % 10 == 0)
    assert cpu.fused_input(x, pruned)
    assert not cpu.fused_input(x * (torch.rand(x.shape) < 0.01), pruned)    # events sparse enough to gather
    p["weight_ih"] = pruned.requires_grad_()
    out, _ = K.egru_scan(x, st, backend="cpu", **p)                          # a gradient is wanted: autograd path
    assert out.y.requires_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threshold", [0.0, 0.97])
@pytest.mark.parametrize("grad", [False, True])
def test_pruned_recurrent_products_give_the_dense_products_bits(dtype, threshold, grad, monkeypatch):
    # R at 10 % density in compressed rows: at about half the units active each step takes the batched product (every
    # nonzero of R once per vector of rows), at a threshold of 0.97 almost nothing fires and it scatters the active
    # units' rows of R^T (egru.cpp, scattered_pays). Both sum each gate input over its units in ascending order with
    # fused multiply-adds, as the dense rows of R^T do: the same numbers bit for bit, the reference's up to rounding.
    x, st, p = make(T=6, B=20, H=48, I=7, dtype=dtype, seed=5, weight_density=0.1)
    p["threshold"] = torch.full((48,), threshold, dtype=dtype)
    assert cpu.density(p["weight_hh"]) < cpu.CSR_DENSITY
    for v in p.values():
        v.requires_grad_(grad)

    def scan():
        with torch.set_grad_enabled(grad):
            out, new = K.egru_scan(x, st, backend="cpu", **p)
        return [t.detach() for t in (*out, *new)]

    pruned = scan()
    monkeypatch.setattr(cpu, "CSR_DENSITY", 0.0)  # the same weights as dense rows of R^T
    dense = scan()
    active = float(pruned[1].mean())
    assert (active > 0.3) if threshold == 0.0 else (active < 0.05)
    for a, b in zip(pruned, dense, strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        ref = K.egru_scan(x, st, backend="torch", **{k: v.detach() for k, v in p.items()})
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for a, b in zip(pruned, (*ref[0], *ref[1]), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)
