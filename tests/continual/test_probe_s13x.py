"""Probe of HLOP on a 3-layer ``nn.EGRU`` with dropout between layers, zoneout and DropConnect (training mode): the
torch and C++ (cpu) backends capture the same weight inputs, build the same subspaces and give the same projected
gradients; the input captured for ``weight_ih_l1`` is the dropped-out sequence the product used."""

from __future__ import annotations

import pytest
import torch

from spikeseq.continual import HLOP, HLOPConfig
from spikeseq.nn import EGRU

LAYERS = [f"{w}_l{k}" for k in range(3) for w in ("weight_ih", "weight_hh")]


def _run(backend: str):
    rnn = EGRU(5, 8, num_layers=3, thr_mean=0.1, eps=2.0, seed=0, backend=backend, dropout=0.3, zoneout=0.2,
               dropconnect=0.2).double()
    hlop = HLOP(rnn, HLOPConfig(layers=LAYERS, k_init=3, k_inc=2, freeze_1d=False, input="step"))
    seen: dict[str, list[torch.Tensor]] = {}
    update = hlop.update
    hlop.update = lambda name, x: (seen.setdefault(name, []).append(x.clone()), update(name, x))
    x = torch.rand(6, 4, 5, generator=torch.Generator().manual_seed(0)).double() * 2
    hlop.begin_task(0)
    torch.manual_seed(1)
    out, _ = rnn.train()(x)
    out.y.sum().backward()
    hlop.end_task()
    hlop.begin_task(1)
    rnn.zero_grad()
    torch.manual_seed(2)
    out, _ = rnn(x)
    (out.y.sum() + out.events.sum()).backward()
    return rnn, hlop, seen


def test_backends_agree_with_dropout_zoneout_and_dropconnect():
    from spikeseq.kernels.egru import cpu
    if not cpu.available()[0]:
        pytest.skip(cpu.available()[1])
    a, b = _run("torch"), _run("cpu")
    for n in LAYERS:
        assert len(a[2][n]) == len(b[2][n]) == 2
        assert all(torch.allclose(u, v, atol=1e-12) for u, v in zip(a[2][n], b[2][n], strict=True)), n
        assert torch.equal(a[1].spaces[n].basis, b[1].spaces[n].basis), n
        assert torch.allclose(a[0].get_parameter(n).grad, b[0].get_parameter(n).grad, atol=1e-12), n
    # dropout p = 0.3 between layers: the captured input of weight_ih_l1 has the dropped (zeroed) entries and the
    # 1 / (1 - p) scaling the product saw, so it is not the previous layer's own output
    ih1 = a[2]["weight_ih_l1"][1]
    hh0 = a[2]["weight_hh_l0"][1].reshape(6, 4, 8)
    y0 = torch.cat([hh0[1:], hh0[:1]]).reshape(-1, 8)[:-4]   # y0[t] for t < T - 1, from weight_hh_l0's y0[t-1]
    kept = ih1[:-4] != 0
    assert torch.allclose(ih1[:-4][kept], y0[kept] / 0.7, atol=1e-12)
    assert int(((y0 != 0) & ~kept).sum()) > 0   # some active units were dropped


@pytest.mark.parametrize("threshold", [None, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gpm_fill_up_keeps_bases_orthonormal_on_rank_deficient_tasks(threshold, dtype):
    from torch import nn

    from spikeseq.continual.gpm import GPM, GPMConfig

    g = torch.Generator().manual_seed(0)
    for n in (1, 3, 7, 16):
        gpm = GPM(nn.Sequential(nn.Linear(n, 4)).to(dtype),
                  GPMConfig(layers=None, k_init=None if threshold else min(n, 2),
                            k_inc=None if threshold else 50, threshold=threshold))
        t, prev = gpm.targets[0], 0
        for task in range(5):
            gpm.task = task
            rank = int(torch.randint(0, min(n, 4) + 1, (), generator=g))
            r = torch.randn(9, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, n, generator=g,
                                                                                     dtype=torch.float64)
            if task % 2:
                r[:, : n // 2] = 0   # exact-zero coordinates
            q = gpm._grow(t, r).to(dtype)
            gpm.bases[t.name] = q
            k = q.shape[0]
            eye = torch.eye(k, dtype=torch.float64)
            tol = 1e-5 if dtype == torch.float32 else 1e-10
            assert k == 0 or float((q.double() @ q.double().t() - eye).abs().max()) < tol, (n, task)
            if threshold is None:   # k_inc larger than what is left: the whole input space, never more
                assert k == min(n, 2 if task == 0 else prev + 50), (n, task, k)
            else:
                assert prev <= k <= n
            prev = k
