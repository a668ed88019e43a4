"""Differential probe of the delay, LMU and fixed-point families on networks and parameters the other tests do not
use: spikeseq against the ``dcls`` package, a hand-built shift register, scipy's ``expm``, the spec equations of
L2MU (specs/models.md §2, §5) and the Loihi / SpiNNaker2 fixed point written out from specs/targets.md §2.2, §4.2,
§4.4 independently of the quantiser and the interpreter.

Each comparison states its tolerance; conventions where spikeseq differs on purpose are encoded as such.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from spikeseq.functional import delay as fd
from spikeseq.functional.lmu import LMUState, lmu_matrices, lmu_memory_fft, lmu_memory_scan
from spikeseq.graph import ir, quantize, simulate
from spikeseq.models.l2mu import L2MU
from spikeseq.nn import DelayLinear, LMUMemory

DT = 1e-3


# ------------------------------------------------------------------------------------------------ delays vs dcls
def _dcls_pair(n_in, n_out, k, kc, sigma, gen):
    """A dcls ``Dcls1d`` (float64) with random weights, real positions inside the kernel and ``SIG = sigma``, and the
    spikeseq delays ``d = (K - 1 - K//2) - P`` of the same taps (the conv index of tap P is P + K//2, its delay
    K - 1 - index after a left pad of K - 1; for odd K this is the docstring's ``p = K//2 - d``)."""
    modules = pytest.importorskip("DCLS.construct.modules")
    ref = modules.Dcls1d(n_in, n_out, kernel_count=kc, dilated_kernel_size=k, bias=False, version="gauss").double()
    d = torch.rand(n_out, n_in, kc, generator=gen, dtype=torch.float64) * (k - 1)
    d[0, 0, 0], d[-1, -1, -1] = 0.0, float(k - 1)           # taps exactly at delay 0 and at max_delay
    with torch.no_grad():
        ref.weight.copy_(torch.randn(n_out, n_in, kc, generator=gen, dtype=torch.float64))
        ref.P.copy_(((k - 1 - k // 2) - d).view(1, n_out, n_in, kc))
        ref.SIG.fill_(sigma)
    return ref, d


@pytest.mark.parametrize("n_in,n_out,k,kc,sigma,t", [
    (5, 3, 9, 1, 2.5, 20), (7, 4, 25, 1, 0.23, 40), (3, 6, 31, 3, 4.0, 50), (4, 4, 8, 2, 1.0, 20),
    (6, 5, 2, 1, 0.0, 10), (2, 3, 12, 4, -1.3, 30)])
def test_gaussian_delays_and_gradients_equal_dcls(n_in, n_out, k, kc, sigma, t):
    """Outputs and the gradients w.r.t. weights and positions equal dcls ``Dcls1d(version="gauss")`` for odd and
    even kernel sizes, several taps per synapse (kernel_count = the sum of one spikeseq kernel per tap), sigma 0 and
    negative (both use |sigma| + 0.27). dcls adds 1e-7 to the normaliser: differences <= 1e-5 (measured <= 6e-6)."""
    gen = torch.Generator().manual_seed(11 + k + kc)
    ref, d = _dcls_pair(n_in, n_out, k, kc, sigma, gen)
    x = torch.randn(t, 3, n_in, generator=gen, dtype=torch.float64)
    y_ref = ref(torch.nn.functional.pad(x.permute(1, 2, 0), (k - 1, 0))).permute(2, 0, 1)
    w = ref.weight.detach().clone().requires_grad_(True)
    dd = d.clone().requires_grad_(True)
    y = sum(fd.delay_gaussian(x, weight=w[..., c], delay=dd[..., c], sigma=sigma, max_delay=k - 1)[0]
            for c in range(kc))
    g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    (y * g).sum().backward()
    (y_ref * g).sum().backward()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dd.grad, -ref.P.grad[0], rtol=1e-5, atol=1e-5)   # d = const - P


def test_positions_outside_the_kernel_are_clamped_in_the_forward_unlike_dcls():
    """Convention: spikeseq clamps the delays to [0, max_delay] inside the forward (and passes no gradient to a
    clamped delay); dcls uses the raw position and relies on ``clamp_parameters()`` after each step. With the
    positions clamped first, both agree."""
    gen = torch.Generator().manual_seed(5)
    k = 9
    ref, d = _dcls_pair(3, 2, k, 1, 1.5, gen)
    d[0, 1, 0], d[1, 2, 0] = -0.7, k - 1 + 0.6
    with torch.no_grad():
        ref.P.copy_(((k - 1 - k // 2) - d).view(1, 2, 3, 1))
    x = torch.randn(20, 2, 3, generator=gen, dtype=torch.float64)
    pad = lambda v: torch.nn.functional.pad(v.permute(1, 2, 0), (k - 1, 0))  # noqa: E731
    dd = d[..., 0].clone().requires_grad_(True)
    y, _ = fd.delay_gaussian(x, weight=ref.weight.detach()[..., 0], delay=dd, sigma=1.5, max_delay=k - 1)
    y.sum().backward()
    assert (y - ref(pad(x)).permute(2, 0, 1)).abs().max() > 1e-3            # dcls: the unclamped taps
    ref.clamp_parameters()                                                  # P into [-K//2, K//2]
    torch.testing.assert_close(y, ref(pad(x)).permute(2, 0, 1), rtol=1e-5, atol=1e-6)
    assert dd.grad[0, 1] == 0 and dd.grad[1, 2] == 0 and dd.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ integer delays
def _shift_register(x, w, d, history=None):
    """One FIFO per synapse of length D (preloaded with the history's last D steps): push x[t], pop the output."""
    t_len, b, n = x.shape
    y = torch.zeros(t_len, b, w.shape[0], dtype=x.dtype)
    md = None if history is None else history.shape[0]
    regs = {(j, i): ([history[md - int(d[j, i]) + s, :, i].clone() for s in range(int(d[j, i]))] if history is not None
                     else [torch.zeros(b, dtype=x.dtype) for _ in range(int(d[j, i]))])
            for j in range(w.shape[0]) for i in range(n)}
    for t in range(t_len):
        for (j, i), r in regs.items():
            r.append(x[t, :, i])
            y[t, :, j] += w[j, i] * r.pop(0)
    return y


@pytest.mark.parametrize("md,n,o,t", [(1, 3, 2, 5), (6, 4, 3, 12), (13, 5, 4, 30)])
def test_integer_delays_equal_a_shift_register_and_split_calls_equal_one(md, n, o, t):
    gen = torch.Generator().manual_seed(md)
    w = torch.randn(o, n, generator=gen, dtype=torch.float64)
    d = torch.randint(0, md + 1, (o, n), generator=gen)
    d[0, 0], d[-1, -1] = 0, md                                               # both ends of the range
    x = (torch.rand(t, 2, n, generator=gen) < 0.4).double() * torch.randn(t, 2, n, generator=gen, dtype=torch.float64)
    y, st = fd.delay_integer(x, weight=w, delay=d, max_delay=md)
    torch.testing.assert_close(y, _shift_register(x, w, d), rtol=0, atol=1e-12)
    torch.testing.assert_close(st.x, x[-md:], rtol=0, atol=0)
    hist = torch.randn(md, 2, n, generator=gen, dtype=torch.float64)        # a carried history
    yh, _ = fd.delay_integer(x, fd.DelayState(hist), weight=w, delay=d, max_delay=md)
    torch.testing.assert_close(yh, _shift_register(x, w, d, hist), rtol=0, atol=1e-12)
    zero = fd.DelayState(torch.zeros(md, 2, n, dtype=torch.float64))
    yg, _ = fd.delay_gaussian(x, zero, weight=w, delay=d.double() + 0.3, sigma=0.7, max_delay=md)
    for cut in sorted({1, md, t - 1}):
        y1, s1 = fd.delay_integer(x[:cut], zero, weight=w, delay=d, max_delay=md)
        y2, s2 = fd.delay_integer(x[cut:], s1, weight=w, delay=d, max_delay=md)
        torch.testing.assert_close(torch.cat([y1, y2]), y, rtol=0, atol=1e-12)
        torch.testing.assert_close(s2.x, st.x, rtol=0, atol=0)
        g1, r1 = fd.delay_gaussian(x[:cut], zero, weight=w, delay=d.double() + 0.3, sigma=0.7, max_delay=md)
        g2, _ = fd.delay_gaussian(x[cut:], r1, weight=w, delay=d.double() + 0.3, sigma=0.7, max_delay=md)
        torch.testing.assert_close(torch.cat([g1, g2]), yg, rtol=0, atol=1e-12)


def test_eval_rounds_half_positions_to_even_and_the_gaussian_limit_splits_them():
    """Convention: eval mode and export round with ``torch.round`` (half to even, as SNN-delays' ``round_pos``):
    0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 5.5 -> 6; out-of-range positions clamp first. At exactly .5 the sigma -> 0 limit
    of the Gaussian taps is an even split between the two neighbours, not the rounded shift."""
    layer = DelayLinear(4, 1, 6)
    with torch.no_grad():
        layer.delay.copy_(torch.tensor([[0.5, 1.5, 2.5, 5.5]]))
    assert layer.eval_delays().tolist() == [[0.0, 2.0, 2.0, 6.0]]
    with torch.no_grad():
        layer.delay.copy_(torch.tensor([[-0.5, 6.5, 6.49, 0.4999]]))
    assert layer.eval_delays().tolist() == [[0.0, 6.0, 6.0, 0.0]]
    taps = fd.gaussian_taps(torch.tensor([[0.5, 2.5]]), 1e-3, 4, sigma_offset=0.0)
    torch.testing.assert_close(taps[0, 0], torch.tensor([0.5, 0.5, 0, 0, 0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(taps[0, 1], torch.tensor([0, 0, 0.5, 0.5, 0]), rtol=0, atol=1e-6)


def test_eval_path_follows_in_place_edits_through_data():
    """Bug fixed: the eval (gather) path cached its plan under the parameters' ``_version`` and ``data_ptr``, which an
    edit through ``.data`` changes neither: ``layer.weight.data.mul_(2)`` or ``layer.delay.data.fill_(0)`` then
    computed with the old weights / delays (errors 0.78 and 1.83 on this layer)."""
    torch.manual_seed(0)
    layer = DelayLinear(4, 3, 5).eval()
    x = (torch.rand(10, 2, 4) < 0.5).float()
    with torch.no_grad():
        y0, _ = layer(x)
    layer.weight.data.mul_(2)
    with torch.no_grad():
        y1, _ = layer(x)
    torch.testing.assert_close(y1, 2 * y0, rtol=1e-6, atol=1e-6)
    layer.delay.data.fill_(0.0)
    layer.delay.data[2, 3] = 5.0
    with torch.no_grad():
        y2, _ = layer(x)
    ref, _ = fd.delay_shift_reference(x, weight=layer.weight.detach(), delay=layer.delay.detach(), max_delay=5)
    torch.testing.assert_close(y2, ref, rtol=0, atol=1e-6)
    reg = _shift_register(x.double(), layer.weight.detach().double(), layer.delay.detach().long())
    torch.testing.assert_close(y2.double(), reg, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------ LMU
def _legendre_zoh(order, theta, dt):
    """Voelker et al.'s A, B written out, ZOH by scipy's expm of the block matrix [[A, B], [0, 0]] * dt."""
    a = np.array([[(2 * i + 1) * (-1.0 if i < j else (-1.0) ** (i - j + 1)) for j in range(order)]
                  for i in range(order)]) / theta
    b = np.array([(2 * i + 1) * (-1.0) ** i for i in range(order)])[:, None] / theta
    m = np.zeros((order + 1, order + 1))
    m[:order, :order], m[:order, order:] = a * dt, b * dt
    e = sla.expm(m)
    return e[:order, :order], e[:order, order]


@pytest.mark.parametrize("order,theta,dt", [(2, 3.0, 1.0), (3, 1.0, 1.0), (5, 13.7, 0.5), (8, 784.0, 1.0),
                                            (20, 50.0, 2.0), (32, 10.0, 1.0), (128, 256.0, 1.0), (256, 1000.0, 1.0)])
def test_lmu_matrices_equal_scipy_expm(order, theta, dt):
    """Max differences measured: A 9e-14 (order 256), B 5e-15."""
    a, b = lmu_matrices(order, theta, dt, dtype=torch.float64)
    a_ref, b_ref = _legendre_zoh(order, theta, dt)
    np.testing.assert_allclose(a.numpy(), a_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.numpy(), b_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order,theta,t,dtype,tol", [(4, 7.0, 2000, torch.float64, 1e-12),
                                                     (12, 128.0, 4096, torch.float32, 2e-5),
                                                     (64, 128.0, 1024, torch.float32, 2e-5),
                                                     (6, 3.0, 3000, torch.float32, 1e-5)])
def test_lmu_fft_equals_the_recurrence_on_long_sequences_with_a_state(order, theta, t, dtype, tol):
    """FFT path vs step recurrence vs a float64 recurrence, continuing from a random state; LMUMemory split into two
    calls equals one call (measured: <= 6e-6 in float32, 1e-15 in float64)."""
    gen = torch.Generator().manual_seed(order)
    a, b = lmu_matrices(order, theta, dtype=dtype)
    u = torch.randn(t, 2, 3, generator=gen, dtype=dtype)
    m0 = torch.randn(2, 3, order, generator=gen, dtype=dtype)
    m_rec, s_rec = lmu_memory_scan(u, LMUState(m0), a_bar=a, b_bar=b)
    m_fft, s_fft = lmu_memory_fft(u, LMUState(m0), a_bar=a, b_bar=b)
    a64, b64 = lmu_matrices(order, theta, dtype=torch.float64)
    m64, _ = lmu_memory_scan(u.double(), LMUState(m0.double()), a_bar=a64, b_bar=b64)
    torch.testing.assert_close(m_fft.double(), m64, rtol=0, atol=tol)
    torch.testing.assert_close(m_rec.double(), m64, rtol=0, atol=tol)
    torch.testing.assert_close(s_fft.m, m_fft[-1], rtol=0, atol=0)
    mem = LMUMemory(order, theta)
    c = t // 3
    y1, s1 = mem(u[:c].float())
    y2, _ = mem(u[c:].float(), s1)
    y, _ = mem(u.float())
    torch.testing.assert_close(torch.cat([y1, y2]), y, rtol=0, atol=1e-5)


def _l2mu_reference(model, x, neuron, reset, readout, input_module):
    """specs/models.md §2 written out: LIF ``v = beta v + I`` (CuBa: ``i = alpha i + I; v = beta v + i``), spike
    ``v > v_th``, subtract or zero reset; Ā, B̄ from scipy's expm; recurrence through the spikes of step t-1."""
    a, b = (torch.tensor(v) for v in _legendre_zoh(model.order, model.theta, 1.0))
    bsz, mem, d = x.shape[1], model.memory_size, model.order
    names = [n for n in ("x", "u", "m", "h", "out") if hasattr(model, "pop_" + n)]
    state = {n: (torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)) for n in names}

    def pop(name, current):
        p = getattr(model, "pop_" + name)
        beta = torch.as_tensor(p.beta).detach().double()
        i, v = state[name]
        if name == "out" and readout == "membrane":
            v = beta * v + current
            state[name] = (i, v)
            return v
        if neuron == "cuba":
            i = torch.as_tensor(p.alpha).detach().double() * i + current
            v = beta * v + i
        else:
            v = beta * v + current
        th = torch.as_tensor(p.v_th).detach().double()
        z = (v > th).double()
        state[name] = (i, v - z * th if reset == "subtract" else v * (1 - z))
        return z

    s_h = torch.zeros(bsz, model.hidden_size, dtype=torch.float64)
    s_m = torch.zeros(bsz, mem * d, dtype=torch.float64)
    acc, out = 0, []
    for t in range(x.shape[0]):
        s_x = pop("x", x[t] @ model.w_in.weight.T) if input_module == "lif" else x[t]
        s_u = pop("u", s_x @ model.e_x.weight.T + s_h @ model.e_h.weight.T + s_m @ model.e_m.weight.T)
        i_m = torch.einsum("ij,bnj->bni", a, s_m.view(bsz, mem, d)) + s_u[..., None] * b
        s_m = pop("m", i_m.reshape(bsz, -1))
        s_h = pop("h", s_x @ model.w_x.weight.T + s_h @ model.w_h.weight.T + s_m @ model.w_m.weight.T)
        acc = acc + pop("out", s_h @ model.w_out.weight.T)
        out.append(acc if readout == "spike_count" else acc / (t + 1))
    return torch.stack(out)


@pytest.mark.parametrize("neuron,reset,readout,input_module,per_neuron", [
    ("cuba", "subtract", "spike_count", "lif", False), ("cuba", "zero", "membrane", "direct", True),
    ("lif", "subtract", "membrane", "direct", False), ("lif", "zero", "spike_count", "lif", True)])
def test_l2mu_populations_equal_the_spec_equations_and_stream(neuron, reset, readout, input_module, per_neuron):
    """Order 5, theta 3.5, CuBa populations, per-neuron decays, direct input and membrane readout (exact: 0.0)."""
    torch.manual_seed(0)
    model = L2MU(3, 4, order=5, theta=3.5, hidden_size=9, memory_size=3, input_pop_size=6, neuron=neuron,
                 reset=reset, readout=readout, input_module=input_module, per_neuron=per_neuron, v_th_u=0.05,
                 v_th_m=0.05, v_th_h=0.05, v_th_out=0.05).double()
    with torch.no_grad():
        model.e_m.weight.normal_()
        if per_neuron:
            for p in model.parameters():
                if p.dim() == 1:
                    p.add_(torch.rand_like(p) * 0.1 - 0.05).clamp_(0.01, 0.99)
        for lin in ([model.w_in] if input_module == "lif" else []) + [model.e_x, model.w_x, model.w_out]:
            lin.weight.mul_(3)
    x = torch.randn(15, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        y, _ = model(x)
        y1, s1 = model(x[:7])
        y2, _ = model(x[7:], s1)
    ref = _l2mu_reference(model, x, neuron, reset, readout, input_module)
    assert ref[-1].abs().sum() > 0
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.cat([y1, y2]), y, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------ fixed point
def _decay(tau):
    return np.exp(-DT / np.asarray(tau, np.float64))


def _float_net(rng, kind1, kind2, wscale, onehot):
    """input -> Affine (bias) -> kind1 -> Linear -> kind2 -> output, taus giving decays ~0, mid and ~1."""
    n0, n1, n2 = 5, 6, 4
    w1 = rng.normal(size=(n1, n0)) * wscale
    b1 = rng.normal(size=n1) * 0.1
    w2 = rng.normal(size=(n2, n1)) * wscale
    if onehot:                                   # one huge weight among tiny ones: the rest round to 0
        w1[:] = 1e-6
        w1[0, 0] = 5.0

    def neuron(kind, n):
        tau_m = rng.choice([DT / 50, 2e-3, 5e-3, 1e3], size=n)
        tau_s = rng.choice([DT / 50, 3e-3, 1e3], size=n)
        th = rng.uniform(0.2, 2.0, size=n)
        if kind == "LIF":
            return ir.LIF(tau=tau_m, r=np.ones(n), v_threshold=th, v_leak=np.zeros(n))
        if kind == "CubaLIF":
            return ir.CubaLIF(tau_syn=tau_s, tau_mem=tau_m, r=np.ones(n), v_threshold=th, w_in=np.ones(n))
        return ir.LI(tau=tau_m, r=np.ones(n))

    nodes = {"input": ir.Input((n0,)), "s1": ir.Affine(w1, b1), "p1": neuron(kind1, n1), "s2": ir.Linear(w2),
             "p2": neuron(kind2, n2), "output": ir.Output((n2,))}
    edges = [("input", "s1"), ("s1", "p1"), ("p1", "s2"), ("s2", "p2"), ("p2", "output")]
    return ir.Graph(nodes, edges, dt=DT)


def _gain(node):
    """(k, alpha, beta, threshold) of a float population: u = alpha u + k W x; v = beta v + u (+ bias)."""
    if isinstance(node, ir.CubaLIF):
        alpha, beta = _decay(node.tau_syn), _decay(node.tau_mem)
        return (1 - alpha) * node.w_in * (1 - beta) * node.r, alpha, beta, node.v_threshold
    beta = _decay(node.tau)
    th = getattr(node, "v_threshold", np.full(len(beta), np.inf))
    return (1 - beta) * node.r, np.zeros(len(beta)), beta, th


def _loihi_params(g, e):
    """targets.md §2.2 / §5.2 and the quantiser's documented scale: s = 2**e * 254 / max|kW| lowered so that
    round(theta s) <= 131071 and |round(b s)| <= 4095; weights 2**(e+1) * round(kW s / 2**(e+1)); iDecay =
    round((1 - alpha) 4096) (4096 without a current), vDecay = round((1 - beta) 4096); a CubaLIF bias as b/(1-alpha)."""
    out = {}
    for pop, syn in (("p1", "s1"), ("p2", "s2")):
        k, alpha, beta, th = _gain(g.nodes[pop])
        w = g.nodes[syn].weight * k[:, None]
        bias = getattr(g.nodes[syn], "bias", None)
        b = np.zeros(len(k)) if bias is None else k * bias
        if isinstance(g.nodes[pop], ir.CubaLIF):
            b = b / (1 - alpha)
        s = 254 * 2**e / (np.abs(w).max() or 1.0)
        fin = th[np.isfinite(th)]
        if fin.size and fin.max() * s > 131071:
            s = 131071 / fin.max()
        if np.abs(b).max() * s > 4095:
            s = min(s, 4095 / np.abs(b).max())
        out[pop] = dict(
            scale=s, w=2 ** (e + 1) * np.round(w * s / 2 ** (e + 1)),
            i_decay=np.where(alpha > 0, np.round((1 - alpha) * 4096), 4096), v_decay=np.round((1 - beta) * 4096),
            vth=np.where(np.isfinite(th), np.round(np.where(np.isfinite(th), th, 0) * s), 131071),
            bias=np.round(b * s))
    return out


def _lava_run(params, x, extra=2, stats=None):
    """targets.md §4.2 (Lava PyLifModelBitAcc with netx's du = iDecay - 1 and the hardware +1; Dense delivers the
    accumulation of step t at t + 1): ``[T + extra, B, n2]`` spikes of p2 and its membrane."""
    t_len, b = x.shape[:2]
    st = {p: [np.zeros((b, len(q["vth"])), np.int64) for _ in range(2)] for p, q in params.items()}
    a_next = {p: np.zeros((b, len(q["vth"])), np.int64) for p, q in params.items()}

    def dec(z, d):
        prod = z.astype(np.int64) * (4096 - d)
        return np.sign(prod) * (np.abs(prod) >> 12)

    def lif(p, a_in):
        q = params[p]
        u, v = st[p]
        du = q["i_decay"].astype(np.int64) - 1
        cu = dec(u, du + 1) + (a_in << 6)
        if stats is not None:
            stats["wraps"] = stats.get("wraps", 0) + int(((cu > 2**23) | (cu <= -(2**23))).sum())
        cu = np.where(cu > 2**23, cu - 2**24, cu)
        cu = np.where(cu <= -(2**23), cu + 2**24, cu)
        nv = np.clip(dec(v, q["v_decay"].astype(np.int64)) + cu + (q["bias"].astype(np.int64) << 6),
                     -(2**23 - 1), 2**23 - 1)
        z = nv > (q["vth"].astype(np.int64) << 6)
        st[p] = [cu, np.where(z, 0, nv)]
        return z.astype(np.int64), st[p][1]

    zs, vs = [], []
    for t in range(t_len + extra):
        xin = x[t] if t < t_len else np.zeros_like(x[0])
        z1, _ = lif("p1", a_next["p1"])
        z2, v2 = lif("p2", a_next["p2"])
        a_next["p1"] = xin.astype(np.int64) @ params["p1"]["w"].T.astype(np.int64)
        a_next["p2"] = z1 @ params["p2"]["w"].T.astype(np.int64)
        zs.append(z2)
        vs.append(v2)
    return np.array(zs), np.array(vs)


@pytest.mark.parametrize("seed", [0, 1])
def test_loihi_quantiser_and_interpreter_equal_the_spec_on_random_networks(seed):
    """60 random two-layer networks (LIF / CubaLIF / LI readouts, decays ~0 to ~1, weights 1e-6..30, weight
    exponents 0..2): every integer parameter equals the spec formulas and the interpreter's spikes and readout
    membranes equal the independent Lava-style run exactly."""
    rng = np.random.default_rng(seed)
    for trial in range(30):
        k1, k2 = rng.choice(["LIF", "CubaLIF"]), rng.choice(["LIF", "CubaLIF", "LI"])
        g = _float_net(rng, k1, k2, float(rng.choice([0.5, 3.0, 30.0, 1e-3])), trial % 7 == 0)
        e = int(rng.integers(0, 3))
        q = quantize(g, "loihi", weight_exp=e)
        mine = _loihi_params(g, e)
        for pop, syn in (("p1", "s1"), ("p2", "s2")):
            n = q.nodes[pop]
            assert n.scale == pytest.approx(mine[pop]["scale"], rel=1e-12)
            np.testing.assert_array_equal(q.nodes[syn].weight, mine[pop]["w"])
            for f in ("i_decay", "v_decay", "vth", "bias"):
                np.testing.assert_array_equal(getattr(n, f), mine[pop][f], err_msg=f"{trial} {pop} {f}")
        x = (rng.random((25, 3, 5)) < 0.5).astype(float)
        res = simulate(q, x, numerics="loihi", align=False)
        z_ref, v_ref = _lava_run(mine, x)
        got = res.traces["p2"]
        if k2 == "LI":     # the readout's trace is v / (scale * 64): back to integer units
            np.testing.assert_allclose(got * q.nodes["p2"].scale * 64, v_ref[:25], rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, z_ref[:25])


def test_loihi_interpreter_at_the_integer_limits():
    """Integer populations straight in the IR: decays 0, 1, 2048, 4095, 4096; vth 0, 1, 100, 2**17 - 1; bias -4096,
    -4095, 0, 3, 4095; weight mantissas -256 and 254 with exponents 0..7 (u wraps, v saturates): equal to the
    independent run bit for bit over 150 random networks."""
    rng = np.random.default_rng(3)
    stats: dict = {}
    for _ in range(150):
        n0, n1, n2 = 4, 5, 3

        def pop(n):
            decays = [0, 1, 2048, 4095, 4096]
            return dict(i_decay=rng.choice(decays, n), v_decay=rng.choice(decays, n),
                        vth=rng.choice([0, 1, 100, 131071], n), bias=rng.choice([-4096, -4095, 0, 3, 4095], n))

        p1, p2 = pop(n1), pop(n2)
        e = int(rng.integers(0, 8))
        w1 = rng.integers(-128, 128, (n1, n0)) * 2 * 2**e
        w2 = rng.integers(-128, 128, (n2, n1)) * 2 * 2**e
        w1[0, :], w2[0, :] = 254 * 2**e, -256 * 2**e
        mk = lambda p: ir.LoihiCUBA(i_decay=p["i_decay"], v_decay=p["v_decay"], vth=p["vth"],  # noqa: E731
                                    bias=p["bias"], scale=1 / 64)
        g = ir.Graph({"input": ir.Input((n0,)), "s1": ir.Linear(w1.astype(float)), "p1": mk(p1),
                      "s2": ir.Linear(w2.astype(float)), "p2": mk(p2), "output": ir.Output((n2,))},
                     [("input", "s1"), ("s1", "p1"), ("p1", "s2"), ("s2", "p2"), ("p2", "output")], dt=DT,
                     metadata={"numerics": "loihi"})
        x = (rng.random((30, 2, n0)) < 0.6).astype(float)
        res = simulate(g, x, numerics="loihi", align=False)
        z_ref, _ = _lava_run({"p1": dict(p1, w=w1), "p2": dict(p2, w=w2)}, x, stats=stats)
        np.testing.assert_array_equal(res.output, z_ref[:30])
    assert stats["wraps"] > 10      # u did overflow 24 bits, many times


def test_loihi_u_wraps_once_as_lava_does():
    """Convention (targets.md §4.2, Lava's PyLifModelBitAcc): u <= -2**23 adds 2**24 once; a u beyond 3 * 2**23 in
    magnitude stays outside the signed 24-bit range (-2**25 -> -2**24), and v then saturates at -(2**23 - 1). A
    modular 24-bit wrap would give u = 0 and v = 0 here."""
    cuba = ir.LoihiCUBA(i_decay=np.full(1, 4096), v_decay=np.full(1, 4096), vth=np.full(1, 131071),
                        bias=np.zeros(1), scale=1 / 64, readout=True)
    g = ir.Graph({"input": ir.Input((1,)), "syn": ir.Linear(np.full((1, 1), -(2.0**19))), "cuba": cuba,
                  "output": ir.Output((1,))}, [("input", "syn"), ("syn", "cuba"), ("cuba", "output")], dt=DT,
                 metadata={"numerics": "loihi"})
    x = np.zeros((3, 1, 1))
    x[0] = 1
    v = simulate(g, x, numerics="loihi", align=False).output[:, 0, 0]   # readout: v / (scale * 64) = v
    np.testing.assert_array_equal(v, [0, -(2**23 - 1), 0])


def _s2_params(g):
    """targets.md §3.3 / §4.4 and the quantiser's docstring: ws = 127 / max|kW|, int8 round(kW ws), float32
    threshold theta ws, alpha_decay = beta, exc_decay = alpha (CubaLIF), i_offset = b ws (CubaLIF b/(1-alpha) ws)."""
    out = {}
    for pop, syn in (("p1", "s1"), ("p2", "s2")):
        node = g.nodes[pop]
        k, alpha, beta, th = _gain(node)
        w = g.nodes[syn].weight * k[:, None]
        bias = getattr(g.nodes[syn], "bias", None)
        b = np.zeros(len(k)) if bias is None else k * bias
        cuba = isinstance(node, ir.CubaLIF)
        if cuba:
            b = b / (1 - alpha)
        ws = 127 / (np.abs(w).max() or 1.0)
        out[pop] = dict(w=np.round(w * ws), ws=ws, alpha=beta.astype(np.float32),
                        exc=alpha.astype(np.float32) if cuba else None, th=(th * ws).astype(np.float32),
                        off=(b * ws).astype(np.float32), readout=not np.isfinite(th).all())
    return out


def _s2_run(params, x):
    """float32 ``i = exc i + sum w z``; ``v' = alpha v + i + i_offset``; ``z = v' > threshold``; reset to 0; one
    step per projection; the readout's value v' / ws."""
    b = x.shape[1]
    st = {p: [np.zeros((b, len(q["th"])), np.float32) for _ in range(2)] for p, q in params.items()}
    a_next = {p: np.zeros((b, len(q["th"]))) for p, q in params.items()}

    def step(p, a_in):
        q = params[p]
        i, v = st[p]
        xi = a_in.astype(np.float32)
        if q["exc"] is not None:
            i = q["exc"] * i + xi
            xi = i
        vp = (q["alpha"] * v + xi + q["off"]).astype(np.float32)
        if q["readout"]:
            st[p] = [i, vp]
            return vp / np.float32(q["ws"])
        z = vp > q["th"]
        st[p] = [i, np.where(z, np.float32(0), vp).astype(np.float32)]
        return z.astype(np.float32)

    out = []
    for t in range(x.shape[0]):
        z1 = step("p1", a_next["p1"])
        out.append(step("p2", a_next["p2"]))
        a_next["p1"] = x[t] @ params["p1"]["w"].T
        a_next["p2"] = z1 @ params["p2"]["w"].T
    return np.array(out)


def test_spinnaker2_quantiser_and_interpreter_equal_the_spec_on_random_networks():
    """40 random networks: int8 weights equal round(kW * 127 / max|kW|) and the interpreter's float32 run equals the
    independent one exactly (spikes and readout values)."""
    rng = np.random.default_rng(5)
    spikes = 0.0
    for trial in range(40):
        k1, k2 = rng.choice(["LIF", "CubaLIF"]), rng.choice(["LIF", "CubaLIF", "LI"])
        g = _float_net(rng, k1, k2, float(rng.choice([0.5, 3.0, 30.0])), trial % 7 == 0)
        q = quantize(g, "spinnaker2")
        mine = _s2_params(g)
        for pop, syn in (("p1", "s1"), ("p2", "s2")):
            np.testing.assert_array_equal(q.nodes[syn].weight, mine[pop]["w"])
            assert np.abs(q.nodes[syn].weight).max() == 127
        x = (rng.random((25, 3, 5)) < 0.5).astype(float)
        res = simulate(q, x, numerics="spinnaker2", align=False)
        np.testing.assert_array_equal(res.output, _s2_run(mine, x))
        spikes += res.traces["p1"].sum()
    assert spikes > 100


@pytest.mark.parametrize("target,max_delay", [("loihi", 62), ("spinnaker2", 7)])
def test_quantised_delays_at_zero_and_at_the_limit(target, max_delay):
    """Per-synapse delays 0 and the target's limit arrive d + 1 steps after the input (one step per hop); one more
    step of delay is refused."""
    w = np.ones((2, 2))
    d = np.array([[0, max_delay], [max_delay, max_delay]])
    iff = ir.IF(r=np.ones(2), v_threshold=np.full(2, 1e-6))
    mk = lambda dd: ir.Graph({"input": ir.Input((2,)), "s": ir.DelayAffine(w, dd), "p": iff,  # noqa: E731
                              "output": ir.Output((2,))}, [("input", "s"), ("s", "p"), ("p", "output")], dt=DT)
    q = quantize(mk(d), target)
    assert np.abs(q.nodes["s"].weight).max() == (254 if target == "loihi" else 15)   # 'lif' with delays: +-15
    x = np.zeros((max_delay + 4, 1, 2))
    x[0, 0, :] = 1
    z = simulate(q, x, numerics=target, align=False).output[:, 0, :]
    assert np.flatnonzero(z[:, 0]).tolist()[:2] == [1, max_delay + 1]
    assert np.flatnonzero(z[:, 1]).tolist()[:1] == [max_delay + 1]
    with pytest.raises(Exception, match="exceeds"):
        quantize(mk(d + 1), target)


@pytest.mark.parametrize("bits", [2, 8, 16, 24])
def test_input_frac_bits_never_overshoots_the_payload_range(bits):
    """Bug fixed: ``k = floor(log2(lim / amax))`` rounded up at ratios a few ulps below a power of two (165 of 264
    boundary cases at 8/16/24 bits), so ``amax * 2**k`` exceeded ``2**(bits-1) - 1``, breaking the documented
    contract (the round-and-clip of :func:`quantize_input` happened to absorb it). Now the largest k that keeps
    ``amax * 2**k <= lim``, and k + 1 would not (below the cap of 16)."""
    from spikeseq.graph.quantize import input_frac_bits, quantize_input

    lim = 2 ** (bits - 1) - 1
    for k in range(17):
        amax = lim / 2**k
        for _ in range(6):
            kk = input_frac_bits(amax, bits)
            assert kk == 0 or amax * 2.0**kk <= lim
            assert kk == 16 or amax * 2.0 ** (kk + 1) > lim
            assert np.abs(quantize_input(np.array([amax, -amax]), kk, bits)).max() <= lim
            amax = np.nextafter(amax, np.inf)
    # round half to even, saturation at +-lim (targets.md: graded payloads are signed `bits`-bit integers)
    np.testing.assert_array_equal(quantize_input(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1e9, -1e9]), 0, bits),
                                  np.clip([0, 2, 2, 0, -2, lim, -lim], -lim, lim))


@pytest.mark.parametrize("spiking", [False, True])
@pytest.mark.parametrize("mode", ["fft", "recurrent"])
def test_lmu_cell_in_uneven_chunks_equals_one_call(spiking, mode):
    """LMUFormer's LMU cell (eval mode, n_u = 2, order 6, theta 20) over 300 steps in chunks of 1, 49, 1 and 249
    steps with the state carried equals one call (measured: <= 2.2e-16; spikes identical)."""
    from spikeseq.nn.lmu import LMU

    torch.manual_seed(0)
    cell = LMU(5, 7, 6, 20.0, n_u=2, spiking=spiking, mode=mode).double().eval()
    x = torch.randn(300, 3, 5, dtype=torch.float64)
    with torch.no_grad():
        y, _ = cell(x)
        parts, st = [], None
        for a, b in ((0, 1), (1, 50), (50, 51), (51, 300)):
            yy, st = cell(x[a:b], st)
            parts.append(yy)
    assert y.abs().sum() > 0
    torch.testing.assert_close(torch.cat(parts), y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("frac", [None, 0, 3, 7])
def test_spinnaker2_graded_payloads_equal_the_spec(frac):
    """A graded LIF population sends v' / ws (float32) or clip(round(v' / ws * 2**f), -127, 127) into synapses whose
    float weights are divided by 2**f before the int8 rounding (quantiser docstring); the interpreter equals an
    independent float32 run exactly, both resets."""
    rng = np.random.default_rng(0 if frac is None else frac + 1)
    for trial in range(10):
        n0, n1, n2 = 5, 6, 4
        w1, w2 = rng.normal(size=(n1, n0)) * 3, rng.normal(size=(n2, n1)) * 2
        tau1, tau2 = rng.choice([2e-3, 5e-3, 1e3], n1), rng.choice([2e-3, 5e-3], n2)
        th1, th2 = rng.uniform(0.1, 1.0, n1), rng.uniform(0.2, 1.5, n2)
        reset = ("zero", "subtract")[trial % 2]
        g = ir.Graph({"input": ir.Input((n0,)), "s1": ir.Linear(w1),
                      "p1": ir.LIF(tau=tau1, r=np.ones(n1), v_threshold=th1, reset=reset, graded=True),
                      "s2": ir.Linear(w2), "p2": ir.LIF(tau=tau2, r=np.ones(n2), v_threshold=th2, reset=reset),
                      "output": ir.Output((n2,))},
                     [("input", "s1"), ("s1", "p1"), ("p1", "s2"), ("s2", "p2"), ("p2", "output")], dt=DT)
        q = quantize(g, "spinnaker2", payload_frac_bits=frac)
        b1, b2 = _decay(tau1), _decay(tau2)
        big1, big2 = w1 * (1 - b1)[:, None], w2 * (1 - b2)[:, None] / (1.0 if frac is None else 2.0**frac)
        ws1, ws2 = 127 / np.abs(big1).max(), 127 / np.abs(big2).max()
        q1, q2 = np.round(big1 * ws1), np.round(big2 * ws2)
        np.testing.assert_array_equal(q.nodes["s1"].weight, q1)
        np.testing.assert_array_equal(q.nodes["s2"].weight, q2)
        x = (rng.random((30, 2, n0)) < 0.5).astype(float)
        got = simulate(q, x, numerics="spinnaker2", align=False).output
        f32 = np.float32
        v1, v2 = np.zeros((2, n1), f32), np.zeros((2, n2), f32)
        a1, a2 = np.zeros((2, n1)), np.zeros((2, n2))
        t1, t2 = (th1 * ws1).astype(f32), (th2 * ws2).astype(f32)
        reset_fn = (lambda vp, z, th: np.where(z, vp - th, vp)) if reset == "subtract" else \
            (lambda vp, z, th: np.where(z, np.float32(0), vp))
        out = []
        for t in range(30):
            vp = (b1.astype(f32) * v1 + a1.astype(f32) + f32(0)).astype(f32)
            z = vp > t1
            pay = vp / f32(ws1)
            if frac is not None:
                pay = np.clip(np.round(pay * f32(2.0**frac)), -127, 127)
            pay = np.where(z, pay, f32(0)).astype(f32)
            v1 = reset_fn(vp, z, t1).astype(f32)
            vp2 = (b2.astype(f32) * v2 + a2.astype(f32) + f32(0)).astype(f32)
            z2 = vp2 > t2
            v2 = reset_fn(vp2, z2, t2).astype(f32)
            out.append(z2.astype(f32))
            a1, a2 = x[t] @ q1.T, pay.astype(np.float64) @ q2.T
        np.testing.assert_array_equal(got, np.array(out))


@pytest.mark.parametrize("field,value,match", [
    ("i_decay", 5000, "i_decay must hold whole numbers in 0..4096"),
    ("v_decay", -1, "v_decay must hold whole numbers in 0..4096"),
    ("vth", 131072, "vth must hold whole numbers in 0..131071"),
    ("vth", -1, "vth must hold whole numbers in 0..131071"),
    ("bias", 4096, "bias must hold whole numbers in -4096..4095"),
    ("bias", -4097, "bias must hold whole numbers in -4096..4095"),
    ("bias_exp", 8, "bias_exp must be an integer in 0..7"),
])
def test_loihi_compartments_out_of_the_chips_range_are_refused(field, value, match):
    """Bug fixed: the Loihi interpreter simulated compartments the chip cannot hold (i_decay 5000 made the decay
    factor 4096 - 5000 negative and flipped the sign of u; vth 200000 and bias 5000 ran silently), e.g. from a
    hand-edited Lava description. Now a ParameterError names the compartment, the field and the range; the limits
    themselves (0, 4096, 131071, -4096, 4095, bias_exp 7) are accepted."""
    from spikeseq.errors import ParameterError

    def graph(**kw):
        p = dict(i_decay=np.full(1, 4096), v_decay=np.full(1, 0), vth=np.full(1, 10), bias=np.zeros(1))
        p.update({k: (v if k == "bias_exp" else np.full(1, v)) for k, v in kw.items()})
        return ir.Graph({"input": ir.Input((1,)), "s": ir.Linear(np.ones((1, 1))),
                         "c": ir.LoihiCUBA(**p, scale=1 / 64), "output": ir.Output((1,))},
                        [("input", "s"), ("s", "c"), ("c", "output")], dt=DT, metadata={"numerics": "loihi"})

    with pytest.raises(ParameterError, match=match):
        simulate(graph(**{field: value}), np.ones((3, 1, 1)), numerics="loihi")
    for ok in ({"i_decay": 0}, {"v_decay": 4096}, {"vth": 131071}, {"vth": 0}, {"bias": -4096}, {"bias": 4095},
               {"bias_exp": 7}, {"bias_exp": 0}):
        simulate(graph(**ok), np.ones((3, 1, 1)), numerics="loihi")


def test_loihi_fractional_weights_are_refused_not_truncated():
    """Bug fixed: Loihi numerics cast the synapse matrix with ``astype(int64)``, so a fractional weight 2.5 of a
    hand-built or edited graph was silently truncated to 2."""
    from spikeseq.errors import ParameterError

    cuba = ir.LoihiCUBA(i_decay=np.full(1, 4096), v_decay=np.full(1, 0), vth=np.full(1, 10), bias=np.zeros(1))
    g = ir.Graph({"input": ir.Input((1,)), "s": ir.Linear(np.full((1, 1), 2.5)), "c": cuba, "output": ir.Output((1,))},
                 [("input", "s"), ("s", "c"), ("c", "output")], dt=DT, metadata={"numerics": "loihi"})
    with pytest.raises(ParameterError, match="fractional weights"):
        simulate(g, np.ones((3, 1, 1)), numerics="loihi")


def test_loihi_threshold_mantissa_rounds_to_nearest():
    """Convention: the quantiser rounds ``vth = round(theta * s)`` (its docstring) where slayer writes
    ``int(theta * 64)`` (truncation, targets.md §2.2); here theta * s = 100.7 -> 101, not 100."""
    s = 254 / 2.0                              # max |k W| = 2 (IF: k = dt * r = 1e-3 * 2000)
    theta = 100.7 / s
    g = ir.Graph({"input": ir.Input((1,)), "w": ir.Linear(np.full((1, 1), 1.0)),
                  "p": ir.IF(r=np.full(1, 2000.0), v_threshold=np.full(1, theta)), "output": ir.Output((1,))},
                 [("input", "w"), ("w", "p"), ("p", "output")], dt=DT)
    q = quantize(g, "loihi")
    assert q.nodes["p"].scale == pytest.approx(s, rel=1e-12)
    assert int(q.nodes["p"].vth[0]) == 101 and int(theta * s) == 100
