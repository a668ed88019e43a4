"""LMUFormer (Liu et al., ICLR 2024) for sensor sequences, non-spiking and spiking, trainable in parallel and
runnable step by step.

Structure (``zeyuliu1037/LMUFormer`` ``slmu_rnn_ms_conv1d``; specs/models.md section 3), on ``x [T, B, C]``:

    patch embedding   conv(C->d) BN f conv BN f conv BN f conv   then   x = x + conv(f(BN(x)))      (RPE branch)
    block (x depth)   x = x + BN(W_p LMU(f_0.5(BN(x))))            membrane-shortcut residuals: the residual
                      x = x + BN(W_2 f(BN(W_1 f(BN(x)))))           stream is real, every branch spikes at its input
    head              logits[t] = mean_{s<=t} W_o f(BN(x[s]))

``f`` is a :class:`spikeseq.nn.LIF` population (``tau`` in seconds with ``dt``, or by default beta = 0.5 i.e. tau =
2 steps, hard reset, detached reset, sigmoid(4) surrogate, threshold 1, and 0.5 at the LMU input, as in the
reference) for ``spiking=True`` and ReLU otherwise; the LMU cell is :class:`spikeseq.nn.LMU` (spiking: BN + LIF on
u, m and h). The reference uses SpikingJelly's ``decay_input=True`` LIF (input scaled by 1/tau), here the preceding
BatchNorm absorbs that factor.

Departures from the reference, both needed for streaming: the convolutions are **causal** (left context only,
state = the last ``k-1`` inputs) instead of centred, and the head takes a running mean over the steps seen so far
(the reference's ``all_seq`` test mode) rather than a mean over the whole sequence.

``y, state = model(x)``: ``y [T, B, classes]``, ``y[t]`` depends on ``x[0..t]`` only; ``y[-1]`` classifies the
window. Training runs the whole sequence at once (FFT memory, scans over time); streaming calls the model on
``x[t:t+1]`` with the returned state, which gives the same ``y`` (in eval mode, where BatchNorm is a fixed affine
map).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from spikeseq import surrogate as sg
from spikeseq.checks import check_sequence, check_window
from spikeseq.errors import ParameterError, ShapeError
from spikeseq.nn import LIF, StatefulModule
from spikeseq.nn.lmu import LMU
from spikeseq.nn.sequential import Sequential

#: LMUFormer's surrogate: SpikingJelly's default Sigmoid(alpha=4) (specs/models.md section 3).
LMUFORMER_SURROGATE = sg.Sigmoid(4.0)


class ConvState(NamedTuple):
    """State of :class:`CausalConv1d`: the last ``k - 1`` input steps ``[k - 1, B, C_in]``."""

    ctx: torch.Tensor  #: the last ``k - 1`` inputs ``[k-1, B, C_in]``


class CausalConv1d(StatefulModule):
    """1-D convolution over time with left context only: ``y[t]`` sees ``x[t-k+1 .. t]`` (zeros before 0)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, bias: bool = False) -> None:
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise ParameterError(f"kernel_size must be an integer >= 1, got {kernel_size!r}")
        self.k = kernel_size
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, bias=bias)

    def forward(self, x: torch.Tensor, state: ConvState | None = None):
        """``y [T, B, C_out], state = conv(x [T, B, C_in], state)``; ``state=None``: zeros before step 0."""
        check_sequence(x, "x", min_rank=3)
        k = self.k
        if state is None:
            ctx = x.new_zeros(k - 1, *x.shape[1:])
        elif not isinstance(state, ConvState):
            raise ShapeError(f"the state of a causal convolution must be a ConvState or None, got "
                             f"{type(state).__name__}; pass the state the previous call returned")
        else:
            ctx = state.ctx
            if tuple(ctx.shape) != (k - 1, *x.shape[1:]):
                raise ShapeError(f"causal convolution state ctx has shape {tuple(ctx.shape)} but x {tuple(x.shape)} "
                                 f"needs the last {k - 1} steps [{k - 1}, {', '.join(map(str, x.shape[1:]))}]; pass "
                                 "state=None to start a new sequence, or the state returned for the same batch")
        xx = torch.cat((ctx, x), dim=0) if k > 1 else x
        y = F.conv1d(xx.permute(1, 2, 0), self.conv.weight, self.conv.bias).permute(2, 0, 1)
        return y, ConvState(xx[xx.shape[0] - (k - 1):])


class LMUFormerReLU(nn.Module):
    """``torch.relu`` as a module type of its own (the non-spiking activation; the family counts it by type)."""

    def forward(self, x):
        """``relu(x)``, element-wise."""
        return torch.relu(x)


def _act(spiking: bool, v_th: float = 1.0, **lif) -> nn.Module:
    return LIF(v_th=v_th, **lif) if spiking else LMUFormerReLU()


class LMUFormerResidual(StatefulModule):
    """``x + branch(x)`` with the branch's state threaded."""

    def __init__(self, branch: Sequential) -> None:
        super().__init__()
        self.branch = branch

    def forward(self, x, state=None):
        """``x + y, state`` where ``y, state = branch(x, state)``."""
        y, s = self.branch(x, state)
        return x + y, s


