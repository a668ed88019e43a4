"""The Triton kernels against the functional reference, run by Triton's interpreter (TRITON_INTERPRET=1) on CPU.

No GPU is needed; on a machine with one the same kernels run compiled (not timed by tests). Tolerances as for the
C++ backend: float64 1e-10 absolute (summation order of parameter gradients only); float32 spikes identical.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import replace

import pytest
import torch

pytest.importorskip("triton", reason="triton not installed (pip install 'spikeseq[gpu]')")

from spikeseq import kernels as K
from spikeseq import surrogate as sg
from spikeseq.errors import BackendUnavailableError, DTypeError, NonFiniteError, ParameterError, ShapeError
from spikeseq.functional import ALIFState, CubaLIFState, LIFState, LIState
from spikeseq.kernels import dispatch
from spikeseq.kernels.lif import gpu
from tests.kernels._compare import assert_same, run

D = torch.float64
_MOD = "spikeseq.kernels.lif._triton_kernels"


def _rebind() -> None:
    """(Re)decorate the kernels under the current TRITON_INTERPRET setting and drop the cached ops."""
    if _MOD in sys.modules:
        importlib.reload(sys.modules[_MOD])
    gpu._ops = None


@pytest.fixture(scope="module", autouse=True)
def interpreter():
    mp = pytest.MonkeyPatch()
    mp.setenv("TRITON_INTERPRET", "1")
    _rebind()
    yield
    mp.undo()
    _rebind()


def _x(T=16, B=2, N=5, dtype=D):
    return torch.randn(T, B, N, dtype=dtype) * 1.5 + 0.3


@pytest.mark.parametrize("reset,detach", [(r, d) for r in ("subtract", "zero", "none") for d in (False, True)])
def test_lif_matches_reference_all_gradients(reset, detach):
    params = dict(beta=torch.rand(5, dtype=D) * 0.9 + 0.05, v_th=torch.rand(5, dtype=D) + 0.5, reset=reset,
                  detach_reset=detach)
    assert_same("lif_scan", "triton", _x(), LIFState(torch.randn(2, 5, dtype=D)), params, atol=1e-10)


def test_lif_rest_state_float_params_and_other_surrogate():
    assert_same("lif_scan", "triton", _x(), None, dict(beta=0.9, v_th=1.0), atol=1e-10)
    assert_same("lif_scan", "triton", _x(), None,
                dict(beta=torch.tensor(0.8, dtype=D), v_th=torch.tensor(0.7, dtype=D), surrogate=sg.Sigmoid()),
                atol=1e-10)


@pytest.mark.parametrize("reset,detach,learn", [("subtract", False, True), ("zero", True, True),
                                                 ("none", False, False), ("subtract", True, False)])
def test_cuba_matches_reference_all_gradients(reset, detach, learn):
    state = CubaLIFState(torch.randn(2, 5, dtype=D), torch.randn(2, 5, dtype=D))

    def p(v):
        return torch.full((5,), v, dtype=D) if learn else v

    params = dict(alpha=p(0.6), beta=p(0.85), v_th=torch.rand(5, dtype=D) + 0.5, reset=reset, detach_reset=detach)
    assert_same("cuba_lif_scan", "triton", _x(), state, params, atol=1e-10)


@pytest.mark.parametrize("reset,detach", [("subtract", False), ("subtract", True), ("zero", False), ("none", False)])
def test_alif_matches_reference_all_gradients(reset, detach):
    state = ALIFState(torch.randn(2, 5, dtype=D), torch.rand(2, 5, dtype=D))
    params = dict(beta=torch.rand(5, dtype=D) * 0.9 + 0.05, rho=torch.rand(5, dtype=D) * 0.9 + 0.05,
                  v_th=torch.rand(5, dtype=D) + 0.5, adapt=torch.rand(5, dtype=D) * 0.5, reset=reset,
                  detach_reset=detach)
    assert_same("alif_scan", "triton", _x(), state, params, atol=1e-10)
    assert_same("alif_scan", "triton", _x(T=2), None, dict(beta=0.9, rho=0.95, adapt=1.8, reset=reset), atol=1e-10)


def test_li_matches_reference():
    assert_same("li_scan", "triton", _x(), LIState(torch.randn(2, 5, dtype=D)), dict(beta=torch.rand(5, dtype=D)),
                atol=1e-10)
    assert_same("li_scan", "triton", _x(T=1), None, dict(beta=0.5), atol=1e-12)


def test_float32_spikes_identical_and_more_than_one_block():
    x = _x(T=12, B=3, N=100, dtype=torch.float32)  # 300 neurons: two programs of 256
    params = dict(beta=torch.full((100,), 0.9), v_th=torch.full((100,), 1.0))
    (out_r, g_r), (out_k, g_k) = run("lif_scan", "torch", x, None, params), run("lif_scan", "triton", x, None, params)
    assert out_r[0].sum() > 50
    assert torch.equal(out_r[0], out_k[0]) and torch.equal(out_r[1], out_k[1])
    for a, b in zip(g_r, g_k, strict=True):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("make,kw,err", [
    (lambda: torch.ones(4, 2, 3, dtype=torch.int32), {}, DTypeError),
    (lambda: torch.ones(3), {}, ShapeError),
    (lambda: torch.full((4, 2, 3), float("inf")), {}, NonFiniteError),
    (lambda: torch.ones(4, 2, 3), {"reset": "soft"}, ParameterError),
])
def test_bad_input_raises_the_reference_errors(make, kw, err):
    with pytest.raises(err):
        K.lif_scan(make(), backend="triton", **{"beta": 0.9, **kw})
    with pytest.raises(ShapeError):
        K.lif_scan(torch.ones(4, 2, 3), LIFState(torch.zeros(3)), beta=0.9, backend="triton")


def test_dispatch_prefers_triton_only_where_it_can_run_and_when_opted_in(monkeypatch):
    x = torch.randn(4, 2, 3)
    monkeypatch.delenv("SPIKESEQ_TRITON", raising=False)
    monkeypatch.setattr(dispatch, "_WARNED", set())
    # not validated on a GPU yet: "auto" never picks Triton on its own (here it runs the C++ or torch backend)
    assert dispatch.resolve("lif_scan", "auto", x, None, beta=0.9).name in ("cpu", "torch")
    cpu_b = dispatch.backends("lif_scan")["cpu"]
    monkeypatch.setitem(dispatch._REGISTRY["lif_scan"], "cpu", replace(cpu_b, available=lambda: (False, "no C++")))
    with pytest.warns(UserWarning, match="'triton' not used .*opt-in.*SPIKESEQ_TRITON=1"):   # the reason, stated
        assert dispatch.resolve("lif_scan", "auto", x, None, beta=0.9).name == "torch"
    monkeypatch.setenv("SPIKESEQ_TRITON", "1")
    assert dispatch.resolve("lif_scan", "auto", x, None, beta=0.9).name == "triton"
    assert dispatch.resolve("cuba_lif_scan", "auto", x, None, alpha=0.5, beta=0.9).name == "triton"
    with pytest.raises(BackendUnavailableError, match="float16"):
        K.lif_scan(x.half(), beta=0.9, backend="triton")
    monkeypatch.delenv("TRITON_INTERPRET")
    if not torch.cuda.is_available():
        assert gpu.available() == (False, "no CUDA device (and TRITON_INTERPRET is not 1)")
        with pytest.raises(BackendUnavailableError, match="no CUDA device"):
            K.lif_scan(x, beta=0.9, backend="triton")
        assert dispatch.resolve("lif_scan", "auto", x, None, beta=0.9).name in ("cpu", "torch")


def test_kernels_compile_for_a_gpu_without_fused_multiply_add(monkeypatch):
    """No GPU here: compile to PTX for sm_80 (triton ships ptxas) to catch GPU-only compile errors, and check that
    ``enable_fp_fusion=False`` leaves no FMA (so spikes match torch's separately rounded multiply and add)."""
    monkeypatch.delenv("TRITON_INTERPRET")
    _rebind()
    try:
        _compile_all()
    finally:  # back to the interpreted kernels for the other tests
        monkeypatch.undo()
        _rebind()


def _compile_all():
    try:
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as err:  # pragma: no cover - other triton layouts
        pytest.skip(f"triton compiler API not found: {err}")
    from spikeseq.kernels.lif import _triton_kernels as TK

    def compile_ptx(fn, constexprs, ptr="*fp32"):
        sig = {}
        for a in fn.arg_names:
            sig[a] = ("constexpr" if a in constexprs else ptr if a.endswith("_ptr") else
                      "i64" if a == "last" else "i32" if a in ("T", "N") else "fp32")
        src = ASTSource(fn=fn, signature=sig,
                        constexprs={(fn.arg_names.index(k),): v for k, v in constexprs.items()})
        return triton.compile(src, target=GPUTarget("cuda", 80, 32), options=TK.OPTS).asm["ptx"]

    try:
        ptx = compile_ptx(TK._lif_fwd, {"R": 0, "BLOCK": TK.BLOCK})
    except Exception as err:  # pragma: no cover - no CUDA backend in this triton build
        if "ptxas" in str(err) or "backend" in str(err).lower():
            pytest.skip(f"cannot compile for CUDA here: {err}")
        raise
    assert ".entry" in ptx and "fma." not in ptx
    compile_ptx(TK._lif_bwd, {"R": 1, "HAS_GVT": True, "GB": True, "BLOCK": TK.BLOCK}, ptr="*fp64")
    compile_ptx(TK._cuba_fwd, {"R": 0, "SAVE_I": True, "BLOCK": TK.BLOCK})
    compile_ptx(TK._cuba_bwd, {"R": 0, "HAS_GIT": True, "HAS_GVT": False, "GD": True, "BLOCK": TK.BLOCK})
    compile_ptx(TK._li_bwd, {"GB": True, "BLOCK": TK.BLOCK})
    compile_ptx(TK._alif_fwd, {"R": 0, "BLOCK": TK.BLOCK})
    compile_ptx(TK._alif_bwd, {"R": 0, "HAS_GVT": True, "HAS_GAT": True, "GB": True, "BLOCK": TK.BLOCK})
