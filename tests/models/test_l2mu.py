"""L2MU: the cell equations against an independent per-step reference, streaming, neurons, errors."""

from __future__ import annotations

import pytest
import torch

from spikeseq import functional as F
from spikeseq.errors import NonFiniteError, ParameterError, ShapeError
from spikeseq.functional.lmu import lmu_matrices
from spikeseq.models import registry
from spikeseq.models.l2mu import L2MU
from spikeseq.nn import LIF, CubaLIF


def _small(**kw):
    cfg = dict(order=3, theta=5.0, hidden_size=7, memory_size=4, input_pop_size=5)
    cfg.update(kw)
    return L2MU(3, 2, **cfg).double()


def _reference(model: L2MU, x: torch.Tensor, reset: str = "subtract") -> torch.Tensor:
    """The cell equations of the module docstring, written out with the functional neurons (LIF model)."""
    def lif(pop, i, v):
        z, st = F.lif_step(i, None if v is None else F.LIFState(v), beta=pop.beta, v_th=pop.v_th, reset=reset)
        return z, st.v

    a, b = lmu_matrices(model.order, model.theta, dtype=torch.float64)
    bsz = x.shape[1]
    s_h = torch.zeros(bsz, model.hidden_size, dtype=x.dtype)
    s_m = torch.zeros(bsz, model.memory_size * model.order, dtype=x.dtype)
    vx = vu = vm = vh = vo = None
    counts = torch.zeros(bsz, model.n_classes, dtype=x.dtype)
    out = []
    for t in range(x.shape[0]):
        s_x, vx = lif(model.pop_x, x[t] @ model.w_in.weight.T, vx)
        i_u = s_x @ model.e_x.weight.T + s_h @ model.e_h.weight.T + s_m @ model.e_m.weight.T
        s_u, vu = lif(model.pop_u, i_u, vu)
        i_m = torch.einsum("ij,bnj->bni", a, s_m.view(bsz, model.memory_size, model.order)) \
            + s_u.unsqueeze(-1) * b
        s_m, vm = lif(model.pop_m, i_m.reshape(bsz, -1), vm)
        i_h = s_x @ model.w_x.weight.T + s_h @ model.w_h.weight.T + s_m @ model.w_m.weight.T
        s_h, vh = lif(model.pop_h, i_h, vh)
        s_o, vo = lif(model.pop_out, s_h @ model.w_out.weight.T, vo)
        counts = counts + s_o
        out.append(counts)
    return torch.stack(out)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_cell_matches_reference_equations(reset):
    torch.manual_seed(0)
    model = _small(v_th_u=0.05, v_th_m=0.05, v_th_h=0.05, v_th_out=0.05, reset=reset)
    with torch.no_grad():
        model.e_m.weight.normal_()  # zero at init; make the m -> u feedback path matter here
        for lin in (model.w_in, model.e_x, model.w_x, model.w_out):
            lin.weight.mul_(3)
    x = torch.randn(12, 4, 3, dtype=torch.float64)
    y, _ = model(x)
    ref = _reference(model, x, reset)
    assert ref[-1].sum() > 0  # the output population fired, so the comparison is not vacuous
    assert {p.reset for p in (model.pop_x, model.pop_u, model.pop_m, model.pop_h, model.pop_out)} == {reset}
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


def test_streaming_chunks_equal_whole_window():
    torch.manual_seed(1)
    for readout in ("spike_count", "membrane"):
        model = _small(readout=readout, neuron="cuba")
        x = torch.randn(20, 3, 3, dtype=torch.float64)
        y, _ = model(x)
        y1, s = model(x[:7])
        y2, s = model(x[7:8], s)
        y3, _ = model(x[8:], s)
        torch.testing.assert_close(torch.cat([y1, y2, y3]), y, rtol=0, atol=1e-12)


def test_populations_are_foundation_neurons_with_learnable_beta_and_threshold():
    for neuron, cls in (("lif", LIF), ("cuba", CubaLIF)):
        model = _small(neuron=neuron)
        for name in ("pop_x", "pop_u", "pop_m", "pop_h", "pop_out"):
            pop = getattr(model, name)
            assert type(pop) is cls
            assert isinstance(pop.v_th, torch.nn.Parameter)
            assert any(p is pop.time.beta_mem for p in model.parameters())
        # the Legendre matrices are frozen buffers, not parameters
        names = dict(model.named_parameters())
        assert not any("a_bar" in n or "b_bar" in n for n in names)
        assert torch.equal(model.a_bar, lmu_matrices(3, 5.0)[0])


