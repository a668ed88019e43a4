"""Where the accuracy goes on the way to Loihi: the export's differences from the trained model, one at a time.

    steps = loihi_error_budget(model, inputs, labels, dt=dt, readout="last")

The traced graph is run with the float interpreter, then with each of the Loihi-style export's changes added in
turn (cumulative), and finally with the bit-exact Loihi numerics, which is what :func:`export_and_verify` measures:

1. ``float graph``: NIR timing (a synapse hop costs no step): reproduces the model;
2. ``+ one step per synapse hop``: Loihi's timing (each hop delays by a step; recurrent loops get longer);
3. ``+ reset to zero``: Loihi's CUBA neurons reset v to 0, populations trained with ``reset="subtract"`` change;
4. ``+ fixed-point input``: real-valued inputs sent as graded payloads ``round(x * 2**k)`` (``input_bits``);
5. ``+ Loihi fixed point``: weights, decays, thresholds and state in Loihi's integer arithmetic (the export).

The first row is the trained model itself. Each step reports accuracy and prediction agreement with the model;
``alone`` rows apply a single change (3 or 4) to the float graph. Steps that change nothing for a model (no
subtractive reset, integer inputs) are skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from spikeseq.graph import ir
from spikeseq.graph.simulate import data_payload, simulate
from spikeseq.graph.trace import trace
from spikeseq.verify.core import fixed_point_input, output_transform, predictions


@dataclass(frozen=True)
class BudgetStep:
    """One row of the error budget: the ``step`` name, whether it adds to the previous rows (``cumulative``), the
    accuracy (``None`` without labels) and the fraction of predictions that agree with the trained model.
    """

    step: str
    cumulative: bool
    accuracy: float | None
    prediction_agreement: float

    def to_dict(self) -> dict:
        """The row as a JSON-ready dict."""
        return asdict(self)


def zero_reset(graph: ir.Graph) -> ir.Graph:
    """``graph`` with every ``reset="subtract"`` neuron node resetting to zero instead (Loihi's CUBA reset)."""
    g = graph.flat()
    nodes = {k: replace(n, reset="zero") if getattr(n, "reset", None) == "subtract" else n
             for k, n in g.nodes.items()}
    return replace(g, nodes=nodes)


def _has_subtract(graph: ir.Graph) -> bool:
    return any(getattr(n, "reset", None) == "subtract" for n in graph.flat().nodes.values())


def loihi_error_budget(model: torch.nn.Module, inputs: torch.Tensor, labels=None, *, dt: float,
                       readout: str = "sum", input_bits: int = 8, batch_size: int = 256) -> list[BudgetStep]:
    """The steps of the module docstring on held-out ``inputs`` ``[T, B, ...]`` (``labels`` ``[B]`` optional)."""
    x = torch.as_tensor(inputs).float()
    xn = x.numpy()
    model = model.eval()
    g = trace(model, dt=dt, input_shape=tuple(x.shape[2:]), input_payload=data_payload(xn))
    with torch.no_grad():
        y_model = np.concatenate([model(x[:, lo:lo + batch_size])[0].numpy()
                                  for lo in range(0, x.shape[1], batch_size)], axis=1)
    p_model = predictions(y_model, readout)
    lab = None if labels is None else np.asarray(torch.as_tensor(labels))

    def score(name: str, cumulative: bool, graph: ir.Graph, xs: np.ndarray, **sim) -> BudgetStep:
        outs = []
        for lo in range(0, xs.shape[1], batch_size):
            r = simulate(graph, xs[:, lo:lo + batch_size], **sim)
            outs.append(r.outputs[graph.outputs()[0]])
        y = output_transform(np.concatenate(outs, axis=1), g.metadata.get("output_transform"))
        p = predictions(y.reshape(y.shape[0], *y_model.shape[1:]), readout)
        return BudgetStep(name, cumulative, None if lab is None else float(np.mean(p == lab)),
                          float(np.mean(p == p_model)))

    real_input = not np.array_equal(xn, np.round(xn))
    gq, xq = g, xn
    if real_input:
        gq, frac_bits = fixed_point_input(g, xn, input_bits)
        xq = np.round(xn * 2.0**frac_bits)
    subtract = _has_subtract(g)
    steps = [BudgetStep("trained model", True, None if lab is None else float(np.mean(p_model == lab)), 1.0),
             score("float graph", True, g, xn, numerics="float", latency="nir"),
             score("+ one step per synapse hop", True, g, xn, numerics="float", latency="hop")]
    if subtract:
        steps.append(score("+ reset to zero", True, zero_reset(g), xn, numerics="float", latency="hop"))
    if real_input:
        steps.append(score(f"+ fixed-point input ({input_bits} bits)", True, zero_reset(gq), xq, numerics="float",
                           latency="hop"))
    steps.append(score("+ Loihi fixed point (the export)", True, gq, xq, numerics="loihi",
                       quantize_kwargs={"reset_policy": "zero"}))
    if subtract:
        steps.append(score("reset to zero alone", False, zero_reset(g), xn, numerics="float", latency="nir"))
    if real_input:
        steps.append(score(f"fixed-point input alone ({input_bits} bits)", False, gq, xq, numerics="float",
                           latency="nir"))
    return steps


def to_markdown(steps: list[BudgetStep]) -> str:
    """The budget as a Markdown table: step, accuracy, prediction agreement with the model (percent)."""
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = ["| step | accuracy | prediction agreement with the model |", "|---|---|---|"]
    lines += [f"| {s.step} | {pct(s.accuracy)} | {pct(s.prediction_agreement)} |" for s in steps]
    return "\n".join(lines)
