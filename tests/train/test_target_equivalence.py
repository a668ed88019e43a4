"""Issue #19 item 2: a model trained (a few steps here) in target mode and the bit-exact interpreter on its
*exported* graph (the files' graph from ``write_loihi`` / ``write_spinnaker2``) give identical spikes on every neuron
node for real inputs, and readout values equal to float rounding: the N-MNIST MLP (``examples/nmnist_snn_mlp.toml``'s
model, N-MNIST event-count frames: graded events), the delay SNN (``spikeseq.models.delay_snn``, learned delays
rounded and frozen by target mode, BatchNorm folded) on N-MNIST, and L2MU on HAPT windows
(``examples/l2mu/l2mu_hapt.toml``'s model, real-valued inputs: fixed-point payloads on Loihi), each for Loihi and
SpiNNaker2. Real data from ``SPIKESEQ_DATA`` (the test fails without it under ``SPIKESEQ_REQUIRE_DATA=1``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeseq.graph.quantize import quantize_input
from spikeseq.graph.trace import trace
from spikeseq.models import registry
from spikeseq.train.target import target_mode
from spikeseq.verify import fixed_point_input
from tests.conftest import require_path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("loihi", "spinnaker2")


def _recipe_model(path: str, **override):
    kw = tomllib.loads((ROOT / path).read_text())["model"]
    kw.update(override)
    return registry.build(kw.pop("name"), **kw)


@pytest.fixture(scope="module")
def nmnist(data_root):
    from spikeseq.data import registry as data

    fr = data.load("nmnist", "test", root=require_path(data_root / "nmnist"), n_bins=30)
    x = torch.as_tensor(fr.x[:12]).float().transpose(0, 1).contiguous()   # [30, 12, 2, 34, 34] event counts
    return x, torch.as_tensor(fr.y[:12]).long()


@pytest.fixture(scope="module")
def hapt(data_root):
    from spikeseq.data import registry as data

    ds = data.load("hapt", "test", root=require_path(data_root / "har" / "hapt"))
    idx = torch.arange(0, len(ds.y), len(ds.y) // 8)[:8]        # windows from several subjects and activities
    x = ds.x[idx, :64].float()                                  # the first 64 of 128 steps: seconds
    x = (x - ds.x.mean((0, 1))) / ds.x.std((0, 1))               # per-channel standardisation, as normalize = true
    return x.transpose(0, 1).contiguous(), ds.y[idx].long()


def _train_steps(tm, x, y, steps: int = 3, lr: float = 5e-3, readout: str = "mean"):
    opt = torch.optim.Adam([p for p in tm.parameters() if p.requires_grad], lr)
    before = [p.detach().clone() for p in tm.parameters()]
    for _ in range(steps):
        out, _ = tm(x)
        logits = out.mean(0) if readout == "mean" else out[-1]
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, tm.parameters())), "training changed nothing"


def _exported(model, target, x, tmp_path, settings):
    """The graph the exporter writes (and reads back), and the integer inputs it is fed."""
    xs = x.double().numpy()
    g = trace(model.eval(), dt=settings.dt, input_shape=tuple(x.shape[2:]),
              input_payload="spikes" if np.isin(xs, (0, 1)).all() else "graded")
    s = settings.settings
    if target == "loihi":
        from spikeseq.export.loihi import write_loihi

        if s.input_frac_bits is not None:
            g, _ = fixed_point_input(g, xs, s.input_bits, s.input_frac_bits)
            xs = quantize_input(xs, s.input_frac_bits, s.input_bits)
        e = write_loihi(g, tmp_path / "model.net", check_mapping=False, **s.quantize_kwargs())
    else:
        from spikeseq.export.spinnaker2 import write_spinnaker2

        e = write_spinnaker2(g, tmp_path / "network.json", check_mapping=False)
    assert Path(e.path).is_file()
    return e.graph, xs


def _assert_identical(tm, x, target, tmp_path):
    from spikeseq.graph import simulate

    with torch.no_grad():
        res, _ = tm.run(x, record=True)
    graph, xs = _exported(tm.model, target, x, tmp_path, tm)
    sim = simulate(graph, xs, numerics=target)
    spiking = 0
    for name, tr in res.traces.items():
        a, b = tr.numpy(), sim.traces[name]
        if getattr(graph.nodes[name], "readout", False):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * max(1.0, float(np.abs(b).max())))
        else:
            assert np.array_equal(a, b), f"{target} {name}: {int((a != b).sum())} of {a.size} spikes differ"
            assert b.sum() > 0, f"{name} is silent: the comparison would be trivial"
            spiking += 1
    assert spiking >= 1
    np.testing.assert_allclose(res.output.numpy(), sim.output, rtol=0, atol=1e-9 * max(1.0, np.abs(sim.output).max()))


@pytest.mark.parametrize("target", TARGETS)
def test_nmnist_mlp(nmnist, target, tmp_path):
    x, y = nmnist
    torch.manual_seed(0)
    model = _recipe_model("examples/nmnist_snn_mlp.toml", hidden=64)
    model.eval()
    tm = target_mode(model, target)
    _train_steps(tm, x, y)
    _assert_identical(tm, x, target, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
def test_delay_snn(nmnist, target, tmp_path):
    x, y = nmnist
    x = x.flatten(2)
    torch.manual_seed(0)
    model = registry.build("delay_snn", n_inputs=x.shape[2], n_outputs=10, n_hidden=32, n_layers=1, max_delay=4,
                           dropout=0.0, v_th=0.5)
    model.train()                                   # one float step: BatchNorm statistics and delays move
    out, _ = model(model.pad(x))
    torch.nn.functional.cross_entropy(out.mean(0), y).backward()
    model.eval()
    tm = target_mode(model, target)                 # rounds and freezes the learned delays
    assert all(not d.delay.requires_grad for d in model.delay_layers())
    _train_steps(tm, model.pad(x), y)
    d = model.delay_layers()[0].delay
    assert torch.equal(d, d.round()) and d.max() > 0
    _assert_identical(tm, model.pad(x), target, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
def test_l2mu_hapt(hapt, target, tmp_path):
    from spikeseq.graph.quantize import input_frac_bits

    x, y = hapt
    torch.manual_seed(0)
    reset = "zero" if target == "loihi" else "subtract"   # SpiNNaker2 keeps the subtractive reset
    model = _recipe_model("examples/l2mu/l2mu_hapt.toml", reset=reset)
    k = input_frac_bits(float(x.abs().max()), 8) if target == "loihi" else None
    tm = target_mode(model, target, input_frac_bits=k)
    _train_steps(tm, x, y, steps=2, readout="last")
    _assert_identical(tm, x, target, tmp_path)
