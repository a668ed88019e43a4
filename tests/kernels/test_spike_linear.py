"""spike_linear: F.linear for spike inputs, event-driven ("sparse") or dense with the input saved as uint8."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeseq.errors import BackendUnavailableError, DTypeError, ParameterError, ShapeError
from spikeseq.kernels import _native, spike_linear, spmm
from tests.conftest import need_native, require_native

needs_cpp = pytest.mark.native  # skips without a C++ build; fails under SPIKESEQ_REQUIRE_NATIVE=1


def _grads(fn, z, w, b, g):
    leaves = [z, w] + ([b] if b is not None else [])
    y = fn(z, w, b)
    return y, torch.autograd.grad((y * g).sum(), leaves)


def _case(shape, out_features, density, dtype, with_bias=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = (torch.rand(*shape, generator=gen) < density).to(dtype).requires_grad_()
    w = torch.randn(out_features, shape[-1], generator=gen, dtype=dtype).requires_grad_()
    b = torch.randn(out_features, generator=gen, dtype=dtype).requires_grad_() if with_bias else None
    g = torch.randn(*shape[:-1], out_features, generator=gen, dtype=dtype)
    return z, w, b, g


def test_known_answer_by_hand():
    z = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    w = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]], requires_grad=True)
    b = torch.tensor([0.5, -0.5], requires_grad=True)
    modes = ("dense", "sparse") if _native.library() is not None else ("dense",)
    assert "sparse" in modes or not require_native(), "SPIKESEQ_REQUIRE_NATIVE=1 but the C++ spike products are missing"
    for mode in modes:
        y = spike_linear(z, w, b, mode=mode)
        assert torch.equal(y, torch.tensor([[4.5, 39.5], [0.5, -0.5], [2.5, 19.5]]))
        gw, gb = torch.autograd.grad(y[:, 0].sum() + 2 * y[2, 1], [w, b])
        # d/dW[0] = sum of the rows of z = [1, 1, 1]; d/dW[1] = 2 * z[2] = [0, 2, 0]
        assert torch.equal(gw, torch.tensor([[1.0, 1.0, 1.0], [0.0, 2.0, 0.0]]))
        assert torch.equal(gb, torch.tensor([3.0, 2.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_dense_mode_is_f_linear_exactly(dtype, with_bias):
    z, w, b, g = _case((7, 3, 10), 4, 0.3, dtype, with_bias)
    y_ref, ref = _grads(F.linear, z, w, b, g)
    y, got = _grads(lambda *a: spike_linear(*a, mode="dense"), z, w, b, g)
    assert torch.equal(y, y_ref)
    for a, c in zip(ref, got, strict=True):
        torch.testing.assert_close(c, a, atol=1e-12 if dtype == torch.float64 else 1e-5, rtol=0)


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("shape", "out_features", "density"),
    [
        ((7, 3, 10), 4, 0.3),  # narrower than one vector
        ((40, 8, 37), 200, 0.1),  # outputs: 8-vector blocks + single vectors + a scalar tail
        ((300, 4, 700), 256, 0.05),  # enough rows for two threads and several weight-gradient row blocks
        ((5, 2, 64), 33, 0.0),  # no spikes at all
        ((6, 2, 19), 48, 1.0),  # all spikes
        ((0, 5, 40), 48, 0.1),  # no rows
        ((3, 2, 0), 48, 0.1),  # no inputs: the bias alone
    ],
)
def test_sparse_mode_matches_f_linear_outputs_and_all_gradients(dtype, shape, out_features, density):
    z, w, b, g = _case(shape, out_features, density, dtype)
    y_ref, ref = _grads(F.linear, z, w, b, g)
    y, got = _grads(lambda *a: spike_linear(*a, mode="sparse"), z, w, b, g)
    # the same sums in another order: float rounding only
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == torch.float64 else dict(atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(got[0], ref[0], atol=0, rtol=0)  # dz = g @ W, the same dense matmul
    for a, c in zip(ref[1:], got[1:], strict=True):
        torch.testing.assert_close(c, a, **tol)


@needs_cpp
def test_sparse_sums_do_not_depend_on_the_thread_count(monkeypatch):
    monkeypatch.setattr(spmm, "ADDS_PER_THREAD", 1000)  # threads from tiny sizes on
    z, w, b, g = _case((400, 8, 300), 96, 0.1, torch.float32)
    results = []
    old = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(_grads(lambda *a: spike_linear(*a, mode="sparse"), z, w, b, g))
    finally:
        torch.set_num_threads(old)
    for y, gr in results[1:]:
        assert torch.equal(y, results[0][0])
        assert all(torch.equal(a, c) for a, c in zip(gr, results[0][1], strict=True))


def _saved(fn):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fn()
    return saved


@needs_cpp
def test_what_each_mode_saves():
    z = (torch.rand(50, 8, 64) < 0.1).float()
    w = torch.randn(48, 64, requires_grad=True)
    sparse = _saved(lambda: spike_linear(z, w, mode="sparse"))
    rowptr, idx = (t for t in sparse if t.dtype in (torch.int64, torch.int32))
    nnz = int(z.sum())
    assert rowptr.dtype == torch.int64 and rowptr.numel() == 50 * 8 + 1 and int(rowptr[-1]) == nnz
    assert idx.dtype == torch.int32 and idx.numel() == nnz
    assert not [t for t in sparse if t.is_floating_point() and t.numel() == z.numel()]
    # compressed rows are the spikes' columns, ascending within each row
    z2 = z.reshape(-1, 64)
    for r in (0, 7, 399):
        assert idx[rowptr[r]:rowptr[r + 1]].tolist() == torch.nonzero(z2[r]).flatten().tolist()
    dense = _saved(lambda: spike_linear(z, w, mode="dense"))
    big = [t for t in dense if t.numel() == z.numel()]
    assert len(big) == 1 and big[0].dtype == torch.uint8
    # no gradient wanted: nothing sequence-sized is kept
    w.requires_grad_(False)
    assert not [t for t in _saved(lambda: spike_linear(z, w)) if t.numel() >= z2.shape[0]]


@needs_cpp
def test_auto_goes_event_driven_only_where_it_pays():
    from spikeseq.kernels.spike_linear import SPARSE_MIN_OUT, sparse_max_density

    max_density = sparse_max_density()
    assert max_density in (0.15, 0.08)

    def kind(density, out_features):
        z = (torch.rand(64, 2, 128) < density).float()
        w = torch.randn(out_features, 128, requires_grad=True)
        dtypes = {t.dtype for t in _saved(lambda: spike_linear(z, w))}
        return "sparse" if torch.int32 in dtypes else "dense" if torch.uint8 in dtypes else "?"

    assert kind(max_density / 2, SPARSE_MIN_OUT) == "sparse"
    assert kind(min(1.0, max_density * 2.5), SPARSE_MIN_OUT) == "dense"
    assert kind(max_density / 2, SPARSE_MIN_OUT - 1) == "dense"


@pytest.mark.parametrize("mode", ["auto", "dense", "sparse"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rejects_graded_input_in_every_mode(mode, dtype):
    if mode == "sparse":
        need_native()
    z = (torch.rand(50, 8, 16) < 0.2).to(dtype)
    w = torch.randn(5, 16, dtype=dtype, requires_grad=True)
    for bad in (z * 0.5, z + 2 * z, -z, z.masked_fill(z == 0, float("nan"))):
        with pytest.raises(ParameterError, match="0s and 1s"):
            spike_linear(bad, w, mode=mode)
        with torch.no_grad(), pytest.raises(ParameterError, match="0s and 1s"):
            spike_linear(bad, w, mode=mode)


def test_without_the_library(monkeypatch):
    monkeypatch.setattr(_native, "library", lambda: None)
    assert not spmm.supports(torch.zeros(2, 2))
    z = (torch.rand(30, 16) < 0.2).float()
    w = torch.randn(5, 16, requires_grad=True)
    with pytest.raises(ParameterError, match="0s and 1s"):
        spike_linear(z * 0.5, w)
    assert torch.equal(spike_linear(z, w), F.linear(z, w))
    with pytest.raises(BackendUnavailableError, match="C\\+\\+ library"):
        spike_linear(z, w, mode="sparse")


def test_bad_arguments():
    z = (torch.rand(30, 16) < 0.2).float()
    w = torch.randn(5, 16)
    with pytest.raises(ShapeError, match="16 features"):
        spike_linear(z, torch.randn(5, 15))
    with pytest.raises(ShapeError, match="bias"):
        spike_linear(z, w, torch.randn(4))
    with pytest.raises(DTypeError):
        spike_linear(z.to(torch.uint8), w)
    with pytest.raises(DTypeError, match="float64"):
        spike_linear(z, w.double())
    with pytest.raises(ParameterError, match="unknown spike_linear mode"):
        spike_linear(z, w, mode="events")  # type: ignore[arg-type]
