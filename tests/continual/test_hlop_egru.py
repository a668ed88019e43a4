"""HLOP and GPM on ``nn.EGRU``, whose weights the kernels apply functionally: the inputs are read through the
module's ``WeightInput`` children (``x[t]`` for ``weight_ih_l{k}``, ``y[t-1]`` for ``weight_hh_l{k}``), the
gradient projection is exact on both backends, and inference and the plain model are unchanged."""

from __future__ import annotations

import copy

import pytest
import torch

from spikeseq.continual import HLOP, HLOPConfig
from spikeseq.continual.gpm import GPM, GPMConfig
from spikeseq.continual.plugin import TaskData
from spikeseq.errors import ConfigError
from spikeseq.functional.plasticity import principal_subspace
from spikeseq.nn import EGRU
from spikeseq.nn.weight_input import weight_inputs

LAYERS = ["weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"]


def _egru(backend: str = "torch") -> EGRU:
    return EGRU(5, 8, num_layers=2, thr_mean=0.1, eps=2.0, seed=0, backend=backend)


def _x(seed: int, t: int = 6, b: int = 4) -> torch.Tensor:
    return torch.rand(t, b, 5, generator=torch.Generator().manual_seed(seed)) * 2


def test_weight_inputs_are_the_products_inputs():
    rnn = _egru()
    assert sorted(weight_inputs(rnn)) == sorted(LAYERS) and not any(m.hooked for m in weight_inputs(rnn).values())
    assert set(rnn.state_dict()) == {f"{w}_l{k}" for k in (0, 1)
                                     for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "threshold")}
    hlop = HLOP(rnn, HLOPConfig(layers=None, k_init=2, input="step"))
    seen = {}
    hlop.update = lambda name, x: seen.__setitem__(name, x)
    hlop.begin_task(0)
    x = _x(0)
    out, _ = rnn(x)
    with torch.no_grad():
        y0, _ = EGRU.forward(_egru(), x)  # the same weights (seed 0), no hooks
        first, _ = _egru().eval().requires_grad_(False)(x)
    assert torch.equal(out.y, y0.y) and torch.equal(out.y, first.y)
    assert torch.equal(seen["weight_ih_l0"], x.reshape(-1, 5))
    # layer 1 reads layer 0's graded events y0; weight_hh_l1 reads y1[t-1] with zeros at t = 0
    y_prev = torch.cat([torch.zeros(1, 4, 8), out.y[:-1]])
    assert torch.equal(seen["weight_hh_l1"], y_prev.reshape(-1, 8))
    assert seen["weight_ih_l1"].shape == (24, 8) and seen["weight_hh_l0"].shape == (24, 8)
    assert torch.equal(seen["weight_hh_l0"][4:], seen["weight_ih_l1"][:-4])  # y0[t-1] vs y0[t]
    hlop.detach()
    assert not any(m.hooked for m in weight_inputs(rnn).values())


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_projected_updates_are_orthogonal_to_the_old_subspaces(backend):
    if backend == "cpu":
        from spikeseq.kernels.egru import cpu
        if not cpu.available()[0]:
            pytest.skip(cpu.available()[1])
    rnn = _egru(backend).double()   # float64: the weights' rounding does not hide the update's direction
    hlop = HLOP(rnn, HLOPConfig(layers=LAYERS, k_init=3, k_inc=2, freeze_1d=False, input="rate"))
    opt = torch.optim.SGD(rnn.parameters(), lr=0.2)

    def step(seed):
        out, _ = rnn(_x(seed).double())
        loss = (out.y.mean(0) - 0.3).pow(2).sum() + out.events.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    hlop.begin_task(0)
    for s in range(4):
        step(s)
    hlop.end_task()
    hlop.begin_task(1)
    w0 = {n: rnn.get_parameter(n).detach().clone() for n in LAYERS}
    for s in range(4):
        step(10 + s)
    for n in LAYERS:
        dw = rnn.get_parameter(n).detach() - w0[n]
        q = hlop.spaces[n].basis
        assert q.shape[0] == 3 and float(dw.norm()) > 1e-4, n   # it learned, outside the old subspace only
        assert float((dw @ q.t()).abs().max() / dw.norm()) < 1e-5, n


def test_gradients_equal_the_plain_models_projected():
    rnn = _egru()
    plain = copy.deepcopy(rnn)
    hlop = HLOP(rnn, HLOPConfig(layers=["weight_hh_l0", "weight_ih_l1"], k_init=3, k_inc=2, freeze_1d=False,
                                input="step"))
    hlop.begin_task(0)
    rnn(_x(1))
    hlop.end_task()
    hlop.begin_task(1)
    xa, xb = _x(2).requires_grad_(), _x(2).requires_grad_()
    oa, _ = rnn(xa)
    ob, _ = plain(xb)
    assert torch.equal(oa.y, ob.y)
    oa.y.sum().backward()
    ob.y.sum().backward()
    assert torch.equal(xa.grad, xb.grad)   # input gradients unchanged
    for n in ("weight_hh_l0", "weight_ih_l1"):
        g, gp = rnn.get_parameter(n).grad, plain.get_parameter(n).grad
        q = hlop.spaces[n].basis
        assert torch.allclose(g, gp - (gp @ q.t()) @ q, atol=1e-6)
    assert torch.equal(rnn.weight_ih_l0.grad, plain.weight_ih_l0.grad)   # not protected: untouched


