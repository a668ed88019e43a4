"""``tau_mem`` from a TOML recipe to the Loihi file passes through each layer once:

config (seconds, as written) -> model (stored as ``tau``, in seconds) -> trace (the IR node carries the same ``tau``)
-> quantise (the one conversion ``decay_from_tau(tau, dt)``) -> netx file (``vDecay = round((1 - beta) * 4096)``).
No layer turns the time constant into a decay and back.
"""

from __future__ import annotations

import numpy as np
import torch

from spikeseq.export.loihi import read_net, write_net
from spikeseq.functional.discretize import decay_from_tau
from spikeseq.graph import ir, trace
from spikeseq.train.config import load_config
from spikeseq.train.loop import build_model

RECIPE = """
name = "tau_trace"
[model]
name = "rsnn"
n_in = 3
n_out = 2
hidden = 5
tau_mem = 0.05
tau_out = 0.2
dt = 0.01
reset = "zero"
[data]
name = "hapt"
"""


def test_tau_mem_is_converted_once_from_recipe_to_loihi_file(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE)
    cfg = load_config(path)
    assert cfg.model.kwargs["tau_mem"] == 0.05 and cfg.model.kwargs["tau_out"] == 0.2   # config: as written
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    lif, li = model[0].neuron, model[2]
    # model: the time constant is stored in seconds (a buffer), not as a decay
    assert np.all(dict(lif.named_buffers())["time.tau_mem"].numpy() == np.float32(0.05))
    assert np.all(dict(li.named_buffers())["time.tau_mem"].numpy() == np.float32(0.2))
    assert not any("beta" in n for n, _ in model.named_parameters())
    # trace: the IR nodes carry the same tau (no decay -> tau round trip)
    g = trace(model, dt=cfg.model.kwargs["dt"])
    hidden = next(n for n in g.nodes.values() if isinstance(n, ir.LIF))
    out = next(n for n in g.nodes.values() if isinstance(n, ir.LI))
    assert np.all(hidden.tau == np.float32(0.05)) and np.all(out.tau == np.float32(0.2))
    # quantise + export: the decay in the Loihi file is the one conversion of the recipe's tau and dt
    with torch.no_grad():
        model[0].fc.weight.mul_(0.5)
    layers = read_net(write_net(trace(model, dt=0.01), tmp_path / "net.net").path)
    assert [layer["type"] for layer in layers] == ["input", "dense_rec", "dense"]
    v_decay = lambda tau: round((1 - decay_from_tau(tau, 0.01)) * 4096)  # noqa: E731
    assert v_decay(0.05) == 742 and v_decay(0.2) == 200
    assert np.all(layers[1]["neuron"]["vDecay"] == v_decay(0.05))
    assert np.all(layers[2]["neuron"]["vDecay"] == v_decay(0.2))
    assert np.all(layers[1]["neuron"]["iDecay"] == 4096)   # LIF: the current does not persist
