"""Principal angles between HLOP's Hebbian subspace and the PCA subspace of the same inputs -> results/hlop/angles.json.

    python examples/hlop/angles.py [--out results/hlop/angles.json]

Two measurements (the same as tests/continual/test_plasticity.py and test_hlop_nmnist.py):

* synthetic: 32-dim inputs, a 4-dim signal (std 3, 2.5, 2, 1.5) plus noise 0.1, 200 batches of 64, eta 0.01;
* N-MNIST: the rate inputs of the first layer of a spiking MLP on the 1,000 training recordings of the shared
  subset (10 bins, 2x downsampled: 578 dims), k = 5, eta 4e-3 annealed x0.25 after epochs 4 and 8 (12 epochs of
  batches of 100), through the HLOP hooks during forward passes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from spikeseq.functional import plasticity as fp


def synthetic() -> list[float]:
    """Angles (degrees) on the synthetic stream."""
    n, k, bs = 32, 4, 64
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(n, k, generator=g))[0].t()
    z = torch.randn(200 * bs, k, generator=g) * torch.linspace(3.0, 1.5, k)
    x = z @ basis + 0.1 * torch.randn(200 * bs, n, generator=g)
    h = torch.linalg.qr(torch.randn(n, k, generator=torch.Generator().manual_seed(1)))[0].t().contiguous()
    m = torch.zeros_like(h)
    for i in range(200):
        h, m = fp.oja_subspace_step(h, m, x[i * bs:(i + 1) * bs], lr=0.01)
    return torch.rad2deg(fp.principal_angles(h, fp.principal_subspace(x, k))).tolist()


def nmnist(root: Path) -> list[float]:
    """Angles (degrees) on N-MNIST first-layer rate inputs."""
    from spikeseq.continual import HLOP, HLOPConfig
    from spikeseq.data import nmnist as nm
    from spikeseq.models.lifnet import SNNMLP

    fs = nm.load_frames(root, "train", n_bins=10, downsample=2, cache=False, show_progress=False)
    x = fs.x.float().transpose(0, 1)
    torch.manual_seed(0)
    model = SNNMLP(2 * 17 * 17, 10, hidden=[32], tau_mem=0.02, dt=1e-3)
    hlop = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=5, lr=4e-3, input="rate"))
    hlop.begin_task(0)
    g = torch.Generator().manual_seed(0)
    for epoch in range(12):
        if epoch in (4, 8):
            hlop.scale_lr(0.25)
        perm = torch.randperm(x.shape[1], generator=g)
        for i in range(0, x.shape[1], 100):
            model(x[:, perm[i:i + 100]])
    ref = fp.principal_subspace(x.mean(0).flatten(1), 5)
    return torch.rad2deg(fp.principal_angles(hlop.spaces["layers.1"].h, ref)).tolist()


def main(argv: list[str] | None = None) -> int:
    """Command line (see module docstring)."""
    from spikeseq.provenance import git_commit
    from spikeseq.train.rundir import write_json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/hlop/angles.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = Path(os.environ.get("SPIKESEQ_DATA", "")) / "nmnist" / "NMNIST"
    res = {"commit": git_commit(), "command": "python examples/hlop/angles.py", "synthetic_deg": synthetic()}
    if root.is_dir():
        res["nmnist_deg"] = nmnist(root)
    else:
        print(f"angles: no N-MNIST at {root} (set SPIKESEQ_DATA); synthetic only", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, res)
    print({k: (max(v) if isinstance(v, list) else v) for k, v in res.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
