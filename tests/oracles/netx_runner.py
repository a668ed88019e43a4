"""Run spikeseq-written lava-dl netx ``.net`` files with the real Lava (executed by ``$SPIKESEQ_LAVA_PYTHON``, a
Python 3.10 with lava-nc 0.10 and lava-dl 0.6; imports neither spikeseq nor pytest).

    python netx_runner.py JOBS.json

JOBS.json: ``[{"net": path, "inputs": path.npy ([B, T, *input_shape] integer spikes, spikeseq's (C, H, W) order),
"out": path.npz}, ...]``. Every sample is run separately from a fresh network (``netx.hdf5.Network``) fed by a
``RingBuffer`` for T steps under ``Loihi2SimCfg(select_tag="fixed_pt")`` (Lava's bit-accurate ``PyLifModelBitAcc``
and ``PyDenseModelBitAcc``); each layer's neuron ``s_out`` and ``v`` are probed. ``out`` gets ``s{i}`` and ``v{i}``
arrays ``[B, T, N_i]`` for netx layer i (spikeseq's flat (C, H, W) neuron order) and ``seconds`` (wall time); a job
that fails writes its traceback to ``out + ".error.txt"`` instead, and the next job runs.
"""

import json
import sys
import time
import traceback

import numpy as np
from lava.lib.dl import netx
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.source import RingBuffer
from lava.proc.monitor.process import Monitor


def _whc_to_flat_chw(a, shape_whc):
    """[T, W*H*C] in Lava's (x, y, z) order -> [T, C*H*W] in spikeseq's order."""
    t = a.shape[0]
    return a.reshape(t, *shape_whc).transpose(0, 3, 2, 1).reshape(t, -1) if len(shape_whc) == 3 else a


def run_one(net_path, x):
    """x: [T, *input_shape] (C, H, W order); returns {s{i}, v{i}: [T, N_i]}."""
    steps = x.shape[0]
    net = netx.hdf5.Network(net_config=net_path)
    data = x.reshape(steps, -1)
    if x.ndim == 4:   # (C, H, W) -> Lava's (W, H, C)
        data = x.transpose(0, 3, 2, 1)
    src = RingBuffer(data=np.moveaxis(data, 0, -1).astype(np.int32))
    src.s_out.connect(net.inp)
    mons = []
    for i, layer in enumerate(net.layers):
        for port in ("s_out", "v"):
            m = Monitor()
            m.probe(getattr(layer.neuron, port), steps)
            mons.append((i, port, m, layer.neuron))
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:   # a Lava runtime that is not stopped keeps its processes alive: stop it whatever happens
        out = {}
        for i, port, m, neuron in mons:
            a = np.asarray(m.get_data()[neuron.name][port]).reshape(steps, -1)
            out[f"{'s' if port == 's_out' else 'v'}{i}"] = _whc_to_flat_chw(a, tuple(neuron.s_out.shape))
    finally:
        net.stop()
    return out


def main():
    jobs = json.loads(open(sys.argv[1]).read())
    for job in jobs:
        t0 = time.time()
        try:
            xs = np.load(job["inputs"])
            per = [run_one(job["net"], x) for x in xs]
        except Exception:
            with open(job["out"] + ".error.txt", "w") as f:
                f.write(traceback.format_exc())
            print(f"netx_runner: {job['net']}: FAILED", flush=True)
            continue
        out = {k: np.stack([p[k] for p in per]) for k in per[0]}
        out["seconds"] = np.float64(time.time() - t0)
        np.savez(job["out"], **out)
        print(f"netx_runner: {job['net']}: {len(xs)} samples in {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