class HeadState(NamedTuple):
    """State of the LMUFormer head: the sum of the per-step logits ``acc [B, classes]`` over ``steps`` steps."""

    acc: torch.Tensor  #: sum of the per-step logits so far ``[B, classes]``
    steps: torch.Tensor  #: steps seen so far (0-d int64 tensor)


class LMUFormerState(NamedTuple):
    """State of :class:`LMUFormer` (tensors only, nested by part): one entry per member of each part."""

    embed: tuple  #: patch-embedding states (per member of the Sequential)
    rpe: tuple  #: relative-position-embedding branch states
    blocks: tuple  #: block states
    head: tuple  #: head states
    readout: HeadState  #: the running mean of the logits


class LMUFormer(StatefulModule):
    """LMUFormer classifier (module docstring). ``spiking=False`` is the non-spiking LMUFormer."""

    def __init__(
        self,
        input_size: int,
        n_classes: int,
        *,
        dim: int = 64,
        order: int = 64,
        theta: float = 128.0,
        n_u: int = 1,
        depth: int = 1,
        mlp_ratio: int = 4,
        kernel_size: int = 3,
        spiking: bool = True,
        tau: float | None = None,
        beta: float | None = None,
        surrogate: sg.Surrogate = LMUFORMER_SURROGATE,
        dt: float = 0.02,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("n_classes", n_classes), ("dim", dim), ("depth", depth),
                        ("mlp_ratio", mlp_ratio)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ParameterError(f"LMUFormer {name} must be an integer >= 1, got {v!r}")
        self.input_size, self.n_classes, self.spiking = input_size, n_classes, spiking
        if tau is not None and beta is not None:
            raise ParameterError(f"LMUFormer: give tau (seconds) or beta (decay per step), not both; got tau={tau}, "
                                 f"beta={beta}")
        if tau is None and beta is None:
            beta = 0.5  # the reference's SpikingJelly LIF: tau = 2 steps, half the membrane kept per step
        lif = dict(tau_mem=tau, beta=beta, reset="zero", detach_reset=True, surrogate=surrogate, dt=dt,
                   backend=backend)

        def act(v_th=1.0):
            return _act(spiking, v_th, **lif)

        def bn(c):
            return nn.BatchNorm1d(c)

        d, k = dim, kernel_size
        self.embed = Sequential(
            CausalConv1d(input_size, d, k), bn(d), act(),
            CausalConv1d(d, d, k), bn(d), act(),
            CausalConv1d(d, d, k), bn(d), act(),
            CausalConv1d(d, d, k),
        )
        self.rpe = LMUFormerResidual(Sequential(bn(d), act(), CausalConv1d(d, d, k)))
        blocks = []
        for _ in range(depth):
            cell = LMU(d, d, order, theta, n_u=n_u, spiking=spiking, **lif)
            blocks.append(LMUFormerResidual(Sequential(bn(d), act(0.5), cell, nn.Linear(d, d), bn(d))))
            blocks.append(LMUFormerResidual(Sequential(bn(d), act(), nn.Linear(d, mlp_ratio * d), bn(mlp_ratio * d),
                                               act(), nn.Linear(mlp_ratio * d, d), bn(d))))
        self.blocks = Sequential(*blocks)
        self.head = Sequential(bn(d), act(), nn.Linear(d, n_classes))

    def forward(self, x: torch.Tensor, state: LMUFormerState | None = None):
        """``y [T, B, classes]`` (running mean of the logits) and the :class:`LMUFormerState`."""
        check_window(x, self.input_size, "LMUFormer")
        if state is not None and not isinstance(state, LMUFormerState):
            raise ShapeError(f"LMUFormer state must be an LMUFormerState (the state a call returned) or None, got "
                             f"{type(state).__name__}")
        se, sr, sb, sh, hs = state if state is not None else (None, None, None, None, None)
        z, se = self.embed(x, se)
        z, sr = self.rpe(z, sr)
        z, sb = self.blocks(z, sb)
        logits, sh = self.head(z, sh)
        t_len = x.shape[0]
        acc0 = hs.acc if hs is not None else 0.0
        n0 = hs.steps if hs is not None else torch.zeros((), dtype=torch.long, device=x.device)
        csum = acc0 + torch.cumsum(logits, dim=0)
        steps = (n0 + torch.arange(1, t_len + 1, device=x.device)).to(x.dtype).view(-1, 1, 1)
        return csum / steps, LMUFormerState(se, sr, sb, sh, HeadState(csum[-1], n0 + t_len))


def build_lmuformer(input_size: int = 6, n_classes: int = 6, **cfg) -> LMUFormer:
    """Non-spiking LMUFormer (ReLU everywhere, real-valued LMU)."""
    cfg.setdefault("spiking", False)
    return LMUFormer(input_size, n_classes, **cfg)


def build_spiking_lmuformer(input_size: int = 6, n_classes: int = 6, **cfg) -> LMUFormer:
    """Spiking LMUFormer (LIF everywhere, membrane-shortcut residuals)."""
    cfg.setdefault("spiking", True)
    return LMUFormer(input_size, n_classes, **cfg)
