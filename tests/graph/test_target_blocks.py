"""The recurrent component of target mode multiplies only the blocks of its weight matrix that hold synapses
(``spikeseq.graph.target_forward._block_spans`` / ``_BlockMatmul``): same products, same scan, same gradients as the
dense block matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeseq.graph import ir
from spikeseq.graph.target_forward import _block_spans, _BlockMatmul, _LoihiPop, _RecurrentScanFn, _S2Pop
from spikeseq.surrogate import ATan

#: an L2MU-like cycle: u <- m, h; m <- u, m; h <- m, h (sizes 3, 5, 4)
COMP = ["u", "m", "h"]
SIZES = [3, 5, 4]
INTERNAL = {"u": [("e_m", "m"), ("e_h", "h")], "m": [("b", "u"), ("a", "m")], "h": [("w_m", "m"), ("w_h", "h")]}
OFFS = {"u": 0, "m": 3, "h": 8}


def _mask(internal: dict) -> torch.Tensor:
    """1 on the blocks of ``internal``'s synapses, 0 elsewhere."""
    mask = torch.zeros(12, 12, dtype=torch.float64)
    for p, n in zip(COMP, SIZES):
        for _, src in internal[p]:
            mask[OFFS[p]:OFFS[p] + n, OFFS[src]:OFFS[src] + SIZES[COMP.index(src)]] = 1
    return mask


def _block_weight(seed: int) -> torch.Tensor:
    """Integer weights on the blocks of :data:`INTERNAL`, zero elsewhere."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-40, 41, (12, 12), generator=g).double() * _mask(INTERNAL)


def test_spans_merge_adjacent_sources_and_tile_the_rows():
    spans = _block_spans(COMP, INTERNAL, SIZES, OFFS)
    assert spans == (((0, 3), ((3, 12),)), ((3, 8), ((0, 8),)), ((8, 12), ((3, 12),)))
    gap = {"u": [("x", "u"), ("y", "h")], "m": [("z", "m")], "h": [("q", "u")]}   # u <- u, h: two ranges
    assert _block_spans(COMP, gap, SIZES, OFFS)[0] == ((0, 3), ((0, 3), (8, 12)))


def test_block_products_equal_the_dense_ones():
    w = _block_weight(1)
    gap = {"u": [("x", "u"), ("y", "h")], "m": [("z", "m")], "h": [("q", "u")]}
    g = torch.Generator().manual_seed(2)
    for internal in (INTERNAL, gap):
        mask = _mask(internal)
        wm = w * mask
        mm = _BlockMatmul(wm, _block_spans(COMP, internal, SIZES, OFFS), back_scale=64.0)
        x, gr = torch.randn(7, 12, generator=g, dtype=torch.float64), torch.randn(7, 12, generator=g,
                                                                                 dtype=torch.float64)
        torch.testing.assert_close(mm.forward(x), x @ wm.t(), rtol=0, atol=1e-12)
        torch.testing.assert_close(mm.backward(gr), gr @ (64.0 * wm), rtol=0, atol=1e-10)
        a, s = torch.randn(20, 12, generator=g, dtype=torch.float64), torch.randn(20, 12, generator=g,
                                                                                 dtype=torch.float64)
        torch.testing.assert_close(mm.weight_grad(a, s), (a.t() @ s) * mask, rtol=0, atol=1e-12)


def _pop(target: str, n: int):
    th = np.full(n, 30.0)
    if target == "loihi":
        node = ir.LoihiCUBA(i_decay=np.full(n, 4096), v_decay=np.linspace(300, 900, n).round(), vth=th,
                            bias=np.zeros(n), bias_exp=0, scale=1.0)
        return _LoihiPop(node, None, ATan(alpha=2.0), detach_reset=False)
    node = ir.S2LIF(alpha_decay=np.linspace(0.7, 0.9, n), threshold=th, v_reset=np.zeros(n),
                    i_offset=np.zeros(n), w_scale=64.0, reset="zero")
    return _S2Pop(node, None, ATan(alpha=2.0), detach_reset=False)


@pytest.mark.parametrize("target", ["loihi", "spinnaker2"])
def test_block_scan_equals_dense_scan_with_gradients(target):
    """The whole recurrent scan with its block spans and with one dense span: identical spikes, identical gradients
    of the external input, the weights and the bias."""
    w0 = _block_weight(3)
    g = torch.Generator().manual_seed(4)
    ext0 = torch.randint(-3, 9, (25, 4, 12), generator=g).double()
    probe = torch.randn(25, 4, 12, generator=g, dtype=torch.float64)
    runs = []
    for spans in (_block_spans(COMP, INTERNAL, SIZES, OFFS), (((0, 12), ((0, 12),)),)):
        ext, w = ext0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
        pop = _pop(target, 12)
        bias = torch.zeros(12, dtype=torch.float64, requires_grad=True)
        pop.bias = bias
        out = _RecurrentScanFn.apply(ext, w, bias, pop, True, spans)
        (out.double() * probe).sum().backward()
        runs.append((out.detach(), ext.grad, w.grad, bias.grad))
    (o1, ge1, gw1, gb1), (o2, ge2, gw2, gb2) = runs
    assert 0 < float(o1.mean()) < 1 and torch.equal(o1, o2)
    assert ge1.abs().sum() > 0 and gw1.abs().sum() > 0
    # gradients run in float32 (the products summed in another order: float32 rounding apart)
    mask = _mask(INTERNAL)
    for a, b in ((ge1, ge2), (gb1, gb2), (gw1, gw2 * mask)):    # the blocks with synapses; none elsewhere
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))
    assert gw1[mask == 0].abs().sum() == 0 < gw2[mask == 0].abs().sum()
