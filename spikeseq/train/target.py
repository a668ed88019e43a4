"""Training for a target (``[train] target``): the run's target-mode settings and its check against the interpreter.

Recipes: ``[train] target = "loihi" | "spinnaker2"`` and ``target_epochs = N`` (the last N epochs run in target mode,
:class:`spikeseq.graph.target_mode.TargetMode`; default all). The settings that change the numerics are read from
the exporter's own section ``[export.<target>]`` (Loihi: ``weight_exp``, ``reset_policy``, ``input_bits``;
SpiNNaker2: ``payload_frac_bits`` of graded populations), and for
real-valued inputs on Loihi the fractional bits ``k`` of the input payloads are chosen once from the training data
(:func:`spikeseq.graph.quantize.input_frac_bits`), stored in the checkpoint (``"target"``) and used again by
``spikeseq export``. Python users call :func:`target_mode` (re-exported here) directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from spikeseq.errors import ExportError
from spikeseq.graph.quantize import input_frac_bits, quantize_input
from spikeseq.graph.simulate import simulate
from spikeseq.graph.target_mode import (
    NUMERIC_KEYS,
    TARGETS,
    TargetMode,
    TargetSettings,
    check_target,
    output_transform,
    target_mode,
)
from spikeseq.graph.trace import graph_inputs

__all__ = ["TARGETS", "TargetMode", "TargetSettings", "check_target", "settings_from_config", "target_agreement",
           "target_mode"]


def settings_from_config(cfg: Any, train_x: torch.Tensor | None = None,
                         stored: dict[str, Any] | None = None) -> TargetSettings | None:
    """The :class:`TargetSettings` of a run config (``None`` without ``train.target``): numerics keys from
    ``[export.<target>]``, and on Loihi the input fractional bits chosen from ``train_x`` when it holds real values
    (or taken from ``stored``, the settings a checkpoint recorded, so a resumed run keeps them)."""
    target = cfg.train.target
    if target is None:
        return None
    if stored is not None:
        return TargetSettings(**stored)
    sec = dict(getattr(cfg.export, target, {}) or {})
    kw = {k: sec[k] for k in NUMERIC_KEYS if k in sec}
    if target != "loihi":
        kw.pop("weight_exp", None)
        kw.pop("reset_policy", None)
        kw.pop("input_bits", None)
    else:
        kw.pop("payload_frac_bits", None)
    k = None
    if target == "loihi" and train_x is not None and train_x.numel() and train_x.is_floating_point():
        chunks = range(0, train_x.shape[0], 256)   # no full-size temporaries
        if any(bool(torch.frac(train_x[i:i + 256]).any()) for i in chunks):
            amax = max(float(train_x[i:i + 256].abs().max()) for i in chunks)
            k = input_frac_bits(amax, int(kw.get("input_bits", 8)))
    return TargetSettings(target, input_frac_bits=k, **kw)


def target_agreement(tm: TargetMode, x: torch.Tensor, labels: torch.Tensor | None = None,
                     readout: str = "mean") -> dict[str, Any]:
    """Target mode against the bit-exact interpreter on the graph the exporter writes (the same
    :func:`~spikeseq.graph.quantize.quantize` of the traced model), for inputs ``x`` ``[T, B, ...]``: per neuron
    node the fraction of equal spikes (``1.0`` = identical), the largest difference of the values of the readout
    populations (``readout_max_abs_diff``, float units; 0 where the output is a synapse, as an EGRU's), of the graph
    outputs (``output_max_abs_diff``), the fraction of equal predictions, and with ``labels`` both accuracies
    (``readout``: how ``[T, B, K]`` outputs become logits, as ``[train] readout``; labels ``[B, T]``, such as next
    tokens, are compared with the output of every step). ``x`` is the model's input (token ids become the graph's
    one-hot events through the model's ``graph_inputs``)."""
    from spikeseq.train.evaluate import logits_from

    with torch.no_grad():
        res, meta = tm.run(x, record=True)
    s = tm.settings
    xs = graph_inputs(tm.model, x).detach().cpu().double().numpy()   # the events the graph takes
    if s.target == "loihi" and s.input_frac_bits is not None:
        xs = quantize_input(xs, s.input_frac_bits, s.input_bits)
    sim = simulate(res.graph, xs, numerics=s.target)
    if not res.traces:
        raise ExportError("target_agreement: the graph has no neuron population to compare")
    spikes, diff = {}, 0.0
    for name, tr in res.traces.items():
        a, b = tr.numpy(), sim.traces[name]
        if getattr(res.graph.nodes[name], "readout", False):
            diff = max(diff, float(np.abs(a - b).max(initial=0.0)))
        else:
            spikes[name] = float(np.mean(a == b))
    kind = meta.get("output_transform")
    y_t = output_transform(res.output, kind)
    y_g = output_transform(torch.from_numpy(np.asarray(sim.output, np.float64)), kind)
    per_step = labels is not None and torch.as_tensor(labels).dim() == 2   # next-token labels [B, T]
    if per_step:   # one prediction per step and sample, time-first as the outputs
        p_t, p_g = y_t.argmax(-1), y_g.argmax(-1)
        labels = torch.as_tensor(labels).t()
    else:
        p_t, p_g = logits_from(y_t, readout).argmax(1), logits_from(y_g, readout).argmax(1)
    out: dict[str, Any] = {"spike_agreement": spikes, "readout_max_abs_diff": diff,
                           "output_max_abs_diff": float((y_t.double() - y_g).abs().max()) if y_t.numel() else 0.0,
                           "prediction_agreement": float((p_t == p_g).double().mean()),
                           "samples": int(x.shape[1]), "steps": int(x.shape[0])}
    if labels is not None:
        lab = torch.as_tensor(labels).reshape(-1)
        out["target_accuracy"] = float((p_t.reshape(-1) == lab).double().mean())
        out["graph_accuracy"] = float((p_g.reshape(-1) == lab).double().mean())
    return out
