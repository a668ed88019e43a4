"""Optional oracle: the bit-exact Loihi interpreter against Lava's own fixed-point models.

Runs only when ``SPIKESEQ_LAVA_PYTHON`` names a Python with ``lava-nc`` 0.10 installed (Lava needs Python 3.10:
``python3.10 -m venv V && V/bin/pip install 'numpy<2' 'scipy<1.14' 'networkx<=2.8.7' 'asteval<0.10'
scikit-learn h5py && V/bin/pip install --no-deps lava-nc==0.10.0``). The network is quantised by spikeseq, then run
by Lava (``RingBuffer -> DelayDense -> LIF`` with a recurrent ``Dense``, ``Loihi2SimCfg(select_tag="fixed_pt")``,
i.e. ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``) and by :func:`spikeseq.graph.simulate`; every spike must match.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
import torch

from spikeseq import nn as snn
from spikeseq.graph import ir, quantize, simulate, trace
from spikeseq.nn.recurrent import RLIF

LAVA_PY = os.environ.get("SPIKESEQ_LAVA_PYTHON")

SCRIPT = """
import sys
import numpy as np
from lava.proc.lif.process import LIF
from lava.proc.dense.process import Dense, DelayDense
from lava.proc.io.source import RingBuffer
from lava.proc.monitor.process import Monitor
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.run_conditions import RunSteps

d = np.load(sys.argv[1])
T = d["x"].shape[0]
src = RingBuffer(data=d["x"].T.astype(int))
syn = DelayDense(weights=d["W"].astype(int), delays=d["D"].astype(int), max_delay=62)
# netx passes du = iDecay - 1 (Lava adds 1), dv = vDecay, bias_exp = 6
lif = LIF(shape=(d["W"].shape[0],), du=d["i_decay"] - 1, dv=d["v_decay"], vth=d["vth"], bias_mant=d["bias"],
          bias_exp=6)
rec = Dense(weights=d["R"].astype(int))
src.s_out.connect(syn.s_in)
syn.a_out.connect(lif.a_in)
lif.s_out.connect(rec.s_in)
rec.a_out.connect(lif.a_in)
mon = Monitor()
mon.probe(lif.s_out, T)
lif.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
z = mon.get_data()[lif.name]["s_out"]
lif.stop()
np.save(sys.argv[2], z)
"""


@pytest.mark.skipif(not LAVA_PY, reason="set SPIKESEQ_LAVA_PYTHON to a Python with lava-nc 0.10 to run the oracle")
def test_interpreter_matches_lava_fixed_point(tmp_path):
    torch.manual_seed(1)
    m = snn.Sequential(RLIF(30, 40, neuron="cuba", dt=1e-3, tau_mem=8e-3, tau_syn=4e-3, reset="zero", v_th=0.8))
    with torch.no_grad():
        m[0].fc.weight.mul_(3)
        m[0].rec.weight.mul_(2)
        m[0].fc.bias.uniform_(-0.05, 0.1)
    g = trace(m, dt=1e-3)
    rng = np.random.default_rng(0)
    fc = g.nodes["0_fc"]
    g.nodes["0_fc"] = ir.DelayAffine(fc.weight, rng.integers(0, 5, fc.weight.shape), fc.bias)
    q = quantize(g, "loihi")
    x = (rng.random((60, 1, 30)) < 0.25).astype(float)
    ours = simulate(q, x, numerics="loihi", align=False).traces["0_cubalif"][:, 0]
    n = q.nodes["0_cubalif"]
    np.savez(tmp_path / "net.npz", x=x[:, 0], W=q.nodes["0_fc"].weight, D=q.nodes["0_fc"].delay,
             R=q.nodes["0_rec"].weight, i_decay=n.i_decay, v_decay=n.v_decay, vth=n.vth, bias=n.bias)
    (tmp_path / "run.py").write_text(SCRIPT)
    subprocess.run([LAVA_PY, str(tmp_path / "run.py"), str(tmp_path / "net.npz"), str(tmp_path / "z.npy")],
                   check=True, timeout=600, cwd=tmp_path)
    lava = np.load(tmp_path / "z.npy")
    assert ours.sum() > 100
    np.testing.assert_array_equal(lava, ours)