def test_gradients_reach_every_parameter_and_spikes_are_binary():
    torch.manual_seed(2)
    model = L2MU(6, 6, order=2, theta=4.0, hidden_size=16, memory_size=8, input_pop_size=8)
    x = torch.randn(16, 5, 6)
    y, _, stats = model.forward_with_spike_counts(x)
    assert y.shape == (16, 5, 6)
    assert torch.all(y[1:] >= y[:-1])  # spike counts only grow
    assert torch.equal(y, y.round())  # ... in whole spikes
    torch.nn.functional.cross_entropy(y[-1], torch.arange(5) % 6).backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
    assert model.e_m.weight.grad.abs().sum() > 0  # zero-initialised feedback still learns
    assert set(stats) == {"x", "u", "m", "h", "out"}
    assert stats["out"][0] == pytest.approx(float(y[-1].detach().sum()))
    assert stats["h"][1] == 16 * 5 * 16 and stats["m"][1] == 16 * 5 * 8 * 2


def test_direct_input_module_has_no_input_population():
    model = L2MU(6, 4, input_module="direct", order=2, theta=4.0, hidden_size=8, memory_size=4)
    assert not hasattr(model, "pop_x") and model.e_x.in_features == 6
    y, _ = model(torch.randn(5, 2, 6))
    assert y.shape == (5, 2, 4)


def test_registry_builds_the_lmu_family():
    assert {"l2mu", "lmuformer", "spiking_lmuformer", "gru_baseline", "lmu_baseline"} <= set(registry.names())
    m = registry.build("l2mu", order=2, theta=4.0, hidden_size=8, memory_size=4)
    assert isinstance(m, L2MU) and m.n_classes == 6
    for name in ("gru_baseline", "lmu_baseline"):
        y, _ = registry.build(name, input_size=6, n_classes=4)(torch.randn(9, 2, 6))
        assert y.shape == (9, 2, 4)


def test_bad_configuration_and_inputs():
    for kw in (dict(order=0), dict(theta=0.0), dict(theta=-1.0), dict(theta=0.5), dict(neuron="alif"),
               dict(input_module="rate"), dict(readout="max"), dict(hidden_size=0)):
        with pytest.raises(ParameterError):
            L2MU(6, 6, **kw)
    model = _small()
    with pytest.raises(ShapeError, match="3 sensor channels"):
        model(torch.zeros(10, 2, 6, dtype=torch.float64))
    with pytest.raises(ShapeError):
        model(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ShapeError, match="empty time axis"):
        model(torch.zeros(0, 2, 3, dtype=torch.float64))
    x = torch.zeros(10, 2, 3, dtype=torch.float64)
    x[3, 1, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="batch rows \\[1\\]"):
        model(x)


def test_param_groups_split_synapses_from_thresholds_and_decays():
    """``neurons`` holds exactly each population's threshold and decay (the l2mu_hapt recipe trains them at a tenth
    of the lr); ``weights`` the rest; together every parameter once; a group lr reaches the optimizer."""
    from types import SimpleNamespace

    from spikeseq.train.optim import param_groups

    m = _small()
    groups = m.param_groups()
    names = {id(p): n for n, p in m.named_parameters()}
    assert sorted(names[id(p)] for p in groups["neurons"]) == sorted(
        n for n, _ in m.named_parameters() if n.endswith(".v_th") or ".time." in n)
    assert len(groups["neurons"]) == 2 * 5  # x, u, m, h and the spiking readout: a threshold and a decay each
    assert sorted(map(id, groups["weights"] + groups["neurons"])) == sorted(map(id, m.parameters()))
    t = SimpleNamespace(groups={"neurons": {"lr": 5e-4}}, scheduler="onecycle", lr=5e-3, weight_decay=0.0,
                        weight_decay_on="weights")
    out, _ = param_groups(m, t)
    assert {g["name"]: g["lr"] for g in out} == {"weights": 5e-3, "neurons": 5e-4}
