"""A model family written OUTSIDE the spikeseq package plugs in with no change to spikeseq/.

The family (``toyfam``, written into ``tmp_path``) defines its own model type, an IR lowering for the wiring no
building block has (an output gain folded into the readout synapse) and an op counter for it. In this process it
registers through the public API (``register_family``) and is traced, exported to NIR with verification and
profiled; in subprocesses (``spikeseq train`` / ``export`` / ``profile``) it is found through the entry-point group
``spikeseq.families`` declared by a ``*.dist-info`` directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from spikeseq.graph import trace
from spikeseq.models.registry import build, families, family_of, register_family, unregister_family
from spikeseq.profile import count
from spikeseq.verify import export_and_verify

ROOT = Path(__file__).resolve().parents[2]

FAMILY_SRC = '''
"""toyfam: a tiny spiking classifier family living outside spikeseq."""

from typing import NamedTuple

import torch
from torch import nn

from spikeseq.graph import affine_node
from spikeseq.models.registry import Family
from spikeseq.nn import LI, LIF, StatefulModule
from spikeseq.profile import CounterSpec, full_steps


class ToyState(NamedTuple):
    hidden: object
    out: object


class ToyNet(StatefulModule):
    """x -> Linear -> LIF -> Linear -> LI, output multiplied by a fixed gain."""

    def __init__(self, n_in=3, n_out=2, hidden=8, tau_mem=0.02, dt=1e-3, gain=2.0):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n_in, hidden), nn.Linear(hidden, n_out)
        self.lif = LIF(tau_mem=tau_mem, dt=dt)
        self.li = LI(tau_mem=tau_mem, dt=dt)
        self.gain = float(gain)
        self.input_shape = (n_in,)

    def forward(self, x, state=None):
        s = state or ToyState(None, None)
        z, sh = self.lif(self.fc1(x), s.hidden)
        v, so = self.li(self.fc2(z), s.out)
        return self.gain * v, ToyState(sh, so)


def lower_toy(m, b, prev, shape, prefix):
    """The gain is linear: fold it into the readout synapse (LI is linear in its input)."""
    prev, shape = b.lower(m.fc1, prev, shape, prefix + "fc1_", path=b.child_path("fc1"))
    prev, shape = b.lower(m.lif, prev, shape, prefix + "lif_", path=b.child_path("lif"))
    node = affine_node(m.fc2)
    node = type(node)(node.weight * m.gain, node.bias * m.gain)
    prev = [b.add(prefix + "fc2_gain", node, prev)]
    return b.lower(m.li, prev, node.out_shape, prefix + "li_", path=b.child_path("li"))


def count_toy(m, args, kwargs, out, ctx):
    """One multiplication per output element per step for the gain (children are hooked themselves)."""
    y = out[0]
    return {"state_mults": full_steps(y.shape[0], y[0].numel())}


def family():
    """The entry point: a callable returning the Family."""
    return Family(name="toyfam", tasks=("classification",), builders={"toy_net": ToyNet},
                  lowerings={ToyNet: lower_toy},
                  counters={ToyNet: CounterSpec(count_toy, "composite", descend=True, time_first=True)},
                  module="toyfam")
'''


def _write_package(site: Path, entry_point: bool) -> Path:
    pkg = site / "toyfam"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(FAMILY_SRC))
    if entry_point:
        dist = site / "toyfam-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyfam\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text("[spikeseq.families]\ntoyfam = toyfam:family\n")
    return site


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """The family as a plain package on sys.path (registered by hand in this process)."""
    site = _write_package(tmp_path / "site", entry_point=False)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("toyfam", None)


def test_outside_family_registers_traces_exports_and_profiles(toy_package, tmp_path):
    toyfam = importlib.import_module("toyfam")
    fam = register_family(toyfam.family())
    try:
        assert family_of("toy_net") is families()["toyfam"] and fam.module == "toyfam"
        torch.manual_seed(0)
        model = build("toy_net", n_in=3, n_out=2, hidden=8).eval()
        g = trace(model, dt=1e-3)
        kinds = {k: n.kind for k, n in g.nodes.items()}
        assert kinds == {"input": "Input", "fc1_affine": "Affine", "lif_lif": "LIF", "fc2_gain": "Affine",
                         "li_li": "LI", "output": "Output"}
        assert torch.allclose(torch.as_tensor(g.nodes["fc2_gain"].weight), 2.0 * model.fc2.weight.detach())
        x = (torch.rand(20, 5, 3) < 0.3).float() * 4.0
        res = export_and_verify(model, "nir", tmp_path / "toy.nir", x, torch.zeros(5, dtype=torch.long), dt=1e-3)
        assert res.prediction_agreement == 1.0 and res.output_max_abs_diff < 1e-4
        assert res.layer_agreement["lif_lif"] == 1.0
        rep = count(model, x)
        top = [layer for layer in rep.layers if layer.name == "ToyNet"]
        assert top and float(top[0].counts["state_mults"].sum()) == 20 * 5 * 2   # the gain: T x B x n_out
        assert not rep.not_counted
    finally:
        unregister_family("toyfam")
    assert "toy_net" not in [n for f in families().values() for n in f.builders]


def _cli(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), SPIKESEQ_PROGRESS="0",
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "spikeseq.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_outside_family_through_the_entry_point_with_the_cli(tmp_path):
    site = _write_package(tmp_path / "site", entry_point=True)   # only the subprocesses see it
    g = torch.Generator().manual_seed(0)
    n, t = 48, 12
    y = torch.arange(n) % 2
    x = (torch.rand(n, t, 3, generator=g) < 0.15 + 0.5 * y.view(-1, 1, 1) * torch.tensor([1.0, 0.0, 1.0])).float()
    torch.save({"train": {"x": x[:32], "y": y[:32]}, "test": {"x": x[32:], "y": y[32:]}}, tmp_path / "toy.pt")
    (tmp_path / "toy.toml").write_text(textwrap.dedent(f'''
        name = "toy"
        task = "classification"
        [model]
        name = "toy_net"
        n_in = 3
        n_out = 2
        hidden = 8
        [data]
        name = "tensor_file"
        path = "{(tmp_path / 'toy.pt').as_posix()}"
        val_fraction = 0.25
        [train]
        epochs = 2
        batch_size = 8
        lr = 0.01
        threads = 1
        readout = "sum"
        [export]
        targets = ["nir"]
        samples = 8
        [profile]
        samples = 4
        '''))
    run = tmp_path / "run"
    p = _cli(["train", str(tmp_path / "toy.toml"), "--out", str(run)], site, tmp_path)
    assert p.returncode == 0, p.stderr
    ev = json.loads((run / "eval.json").read_text())
    assert ev["test"]["n"] == 16 and ev["model"]["name"] == "toy_net"
    p = _cli(["export", str(run), "--target", "nir"], site, tmp_path)
    assert p.returncode == 0, p.stderr
    nir = json.loads((run / "export" / "nir.json").read_text())
    assert nir["samples"] == 8 and nir["prediction_agreement"] == 1.0
    p = _cli(["profile", str(run)], site, tmp_path)
    assert p.returncode == 0, p.stderr
    prof = json.loads((run / "profile.json").read_text())
    layers = {layer["name"]: layer for layer in prof["report"]["layers"]}
    assert layers["ToyNet"]["totals_per_sample"]["state_mults"] == 12 * 2 and prof["report"]["not_counted"] == []
