"""spike_linear: exactly F.linear (outputs and all gradients) while saving its spike input as uint8."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeseq.errors import DTypeError, ParameterError, ShapeError
from spikeseq.kernels import spike_linear
from spikeseq.kernels.lif import _build


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_equals_f_linear_outputs_and_gradients(dtype, with_bias):
    z = (torch.rand(7, 3, 10) < 0.3).to(dtype).requires_grad_()
    w = torch.randn(4, 10, dtype=dtype, requires_grad=True)
    b = torch.randn(4, dtype=dtype, requires_grad=True) if with_bias else None
    g = torch.randn(7, 3, 4, dtype=dtype)
    leaves = [z, w] + ([b] if with_bias else [])
    y_ref = F.linear(z, w, b)
    ref = torch.autograd.grad((y_ref * g).sum(), leaves)
    y = spike_linear(z, w, b)
    got = torch.autograd.grad((y * g).sum(), leaves)
    assert torch.equal(y, y_ref)
    for a, c in zip(ref, got, strict=True):
        torch.testing.assert_close(c, a, atol=1e-12 if dtype == torch.float64 else 1e-5, rtol=0)


def test_saves_spikes_as_uint8_and_rejects_graded_input(monkeypatch):
    z = (torch.rand(50, 8, 16) < 0.2).float()
    w = torch.randn(5, 16, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        spike_linear(z, w)
    big = [t for t in saved if t.numel() == z.numel()]
    assert len(big) == 1 and big[0].dtype == torch.uint8
    for bad in (z * 0.5, z + 2 * z, -z):
        with pytest.raises(ParameterError, match="0s and 1s"):
            spike_linear(bad, w)
        with pytest.raises(ParameterError, match="0s and 1s"):
            spike_linear(bad.double(), w.double())
    monkeypatch.setattr(_build, "library", lambda: None)  # the pure-torch conversion and check
    with pytest.raises(ParameterError, match="0s and 1s"):
        spike_linear(z * 0.5, w)
    assert torch.equal(spike_linear(z, w), F.linear(z, w))
    with pytest.raises(ShapeError):
        spike_linear(z, torch.randn(5, 15))
    with pytest.raises(DTypeError):
        spike_linear(z.to(torch.uint8), w)
