"""The C++ kernels flush subnormal floats to zero inside their threads (kernels/parallel.h), and only there.

An operation on a subnormal costs a microcode assist on x86; trained recurrent networks make them in bulk, and the
EGRU backward of a trained language model ran about 6x slower for it. The kernels therefore differ from the
reference exactly where a value would fall below the smallest normal float (1.2e-38 in float32), and the caller's
thread keeps IEEE arithmetic.
"""

from __future__ import annotations

import platform

import pytest
import torch

from spikeseq import kernels as K

pytestmark = [pytest.mark.native,
              pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="MXCSR is x86's")]

TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32


def _decaying_membrane(backend: str) -> torch.Tensor:
    # v_t = beta v_{t-1} + x_t with one input of 1e-30 and beta = 1e-5: 1e-30, 1e-35, then 1e-40 (subnormal)
    x = torch.zeros(3, 1, 2)
    x[0] = 1e-30
    _, state = K.lif_scan(x, None, beta=torch.full((2,), 1e-5), v_th=1.0, backend=backend)
    return state.v


def test_kernel_flushes_a_subnormal_membrane_the_reference_keeps():
    ref, ker = _decaying_membrane("torch"), _decaying_membrane("cpu")
    assert bool(((ref > 0) & (ref < TINY)).all()), f"the reference should end subnormal, got {ref}"
    assert torch.equal(ker, torch.zeros_like(ker))


def test_callers_thread_keeps_subnormals_after_a_kernel_call():
    _decaying_membrane("cpu")
    x = torch.tensor([1e-39])  # subnormal: must survive arithmetic in the calling thread
    assert float((x * 1.0)[0]) > 0.0
    assert float(x[0] / 2) > 0.0
