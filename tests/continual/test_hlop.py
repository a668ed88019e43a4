"""HLOP plug-in: hooks on real spikeseq models, projection exactness, eval unchanged, resume, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spikeseq.continual import HLOP, HLOPConfig
from spikeseq.errors import ConfigError, ParameterError
from spikeseq.functional.plasticity import principal_angles
from spikeseq.models.lifnet import RSNN, SNNMLP
from spikeseq.nn import LIF, Sequential


def _mlp() -> SNNMLP:
    torch.manual_seed(0)
    return SNNMLP(12, 4, hidden=[16], tau_mem=0.01, dt=1e-3, v_th=0.5)


def _batch(t: int = 6, b: int = 8, n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(t, b, n, generator=g) * 2, torch.randint(0, 4, (b,), generator=g)


def _step(model, opt, x, y):
    out, _ = model(x)
    loss = nn.functional.cross_entropy(out.mean(0), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_projected_update_is_orthogonal_to_old_subspace():
    model = _mlp()
    hlop = HLOP(model, HLOPConfig(layers=["layers.1", "layers.3"], k_init=4, k_inc=3, iterations=2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    hlop.begin_task(0)
    for s in range(3):
        _step(model, opt, *_batch(seed=s))
    hlop.end_task()
    hlop.begin_task(1)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    w0 = {n: model.get_submodule(n).weight.detach().clone() for n in ("layers.1", "layers.3")}
    for s in range(3):
        _step(model, opt, *_batch(seed=10 + s))
    for n in ("layers.1", "layers.3"):
        dw = model.get_submodule(n).weight.detach() - w0[n]
        q = hlop.spaces[n].basis
        assert q.shape[0] == 4 and float(dw.norm()) > 1e-3  # it learned something
        assert float((dw @ q.t()).abs().max() / dw.norm()) < 1e-5
    assert hlop.spaces["layers.1"].k == 7 and hlop.spaces["layers.1"].n_old == 4
    assert not model[1].bias.requires_grad  # 1-D parameters frozen after the first task (the paper)


def test_input_gradients_and_outputs_unchanged():
    model = _mlp()
    plain = copy.deepcopy(model)
    hlop = HLOP(model, HLOPConfig(layers=["layers.1", "layers.3"], k_init=4, k_inc=2, freeze_1d=False))
    hlop.begin_task(0)
    hlop.end_task()
    hlop.begin_task(1)
    x, y = _batch()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    oa, _ = model(xa)
    ob, _ = plain(xb)
    assert torch.equal(oa, ob)
    nn.functional.cross_entropy(oa.mean(0), y).backward()
    nn.functional.cross_entropy(ob.mean(0), y).backward()
    assert torch.equal(xa.grad, xb.grad)
    g, gp = model[1].weight.grad, plain[1].weight.grad
    q = hlop.spaces["layers.1"].basis
    assert torch.allclose(g, gp - (gp @ q.t()) @ q, atol=1e-6)


def test_eval_runs_no_hook_and_learns_nothing():
    model = _mlp()
    hlop = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=4))
    hlop.begin_task(0)
    h0 = hlop.spaces["layers.1"].h.clone()
    model.eval()
    with torch.no_grad():
        model(_batch()[0])
    assert torch.equal(hlop.spaces["layers.1"].h, h0)
    model.train()
    model(_batch()[0])
    assert not torch.equal(hlop.spaces["layers.1"].h, h0)


def test_hebbian_rate_input_of_a_time_folded_layer():
    """The first Linear sees [T*B, n] (time folded); the rate input is the per-sample mean over T."""
    model = _mlp()
    hlop = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3, input="rate"))
    seen = []
    hlop.update = lambda name, x: seen.append(x)
    hlop.begin_task(0)
    x, _ = _batch()
    model(x)
    assert len(seen) == 1 and torch.allclose(seen[0], x.mean(0))


def test_recurrent_weights_and_conv_layers():
    torch.manual_seed(0)
    rsnn = RSNN(5, 3, hidden=10, tau_mem=0.05, dt=0.01, v_th=0.3)
    hlop = HLOP(rsnn, HLOPConfig(layers=["layers.0.fc", "layers.0.rec"], k_init=3, input="step"))
    seen = {}
    hlop.update = lambda name, x: seen.__setitem__(name, x)
    hlop.begin_task(0)
    x = torch.rand(7, 4, 5) * 3
    rsnn(x)
    assert seen["layers.0.rec"].shape == (7 * 4, 10) and seen["layers.0.fc"].shape == (7 * 4, 5)
    assert torch.equal(seen["layers.0.fc"], x.reshape(-1, 5))

    conv = Sequential(nn.Conv2d(2, 3, 3, padding=1), LIF(tau_mem=0.01, dt=1e-3), nn.Flatten(),
                      nn.Linear(3 * 6 * 6, 2))
    hc = HLOP(conv, HLOPConfig(layers=["layers.0", "layers.3"], k_init=4, input="step", freeze_1d=False))
    hc.begin_task(0)
    conv(torch.rand(3, 2, 2, 6, 6))
    hc.end_task()
    hc.begin_task(1)
    out, _ = conv(torch.rand(3, 2, 2, 6, 6))
    out.sum().backward()
    gw = conv[0].weight.grad.flatten(1)
    q = hc.spaces["layers.0"].basis
    assert q.shape == (4, 18) and float((gw @ q.t()).abs().max()) < 1e-6 * max(1.0, float(gw.norm()))


def test_checkpoint_resume_continues_identically():
    def run(split: bool):
        model = _mlp()
        hlop = HLOP(model, HLOPConfig(layers=["layers.1", "layers.3"], k_init=4, k_inc=2))
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        hlop.begin_task(0)
        _step(model, opt, *_batch(seed=0))
        hlop.end_task()
        hlop.begin_task(1)
        _step(model, opt, *_batch(seed=1))
        if split:
            st = copy.deepcopy((model.state_dict(), opt.state_dict(), hlop.state_dict()))
            hlop.detach()
            model = _mlp()
            opt = torch.optim.SGD(model.parameters(), lr=0.2)
            hlop = HLOP(model, HLOPConfig(layers=["layers.1", "layers.3"], k_init=4, k_inc=2))
            model.load_state_dict(st[0])
            opt.load_state_dict(st[1])
            hlop.load_state_dict(st[2])
        _step(model, opt, *_batch(seed=2))
        return model.state_dict(), hlop.state_dict()

    (ma, ha), (mb, hb) = run(False), run(True)
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
    for k in ha["spaces"]:
        assert torch.equal(ha["spaces"][k]["h"], hb["spaces"][k]["h"])
    assert ha["frozen"] == hb["frozen"]


def test_end_of_task_measurement_reports_the_subspace_quality_and_changes_nothing():
    from spikeseq.continual.plugin import TaskData
    from spikeseq.functional import plasticity as fp

    data = [_batch(seed=s) for s in range(3)]

    def run(measure: bool):
        model = _mlp()
        hlop = HLOP(model, HLOPConfig(layers=["layers.1", "layers.3"], k_init=4, k_inc=2, hebbian_passes=2,
                                      measure_subspace=measure))
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        for task in range(2):
            hlop.begin_task(task)
            for x, y in data:
                _step(model, opt, x, y)
            hlop.end_task(TaskData(task, lambda size: iter(data), lambda x, y: torch.zeros(())))
        return model, hlop

    model_a, hlop_a = run(True)
    model_b, hlop_b = run(False)
    for k, v in model_a.state_dict().items():
        assert torch.equal(v, model_b.state_dict()[k]), k
    for k in hlop_a.spaces:
        assert torch.equal(hlop_a.spaces[k].h, hlop_b.spaces[k].h)
    assert hlop_b.quality == [] and len(hlop_a.quality) == 2
    for task, per_layer in enumerate(hlop_a.quality):
        assert set(per_layer) == {"layers.1", "layers.3"}
        for q in per_layer.values():
            assert q["k"] == (4 if task == 0 else 2)
            assert 0.0 < q["captured"] <= q["best"] + 1e-12 <= 1.0 + 1e-12 and 0.0 < q["ratio"] <= 1.0 + 1e-12
    # the first layer's presynaptic input is the rate of the model input: the task-1 measurement by hand
    h = hlop_a.spaces["layers.1"].h.double()
    old = fp.orthonormal_basis(h[:4])
    rates = torch.cat([x.mean(0) for x, _ in data]).double()
    r = rates - (rates @ old.t()) @ old
    new = h[4:] - (h[4:] @ old.t()) @ old
    ref = fp.subspace_quality(r.t() @ r, new)
    for key in ("captured", "best", "ratio"):
        assert hlop_a.quality[1]["layers.1"][key] == pytest.approx(ref[key], rel=1e-6)
    assert hlop_a.diagnostics() == {"subspace_quality": hlop_a.quality}
    assert hlop_a.state_dict()["quality"] == hlop_a.quality


def test_bad_input_errors():
    model = _mlp()
    with pytest.raises(ConfigError, match="not a weighted layer"):
        HLOP(model, HLOPConfig(layers=["layers.2"]))  # a LIF population
    with pytest.raises(ConfigError, match="no layer named"):
        HLOP(model, HLOPConfig(layers=["layers.9"]))
    with pytest.raises(ParameterError, match="n = 12 input dimensions"):
        HLOP(model, HLOPConfig(layers=["layers.1"], k_init=13))
    hlop = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=10, k_inc=3))
    hlop.begin_task(0)
    hlop.end_task()
    with pytest.raises(ParameterError, match=r"would get 13 subspace neurons"):
        hlop.begin_task(1)
    with pytest.raises(ConfigError, match="in order"):
        HLOP(_mlp(), HLOPConfig(layers=["layers.1"], k_init=2)).begin_task(1)
    for bad, match in ((dict(normalize="maybe"), "normalize must be true or false"),
                       (dict(measure_subspace=2), "measure_subspace must be true or false"),
                       (dict(lr={"layers.1": -0.1}), "lr must be a finite number > 0.*layers.1"),
                       (dict(lr=float("nan")), "lr must be a finite number > 0"),
                       (dict(k_inc=1.5), "k_inc must be a whole number"),
                       (dict(hebbian_passes=-1), "hebbian_passes must be a whole number >= 0"),
                       (dict(hebbian_batch=0), "hebbian_batch must be a whole number >= 1")):
        with pytest.raises(ConfigError, match=match):
            HLOP(_mlp(), HLOPConfig(layers=["layers.1"], k_init=2, **bad))


def test_hebbian_subspace_matches_pca_of_the_same_inputs():
    """Rate inputs of the first layer of a spiking MLP, through the hooks: < 5 degrees from their PCA subspace."""
    model = _mlp()
    g = torch.Generator().manual_seed(5)
    mix = torch.linalg.qr(torch.randn(12, 3, generator=g))[0].t()
    xs = [torch.randn(2, 128, 3, generator=g) * torch.tensor([3.0, 2.5, 2.0]) @ mix
          + 0.1 * torch.randn(2, 128, 12, generator=g) for _ in range(30)]
    hlop = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3, lr=0.05, iterations=10))
    hlop.begin_task(0)
    for x in xs:
        model(x)
    ref = torch.cat([x.mean(0) for x in xs])
    from spikeseq.functional.plasticity import principal_subspace

    angles = torch.rad2deg(principal_angles(hlop.spaces["layers.1"].h, principal_subspace(ref, 3)))
    assert float(angles.max()) < 5.0


def test_spiking_lateral_circuit_uses_spike_counts():
    """With spiking = (S, T_l) the lateral activity y is the spike-count code (HLOP README: S = 20, T_l = 40)."""
    from spikeseq.functional.plasticity import oja_subspace_step, spike_quantise

    model = _mlp()
    hlop = HLOP(model, HLOPConfig(layers=["layers.1"], k_init=3, iterations=1, spiking=(20.0, 40.0)))
    hlop.begin_task(0)
    h0, m0 = hlop.spaces["layers.1"].h.clone(), hlop.spaces["layers.1"].m.clone()
    x = torch.rand(5, 12, dtype=torch.float32) * 3
    hlop.update("layers.1", x)
    y = spike_quantise(x @ h0.t(), 20.0, 40.0)
    d = (y.t() @ (x - y @ h0) / 5).clamp(-10, 10)
    assert torch.allclose(hlop.spaces["layers.1"].h, h0 + 0.01 * (0.1 * d), atol=1e-7)
    plain = oja_subspace_step(h0, m0, x, lr=0.01, iterations=1)[0]
    assert not torch.allclose(plain, hlop.spaces["layers.1"].h)  # the quantisation changed the update


def test_delay_linear_is_a_target():
    """DelayLinear: its weight [out, in] is protected like a Linear's (inputs taken undelayed, see layers.py)."""
    from spikeseq.nn import DelayLinear

    torch.manual_seed(0)
    net = Sequential(DelayLinear(6, 5, max_delay=3, learn_delay=False), LIF(tau_mem=0.01, dt=1e-3, v_th=0.3))
    hlop = HLOP(net, HLOPConfig(layers=["layers.0"], k_init=2, k_inc=1, input="step", freeze_1d=False))
    seen = {}
    hlop.update = lambda name, x: seen.__setitem__(name, x)
    hlop.begin_task(0)
    x = torch.rand(4, 3, 6)
    net(x)
    assert torch.equal(seen["layers.0"], x.reshape(-1, 6))
    hlop.end_task()
    hlop.begin_task(1)
    out, _ = net(torch.rand(4, 3, 6) * 3)
    out.sum().backward()
    q = hlop.spaces["layers.0"].basis
    assert float((net[0].weight.grad @ q.t()).abs().max()) < 1e-6
