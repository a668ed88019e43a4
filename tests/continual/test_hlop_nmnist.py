"""HLOP's Hebbian subspace on real N-MNIST layer inputs equals their PCA subspace (< 5 degrees)."""

from __future__ import annotations

import torch

from spikeseq.continual import HLOP, HLOPConfig
from spikeseq.functional.plasticity import principal_angles, principal_subspace
from spikeseq.models.lifnet import SNNMLP
from tests.conftest import require_path


def test_hebbian_subspace_of_nmnist_inputs_matches_pca(data_root):
    from spikeseq.data import nmnist

    root = require_path(data_root / "nmnist" / "NMNIST")
    fs = nmnist.load_frames(root, "train", n_bins=10, downsample=2, cache=False, show_progress=False)
    x = fs.x.float().transpose(0, 1)  # [T, N, 2, 17, 17] time-first, 1000 recordings
    model = SNNMLP(2 * 17 * 17, 10, hidden=[32], tau_mem=0.02, dt=1e-3)
    # eta: the rate inputs' largest correlation eigenvalue is ~860, so eta * lambda_max must stay O(1)
    hlop = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=5, lr=4e-3, input="rate"))
    hlop.begin_task(0)
    g = torch.Generator().manual_seed(0)
    for epoch in range(12):
        if epoch in (4, 8):
            hlop.scale_lr(0.25)  # annealed, as the reference code's adjust_lr, to shrink the minibatch noise
        perm = torch.randperm(x.shape[1], generator=g)
        for i in range(0, x.shape[1], 100):
            model(x[:, perm[i:i + 100]])
    rates = x.mean(0).flatten(1)
    angles = torch.rad2deg(principal_angles(hlop.spaces["layers.1"].h, principal_subspace(rates, 5)))
    print("max principal angle (deg):", float(angles.max()))
    assert float(angles.max()) < 5.0, angles
