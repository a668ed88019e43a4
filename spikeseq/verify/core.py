"""Export a model and check that the exported graph still computes what the model computed.

    result = export_and_verify(model, target, out_path, inputs, labels=None, *, dt)

- ``model``: a spikeseq ``nn`` model that :func:`spikeseq.graph.trace` supports, called as ``y, state = model(x)``
  on time-first ``inputs`` ``[T, B, *input_shape]`` (tensor or array; held-out real data).
- ``target``: ``"nir"`` (writes a NIR file, reads it back and runs it in float), ``"loihi"`` (writes a lava-dl netx
  ``.net`` file, or for graphs that are not a netx chain a Lava process-network description ``.lava.json`` + build
  script next to ``out_path`` (``format`` says which), and runs the quantised graph with the bit-exact Loihi
  interpreter) or ``"spinnaker2"`` (writes the
  py-spinnaker2 JSON description + build script and runs the int8/float32 interpreter).
- ``out_path``: where the artifact goes (written atomically; nothing is left behind when export fails).
- ``labels``: optional ``[B]`` class indices; accuracy of model and graph is then reported. A prediction is the
  argmax over the last axis of the output summed over time (``readout="sum"``), of the last step
  (``readout="last"``) or of the per-step softmax summed over time (``readout="softmax_sum"``, the training
  readout of the same name), or one prediction per step against labels ``[B, T]`` (``readout="per_step"``, language
  models). A model whose inputs are not the graph's (token ids) provides ``graph_inputs(x)`` (e.g. one-hot events).
- ``dt``: the model's step in seconds (required).

The returned :class:`VerifyResult` holds, per neuron layer, the fraction of equal spikes (model vs interpreter,
over all steps, samples and neurons; the hardware interpreters are aligned by their per-hop latency; populations
inside a module, with no module output to hook, are compared with the float interpreter of the traced graph and
marked ``reference: "float interpreter"`` in their metrics), the spike
event metrics of :func:`spike_event_metrics` (precision and recall of spike events, firing rates of both sides and
a timing-offset histogram: the fraction of equal spikes counts matching silence, so a silent graph "agrees" with
a sparse model; precision/recall and the rates do not), the output
agreement (equal spikes, or max |difference| and prediction agreement for non-spiking readouts), the accuracies,
the artifact path, the mapping report (Loihi cores / SpiNNaker2 PEs) and the interpreter's event counts.
``.to_dict()`` is JSON-able; ``.to_markdown()`` is a small report.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from spikeseq.errors import NonFiniteError, ParameterError, ShapeError
from spikeseq.graph import ir
from spikeseq.graph.quantize import input_frac_bits, quantize_input, scale_input_synapses
from spikeseq.graph.simulate import SimResult, data_payload, simulate
from spikeseq.graph.target_mode import output_transform as readout_transform
from spikeseq.graph.trace import graph_inputs, trace

__all__ = ["TARGETS", "VerifyResult", "export_and_verify", "fixed_point_input", "output_transform", "predictions",
           "spike_event_metrics"]

TARGETS = ("nir", "loihi", "spinnaker2")


@dataclass
class VerifyResult:
    """What :func:`export_and_verify` measured for one target (see the module docstring for each field's meaning).

    Agreements and accuracies are fractions in [0, 1]; ``layer_agreement`` maps each neuron node to its fraction of
    equal spikes; ``mapping`` is the target's core / PE mapping report (``None`` for NIR).
    """

    target: str
    artifact: str
    extra_files: list[str]
    dt: float
    steps: int
    samples: int
    layer_agreement: dict[str, float]       # neuron node -> fraction of equal spikes (counts matching silence)
    output_agreement: float                 # equal spikes (spiking output) or equal predictions (values)
    output_max_abs_diff: float | None       # non-spiking outputs only
    prediction_agreement: float
    model_accuracy: float | None
    graph_accuracy: float | None
    mapping: dict | None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _mapping_md: str = field(default="", repr=False)
    format: str = ""                        # artifact format: nir, netx, lava-process-json, spinnaker2-json
    spike_metrics: dict[str, dict] = field(default_factory=dict)   # neuron node -> spike_event_metrics(...)

    @property
    def accuracy_drop(self) -> float | None:
        """``model_accuracy - graph_accuracy`` (``None`` without labels)."""
        if self.model_accuracy is None or self.graph_accuracy is None:
            return None
        return self.model_accuracy - self.graph_accuracy

    def to_dict(self) -> dict:
        """The result as JSON-ready data, with ``accuracy_drop``."""
        d = asdict(self)
        d.pop("_mapping_md")
        d["accuracy_drop"] = self.accuracy_drop
        return d

    def to_markdown(self) -> str:
        """A small Markdown report: spike agreement per layer, output and prediction agreement, accuracies, mapping."""
        pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
        fmt = f" ({self.format})" if self.format else ""
        lines = [f"### Export to {self.target}{fmt}: `{self.artifact}`", "",
                 f"{self.samples} samples x {self.steps} steps at dt = {self.dt:g} s", "",
                 "| layer | spike agreement | precision | recall | rate model | rate graph | timing offsets |",
                 "|---|---|---|---|---|---|---|"]
        lines += [_metrics_row(k, v, self.spike_metrics.get(k)) for k, v in self.layer_agreement.items()]
        lines += ["", f"- output agreement: {pct(self.output_agreement)}"]
        if self.output_max_abs_diff is not None:
            lines.append(f"- output max |model - graph|: {self.output_max_abs_diff:.3g}")
        lines += [f"- prediction agreement: {pct(self.prediction_agreement)}",
                  f"- accuracy: model {pct(self.model_accuracy)}, exported graph {pct(self.graph_accuracy)}"
                  + ("" if self.accuracy_drop is None else f" (drop {100 * self.accuracy_drop:.2f} points)")]
        if self._mapping_md:
            lines += ["", self._mapping_md]
        if self.notes:
            lines += ["", "Notes:"] + [f"- {n}" for n in self.notes]
        return "\n".join(lines)


READOUTS = ("sum", "last", "softmax_sum", "per_step")


def predictions(out: np.ndarray, readout: str = "sum") -> np.ndarray:
    """Class predictions from a ``[T, B, ..., C]`` output trace (``readout="per_step"``: one prediction per step,
    ``[B, T]``, e.g. a language model's next token)."""
    if readout == "per_step":
        return out.reshape(out.shape[0], out.shape[1], -1).argmax(-1).T
    if readout == "sum":
        return out.sum(axis=0).reshape(out.shape[1], -1).argmax(-1)
    if readout == "last":
        return out[-1].reshape(out.shape[1], -1).argmax(-1)
    if readout == "softmax_sum":
        z = out.reshape(out.shape[0], out.shape[1], -1).astype(np.float64)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).sum(axis=0).argmax(-1)
    raise ParameterError(f"readout must be 'sum', 'last', 'softmax_sum' or 'per_step', got {readout!r}")


def _model_traces(model: torch.nn.Module, x: torch.Tensor, module_of: dict[str, str]):
    """The model's output and the outputs of the modules the graph's neuron nodes reproduce."""
    mods = dict(model.named_modules())
    got: dict[str, np.ndarray] = {}
    hooks = []
    for node, path in module_of.items():
        mod = model if path == "" else mods.get(path)
        if mod is None:
            continue

        def hook(_m, _inp, out, node=node):
            y = out[0] if isinstance(out, tuple) else out
            got[node] = y.detach().cpu().numpy()

        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    y = y[0] if isinstance(y, tuple) else y
    return y.detach().cpu().numpy(), got


def _write(target: str, g: ir.Graph, out_path: Path, **kwargs):
    """Write the artifact; return (graph to simulate, numerics, mapping report or None, extra files, artifact
    format, artifact path)."""
    if target == "nir":
        from spikeseq.export.nir import from_nir, write_nir

        write_nir(g, out_path, **kwargs)
        nir_dt = kwargs.get("nir_dt") or g.dt
        return from_nir(out_path, dt=nir_dt), "float", None, [], "nir", out_path
    if target == "loihi":
        from spikeseq.export.loihi import write_loihi

        e = write_loihi(g, out_path, **kwargs)
        return e.graph, "loihi", e.mapping, [str(p) for p in e.extra_files], e.format, e.path
    from spikeseq.export.spinnaker2 import write_spinnaker2

    e = write_spinnaker2(g, out_path, **kwargs)
    return e.graph, "spinnaker2", e.mapping, [str(e.script)], "spinnaker2-json", out_path


def export_and_verify(model: torch.nn.Module, target: str, out_path: str | os.PathLike, inputs, labels=None, *,
                      dt: float, readout: str = "sum", batch_size: int = 64, **export_kwargs) -> VerifyResult:
    """Trace ``model``, write it for ``target`` at ``out_path``, run the interpreter on ``inputs`` and compare.

    See the module docstring. ``export_kwargs`` go to the target's writer (NIR: ``nir_dt``, ``convention``,
    ``delays``; Loihi: ``weight_exp``, ``reset_policy``, ``check_mapping``; SpiNNaker2: ``check_mapping``).
    ``batch_size`` bounds the interpreter's batch (memory of recorded traces).
    """
    if target not in TARGETS:
        raise ParameterError(f"target must be one of {TARGETS}, got {target!r}")
    if dt is None:
        raise ParameterError("export_and_verify needs dt (seconds), the step the model was trained with")
    if readout not in READOUTS:
        raise ParameterError(f"readout must be one of {READOUTS}, got {readout!r}")
    x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
    x = x.float()
    # checked before anything is written: a failure after the writer would leave a fresh file behind
    if x.dim() < 2 or x.shape[1] == 0:
        raise ShapeError(f"export_and_verify needs inputs [T, B, ...] with at least one sample, got shape "
                         f"{tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteError("export_and_verify inputs hold NaN or Inf; verify on finite samples")
    if labels is not None and len(labels) != x.shape[1]:
        raise ShapeError(f"{len(labels)} labels for {x.shape[1]} samples; give one label per sample (or none)")
    model = model.eval()
    xg = torch.as_tensor(graph_inputs(model, x)).float()   # e.g. token ids [T, B] -> one-hot events [T, B, vocab]
    if xg.dim() < 3:
        raise ShapeError(f"inputs must be time-first [T, B, ...], got shape {tuple(x.shape)}")
    xn = xg.cpu().numpy()
    g = trace(model, dt=dt, input_shape=tuple(xg.shape[2:]), input_payload=data_payload(xn))
    input_bits = export_kwargs.pop("input_bits", 8)
    fixed_k = export_kwargs.pop("input_frac_bits", None)
    frac_bits = None
    if target == "loihi" and (fixed_k is not None or not np.array_equal(xn, np.round(xn))):
        g, frac_bits = fixed_point_input(g, xn, input_bits, fixed_k)
    out_path = Path(out_path)
    sim_graph, numerics, mapping, extra, fmt, artifact = _write(target, g, out_path, **export_kwargs)
    module_of = g.metadata.get("module_of", {})
    unhooked = _unhooked_spiking(g, sim_graph, module_of) if numerics != "float" else []
    float_ref: list[SimResult] = []
    y_model, layer_model, results = [], {}, []
    for lo in range(0, x.shape[1], batch_size):
        xb = x[:, lo:lo + batch_size]
        yb, lb = _model_traces(model, xb, module_of)
        y_model.append(yb)
        for k, v in lb.items():
            layer_model.setdefault(k, []).append(v)
        xs = xg[:, lo:lo + batch_size].numpy()
        if frac_bits is not None:
            xs = quantize_input(xs, frac_bits, input_bits)
        results.append(simulate(sim_graph, xs, numerics=numerics))
        if unhooked:
            float_ref.append(simulate(g, xs, numerics="float", record=unhooked))
    y = np.concatenate(y_model, axis=1)
    layer_model = {k: np.concatenate(v, axis=1) for k, v in layer_model.items()}
    out_name = sim_graph.outputs()[0]
    y_graph = np.concatenate([r.outputs[out_name] for r in results], axis=1)
    y_graph = output_transform(y_graph, g.metadata.get("output_transform")).reshape(y.shape)
    agree, spike_metrics = {}, {}
    for node, ym in layer_model.items():
        if node in results[0].traces and sim_graph.nodes[node].sends("spikes") == "spikes":
            yg = np.concatenate([r.traces[node] for r in results], axis=1).reshape(ym.shape)
            agree[node] = float(np.mean(yg == ym))
            spike_metrics[node] = spike_event_metrics(ym, yg)
    for node in unhooked:   # populations inside a module (e.g. L2MU's u, m, h): the float interpreter is the reference
        ym = np.concatenate([r.traces[node] for r in float_ref], axis=1)
        yg = np.concatenate([r.traces[node] for r in results], axis=1).reshape(ym.shape)
        agree[node] = float(np.mean(yg == ym))
        spike_metrics[node] = dict(spike_event_metrics(ym, yg), reference="float interpreter")
    spiking_out = np.isin(y, (0.0, 1.0)).all() and np.isin(y_graph, (0.0, 1.0)).all()
    p_model, p_graph = predictions(y, readout), predictions(y_graph, readout)
    pred_agree = float(np.mean(p_model == p_graph))
    counts = _sum_counts(results)
    lab = None if labels is None else np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    notes = []
    if numerics != "float":
        notes.append(f"{numerics} interpreter: one step per synapse hop; traces aligned by each layer's latency")
    if frac_bits is not None:
        notes.append(f"real-valued inputs sent to Loihi as signed graded payloads round(x * 2**{frac_bits}) "
                     f"({input_bits}-bit); the input synapses' float weights were divided by 2**{frac_bits} before "
                     "quantising, so input rounding is part of the measured disagreement")
        lim = 2 ** (int(input_bits) - 1) - 1
        clipped = int(np.count_nonzero(np.abs(np.round(xn * 2.0 ** frac_bits)) > lim))
        if clipped:
            notes.append(f"{clipped} of {xn.size} input values saturate at +-{lim} (max |x| = "
                         f"{float(np.abs(xn).max()):.4g} is beyond the {input_bits}-bit payload even with 0 fractional "
                         f"bits): the graph receives clipped inputs; pass input_bits= (up to 24) or scale the inputs "
                         "(and the input weights) down")
    elif target == "loihi":
        beyond = integer_inputs_beyond_payload(xn)
        if beyond is not None:
            n, bits, lim = beyond
            notes.append(f"{n} of {xn.size} integer input values are beyond the {bits}-bit graded-spike payload "
                         f"(+-{lim}; max |x| = {float(np.abs(xn).max()):.4g}): Loihi cannot send them as they are, "
                         "while the interpreter used them unclipped, so the agreement measured here does not hold "
                         "on the chip; scale the inputs (and the input weights) down, or bin the events more finely "
                         "so that the counts fit")
    lost = weights_rounded_to_zero(g, sim_graph) if numerics != "float" else {}
    if lost:
        total = sum(n for n, _ in lost.values())
        where = ", ".join(f"{k}: {n} of {m}" for k, (n, m) in sorted(lost.items()))
        notes.append(f"{total} nonzero weight(s) round to 0 in {numerics} ({where}): weights much smaller than the "
                     "largest of their synapse share its scale and are lost; their events do not reach the target")
    vanishing = payloads_that_round_to_zero(sim_graph) if numerics != "float" else {}
    if vanishing:
        where = ", ".join(f"{k}: {n} of {m} units (payload_frac_bits {f})"
                          for k, (n, m, f) in sorted(vanishing.items()))
        notes.append(f"graded payloads round(y * 2**f) are 0 for events with y = c~ < 2**-(f+1), and units whose "
                     f"threshold lies below that can send such events ({where}): they arrive as nothing; raise "
                     "payload_frac_bits (up to 7) to keep them")
    if target == "nir":
        notes.append("NIR file read back with from_nir and run with the float interpreter")
        from spikeseq.export.nir import extension_message, extension_resets

        ext = extension_resets(g)
        if ext:
            notes.append(extension_message(ext))
    return VerifyResult(
        target=target, artifact=str(artifact), extra_files=extra, dt=float(dt), steps=int(x.shape[0]),
        samples=int(x.shape[1]), layer_agreement=agree,
        output_agreement=float(np.mean(y == y_graph)) if spiking_out else pred_agree,
        output_max_abs_diff=None if spiking_out else float(np.abs(y - y_graph).max()),
        prediction_agreement=pred_agree,
        model_accuracy=None if lab is None else float(np.mean(p_model == lab)),
        graph_accuracy=None if lab is None else float(np.mean(p_graph == lab)),
        mapping=None if mapping is None else mapping.to_dict(), counts=counts, notes=notes,
        _mapping_md="" if mapping is None else mapping.to_markdown(), format=fmt, spike_metrics=spike_metrics)


def integer_inputs_beyond_payload(x: np.ndarray) -> tuple[int, int, int] | None:
    """For integer-valued inputs sent to Loihi as they are (spikes or graded payloads, no fixed-point scaling):
    ``(number of values beyond the graded-spike payload, its bits, the largest |value| it holds)``, or ``None``
    when every value fits (:func:`spikeseq.graph.targets.graded_payload_bits`)."""
    from spikeseq.graph.targets import graded_payload_bits

    bits = graded_payload_bits()
    lim = 2 ** (bits - 1) - 1
    n = int(np.count_nonzero(np.abs(np.asarray(x, np.float64)) > lim))
    return (n, bits, lim) if n else None


def payloads_that_round_to_zero(sim_graph: ir.Graph) -> dict[str, tuple[int, int, int]]:
    """``{EGRU cell: (units whose threshold is below 2**-(f+1), units, f)}`` for the cells of the target's graph with
    fixed-point payloads ``round(y * 2**f)``: an event of such a unit with ``theta < y = c~ < 2**-(f+1)`` sends a
    payload of 0 (only cells with at least one such unit)."""
    out = {}
    for name, node in sim_graph.nodes.items():
        f = getattr(node, "payload_frac_bits", None)
        if not isinstance(node, ir.EGRUCell) or f is None:
            continue
        th = np.asarray(node.threshold, np.float64).reshape(-1)
        n = int(np.count_nonzero(th < 2.0 ** -(int(f) + 1)))
        if n:
            out[name] = (n, int(th.size), int(f))
    return out


def weights_rounded_to_zero(g: ir.Graph, sim_graph: ir.Graph) -> dict[str, tuple[int, int]]:
    """``{synapse node: (nonzero weights that are 0 in the exported graph, nonzero weights)}`` for the synapses
    whose ``weight`` matrices have the same shape in the traced graph ``g`` and the target's graph (only those with
    at least one lost weight)."""
    lost = {}
    for name, node in g.nodes.items():
        w = getattr(node, "weight", None)
        q = getattr(sim_graph.nodes.get(name), "weight", None)
        if not isinstance(w, np.ndarray) or not isinstance(q, np.ndarray) or w.shape != q.shape:
            continue
        nonzero = w != 0
        n = int(np.count_nonzero(nonzero & (q == 0)))
        if n:
            lost[name] = (n, int(np.count_nonzero(nonzero)))
    return lost


def _unhooked_spiking(g: ir.Graph, sim_graph: ir.Graph, module_of: dict[str, str]) -> list[str]:
    """Spiking populations of the exported graph with no module output to compare with (they live inside a
    module, e.g. L2MU's populations): compared with the float interpreter of the traced graph instead, which runs
    the model's own semantics (the NIR round trip checks that it equals the torch model)."""
    return [k for k, n in sim_graph.nodes.items() if n.role == "neuron" and k not in module_of and k in g.nodes
            and sim_graph.nodes[k].sends("spikes") == "spikes" and g.nodes[k].sends("spikes") == "spikes"]


def fixed_point_input(g: ir.Graph, x: np.ndarray, bits: int, frac_bits: int | None = None) -> tuple[ir.Graph, int]:
    """Loihi receives integers only: real-valued inputs are sent as graded payloads ``round(x * 2**k)`` with ``k``
    the largest number of fractional bits (0..16) keeping ``|x| * 2**k <= 2**(bits-1) - 1``
    (:func:`spikeseq.graph.quantize.input_frac_bits`; ``frac_bits`` fixes ``k`` instead, e.g. the ``k`` a
    target-mode run was trained with); the synapses fed by an input get their float weights divided by ``2**k``
    (biases unchanged), so the float graph computes the same."""
    k = input_frac_bits(float(np.abs(x).max()), bits) if frac_bits is None else int(frac_bits)
    return scale_input_synapses(g, k), k


def output_transform(y: np.ndarray, kind: str | None) -> np.ndarray:
    """The model's readout applied to the graph output, as recorded by the tracer: the numpy face of
    :func:`spikeseq.graph.target_mode.output_transform` (the one definition)."""
    return readout_transform(torch.from_numpy(np.asarray(y)), kind).numpy()


def _sum_counts(results: list[SimResult]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for r in results:
        for node, c in r.counts().items():
            t = total.setdefault(node, dict.fromkeys(c, 0))
            for k, v in c.items():
                t[k] += int(v)
    return total


MAX_OFFSET = 3   # timing-offset histogram range: -MAX_OFFSET..+MAX_OFFSET steps


def spike_event_metrics(model: np.ndarray, graph: np.ndarray, *, max_offset: int = MAX_OFFSET) -> dict:
    """Spike events of the exported graph against the model's, for one neuron population.

    ``model`` and ``graph`` are ``[T, B, ...]`` 0/1 arrays (time first). A spike of the graph at step ``t`` of neuron
    ``n`` in sample ``b`` is a true positive when the model spiked at the same ``(t, b, n)``:

    - ``precision = matched / graph spikes`` (``None`` when the graph never spikes),
    - ``recall = matched / model spikes`` (``None`` when the model never spikes),
    - ``rate_model``, ``rate_graph``: spikes per neuron per step (a silent side has rate 0),
    - ``offsets``: for every graph spike, the signed step distance to the nearest model spike of the same neuron
      and sample (``graph time - model time``, ties to the earlier model spike), counted per offset in
      ``-max_offset..max_offset``; ``offsets_beyond`` counts the graph spikes with no model spike that close
      (or none at all).
    """
    m = np.asarray(model).reshape(model.shape[0], -1) != 0
    g = np.asarray(graph).reshape(graph.shape[0], -1) != 0
    if m.shape != g.shape:
        raise ShapeError(f"spike_event_metrics: model {m.shape} and graph {g.shape} spike arrays differ in shape")
    n_model, n_graph, matched = int(m.sum()), int(g.sum()), int((m & g).sum())
    hist = dict.fromkeys(range(-max_offset, max_offset + 1), 0)
    beyond = 0
    steps = m.shape[0]
    for col in np.flatnonzero(g.any(axis=0)):
        tg = np.flatnonzero(g[:, col])
        tm = np.flatnonzero(m[:, col])
        if tm.size == 0:
            beyond += tg.size
            continue
        pos = np.clip(np.searchsorted(tm, tg), 1, tm.size) - 1          # model spike at or before, else the first
        nxt = np.minimum(pos + 1, tm.size - 1)
        d_prev, d_next = tg - tm[pos], tg - tm[nxt]
        d = np.where(np.abs(d_next) < np.abs(d_prev), d_next, d_prev)
        inside = np.abs(d) <= max_offset
        beyond += int((~inside).sum())
        for k, c in zip(*np.unique(d[inside], return_counts=True)):
            hist[int(k)] += int(c)
    cells = max(1, m.size)
    return {"precision": matched / n_graph if n_graph else None, "recall": matched / n_model if n_model else None,
            "model_spikes": n_model, "graph_spikes": n_graph, "matched": matched,
            "rate_model": n_model / cells, "rate_graph": n_graph / cells, "steps": steps,
            "offsets": {str(k): v for k, v in hist.items()}, "offsets_beyond": beyond}


def _metrics_row(node: str, agreement: float, m: dict | None) -> str:
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    if m is None:
        return f"| {node} | {pct(agreement)} | n/a | n/a | n/a | n/a | n/a |"
    hist = " ".join(f"{k}:{v}" for k, v in m["offsets"].items() if v) or "-"
    if m["offsets_beyond"]:
        hist += f" beyond:{m['offsets_beyond']}"
    return (f"| {node} | {pct(agreement)} | {pct(m['precision'])} | {pct(m['recall'])} | {m['rate_model']:.4f} | "
            f"{m['rate_graph']:.4f} | {hist} |")
