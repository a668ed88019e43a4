"""A minimal recurrent spiking layer: a LIF or CuBa-LIF population with a recurrent Linear on its own spikes.

    x_in[t] = W_in x[t] + b_in + W_rec z[t-1] + b_rec          z[-1] = 0
    z[t], s = neuron_step(x_in[t], s)                          (:mod:`spikeseq.functional.lif` / ``.cuba``)

The recurrent input reads the previous step's spikes (snnTorch ``RLeaky``/``RSynaptic``, nirtorch recurrent edges).
The state is ``RLIFState(z, neuron)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from spikeseq import surrogate as sg
from spikeseq.checks import check_sequence
from spikeseq.errors import ParameterError
from spikeseq.functional.cuba import CubaLIFState, cuba_lif_step
from spikeseq.functional.lif import LIFState, lif_step
from spikeseq.nn.base import StatefulModule
from spikeseq.nn.neurons import LIF, CubaLIF
from spikeseq.types import ResetMode


class RLIFState(NamedTuple):
    """State of :class:`RLIF`: the last spikes ``z [B, hidden]`` (fed back through ``rec``) and the neuron state."""

    z: torch.Tensor
    neuron: LIFState | CubaLIFState


class RLIF(StatefulModule):
    """``y, state = RLIF(in_features, hidden, neuron="lif"|"cuba", ...)(x [T, B, in_features])``.

    ``fc`` is the input Linear, ``rec`` the recurrent Linear (``rec_bias`` adds its bias), ``neuron`` the
    :class:`~spikeseq.nn.LIF` / :class:`~spikeseq.nn.CubaLIF` holding the time constants and threshold (and the
    reset's gradient rule, ``detach_reset``).
    """

    def __init__(self, in_features: int, hidden: int, *, neuron: str = "lif", dt: float = 1e-3,
                 tau_mem: float | None = None, beta: float | None = None, tau_syn: float | None = None,
                 alpha: float | None = None, v_th: float = 1.0, reset: ResetMode = "subtract",
                 bias: bool = True, rec_bias: bool = False, surrogate: sg.Surrogate = sg.DEFAULT,
                 detach_reset: bool = False, learn: str = "none") -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, hidden, bias=bias)
        self.rec = nn.Linear(hidden, hidden, bias=rec_bias)
        if neuron == "lif":
            self.neuron = LIF(hidden, tau_mem=tau_mem, beta=beta, dt=dt, v_th=v_th, reset=reset,
                              detach_reset=detach_reset, surrogate=surrogate, learn=learn)
        elif neuron == "cuba":
            self.neuron = CubaLIF(hidden, tau_syn=tau_syn, tau_mem=tau_mem, alpha=alpha, beta=beta, dt=dt,
                                  v_th=v_th, reset=reset, detach_reset=detach_reset, surrogate=surrogate,
                                  learn=learn)
        else:
            raise ParameterError(f"neuron must be 'lif' or 'cuba', got {neuron!r}")
        self.kind = neuron
        self.hidden = hidden

    @property
    def dt(self) -> float:
        """Simulation time step in seconds (the neuron's)."""
        return self.neuron.dt

    def forward(self, x: torch.Tensor, state: RLIFState | None = None):
        """``z [T, B, hidden], state = rlif(x [T, B, in_features], state)``, one time step at a time."""
        check_sequence(x)
        n = self.neuron
        common = dict(v_th=n.v_th, reset=n.reset, detach_reset=n.detach_reset, surrogate=n.surrogate)
        drive = self.fc(x)
        z = drive.new_zeros(drive.shape[1:]) if state is None else state.z
        s = None if state is None else state.neuron
        zs = []
        for t in range(x.shape[0]):
            xt = drive[t] + self.rec(z)
            if self.kind == "lif":
                z, s = lif_step(xt, s, beta=n.beta, **common)
            else:
                z, s = cuba_lif_step(xt, s, alpha=n.alpha, beta=n.beta, **common)
            zs.append(z)
        return torch.stack(zs), RLIFState(z, s)