def test_gpm_basis_is_the_principal_subspace_of_the_recurrent_inputs():
    rnn = EGRU(5, 8, thr_mean=0.1, seed=0, backend="torch").double()
    gpm = GPM(rnn, GPMConfig(layers=["weight_hh_l0"], k_init=3, freeze_1d=False, input="step"))
    gpm.begin_task(0)
    x = _x(3, t=8, b=16).double()
    gpm.end_task(TaskData(0, lambda size: iter([(x, torch.zeros(16, dtype=torch.int64))]), lambda *a: None))
    with torch.no_grad():
        y = rnn(x)[0].y
    rows = torch.cat([torch.zeros(1, 16, 8, dtype=y.dtype), y[:-1]]).reshape(-1, 8)   # y[t-1], zeros at t = 0
    q, p = gpm.bases["weight_hh_l0"], principal_subspace(rows, 3)
    assert float((q.t() @ q - p.t() @ p).abs().max()) < 1e-10   # the same projector (float64)


def test_bad_names_list_the_egru_weights():
    with pytest.raises(ConfigError, match="weight_hh_l0"):
        HLOP(_egru(), HLOPConfig(layers=["weight_hh_l7"], k_init=2, k_inc=1))
    rnn = _egru()
    rnn.weight_hh_l0.requires_grad_(False)
    with pytest.raises(ConfigError, match="frozen"):
        HLOP(rnn, HLOPConfig(layers=["weight_hh_l0"], k_init=2, k_inc=1))
    assert "weight_hh_l0" not in HLOP(rnn, HLOPConfig(layers=None, k_init=2, k_inc=1)).spaces


@pytest.mark.parametrize("setting", ["fixed k", "energy threshold"])
def test_gpm_basis_stays_orthonormal_when_a_task_has_fewer_directions_than_asked(setting):
    """A task whose inputs span fewer new directions than k_inc: fixed k fills up with directions orthogonal to
    everything protected (as HLOP's idle lateral neurons), the energy criterion adds only the data's directions.
    (The SVD's rows beyond the residual's rank span its null space, which holds the old basis: appended, they broke
    the basis' orthonormality, 0.999 off here and 0.7 on HAPT with an EGRU, where the projected training
    diverged.)"""
    net = torch.nn.Sequential(torch.nn.Linear(8, 2))
    kw = dict(k_init=2, k_inc=3) if setting == "fixed k" else dict(k_init=None, k_inc=None, threshold=0.999)
    gpm = GPM(net, GPMConfig(layers=["0"], freeze_1d=False, input="step", **kw))
    g = torch.Generator().manual_seed(0)

    def task(k: int, dims: int) -> TaskData:   # inputs on the first `dims` coordinates, exact zeros elsewhere
        x = torch.zeros(3, 32, 8)
        x[..., :dims] = torch.randn(3, 32, dims, generator=g)
        return TaskData(k, lambda size: iter([(x, torch.zeros(32, dtype=torch.int64))]), lambda *a: None)

    # fixed k: task 0 keeps 2 of its 3 directions, task 1 the third and 2 of the complement, task 2 the fourth
    # and 2 more (8 = n); energy: the 3 directions, nothing new, the fourth
    rows = (2, 5, 8) if setting == "fixed k" else (3, 3, 4)
    for k, dims in enumerate((3, 3, 4)):
        gpm.begin_task(k)
        gpm.end_task(task(k, dims))
        q = gpm.bases["0"]
        assert q.shape[0] == rows[k] and torch.allclose(q @ q.t(), torch.eye(rows[k]), atol=1e-5)
    seen = torch.eye(8)[:4]
    assert float((seen - (seen @ q.t()) @ q).abs().max()) < 1e-5   # every direction the tasks had is protected


def test_batch_first_egru_gives_per_sample_rates():
    """``nn.EGRU(batch_first=True)`` protected directly: its input is [B, T, I], its layers run time-first, and the
    rate input of weight_ih_l0 is each sample's mean over time."""
    rnn = EGRU(5, 8, thr_mean=0.1, seed=0, backend="torch", batch_first=True)
    hlop = HLOP(rnn, HLOPConfig(layers=["weight_ih_l0"], k_init=2, k_inc=1, input="rate"))
    seen = {}
    hlop.update = lambda name, x: seen.__setitem__(name, x)
    hlop.begin_task(0)
    x = _x(0, t=4, b=6).transpose(0, 1).contiguous()   # [B = 6, T = 4, 5]
    rnn(x)
    assert torch.allclose(seen["weight_ih_l0"], x.mean(1))


@pytest.mark.parametrize("method", ["hlop", "gpm"])
def test_projection_methods_refuse_a_model_that_prunes_during_training(method):
    """The pruning mask, re-applied after every optimizer step, moves the update out of the projected subspace."""
    from spikeseq.models import registry
    from spikeseq.train.tasks.continual import make_plugin

    model = registry.build("egru_classifier", input_size=6, n_classes=6, hidden=8,
                           prune={"sparsity": 0.5, "start": 0, "end": 10, "every": 1})
    with pytest.raises(ConfigError, match=r"model\.prune"):
        make_plugin(method, model, {"layers": ["out"], "k_init": 2, "k_inc": 1})
    assert make_plugin("ewc", model, {}) is not None   # a penalty, not a projection: unaffected
