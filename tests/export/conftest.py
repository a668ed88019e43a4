"""Small networks trained on real N-MNIST frames (shared by the export tests; trained once per session).

Frames: 20 time bins per recording, binary, 4x4 pooled pixels (2 x 9 x 9 = 162 inputs); 1000 train / 100 test
recordings of the shared subset. The nets are deliberately small (a few seconds of training on 2 CPU cores) and
reach about 70% test accuracy: enough to measure what quantisation costs, not a benchmark of the model.
"""

from __future__ import annotations

import pytest
import torch

from spikeseq import nn as snn
from spikeseq.nn.delay import DelayLinear
from tests.conftest import require_path

DT = 1e-3


def _load(root, split):
    from spikeseq.data import nmnist

    ds = nmnist.NMNIST(root, split, transform=nmnist.ToFrames(n_bins=20, binary=True, downsample=4))
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack(xs, 1).flatten(2), torch.tensor(ys)


@pytest.fixture(scope="session")
def nmnist_frames(data_root):
    root = require_path(data_root / "nmnist" / "NMNIST")
    return _load(root, "train"), _load(root, "test")


def _train(m, x, y, epochs, seed):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same summation order, hence the same weights, on every machine
    try:
        return _train_loop(m, x, y, epochs, seed)
    finally:
        torch.set_num_threads(threads)


def _train_loop(m, x, y, epochs, seed):
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], 2e-3)
    for e in range(epochs):
        m.train()
        perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed + e))
        for i in range(0, len(perm), 50):
            idx = perm[i:i + 50]
            out, _ = m(x[:, idx])
            loss = torch.nn.functional.cross_entropy(out.mean(0), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return m.eval()


@pytest.fixture(scope="session")
def trained_mlp(nmnist_frames):
    (x, y), _ = nmnist_frames
    torch.manual_seed(0)
    m = snn.Sequential(torch.nn.Linear(162, 64), snn.LIF(tau_mem=10e-3, dt=DT, reset="zero"),
                       torch.nn.Linear(64, 10), snn.LI(tau_mem=20e-3, dt=DT))
    return _train(m, x, y, epochs=5, seed=0)


@pytest.fixture(scope="session")
def trained_delay_snn(nmnist_frames):
    """Fixed random integer delays (0..4 steps, the DCLS paper's "fixed" variant), trained weights."""
    (x, y), _ = nmnist_frames
    torch.manual_seed(0)
    d = DelayLinear(162, 48, max_delay=4, learn_delay=False, bias=True)
    m = snn.Sequential(d, snn.LIF(tau_mem=10e-3, dt=DT, reset="zero"), torch.nn.Linear(48, 10),
                       snn.LI(tau_mem=20e-3, dt=DT))
    m = _train(m, x, y, epochs=4, seed=0)
    d.round_delays()
    return m
