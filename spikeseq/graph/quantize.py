"""Quantise a float IR graph to a target's number formats: ``quantize(graph, "loihi" | "spinnaker2")``.

The result is a new :class:`~spikeseq.graph.ir.Graph` with the same topology whose neuron nodes are the target kinds
(:class:`~spikeseq.graph.ir.LoihiCUBA`, :class:`~spikeseq.graph.ir.S2LIF`) and whose synapse nodes hold
integer-valued weights. ``graph.metadata["numerics"]`` names the target and ``graph.metadata["quant"][node]`` records
per population the float-to-integer ``scale``, the weight exponent, the synapses folded into it and any
approximation made. Limits come from :mod:`spikeseq.graph.targets` (``hardware/*.toml``).

Loihi (targets.md §2.2, §4.2, §5.2), per neuron population with incoming synapses ``W`` (input gains folded in):
``s = 2**e * 254 / max|W|`` (lowered so that ``vth = round(theta*s) <= 131071`` and ``|bias| <= 4095``), weights
``2**e * even(round(W*s / 2**e))`` with the mantissa in [-256, 254], ``iDecay = round((1-alpha)*4096)``,
``vDecay = round((1-beta)*4096)`` (LIF/LI: ``iDecay = 4096``, IF: ``vDecay = 0``), ``bias = round(b*s)``,
delays <= 62. Loihi resets v to 0: a ``reset="subtract"`` population is refused unless ``reset_policy="zero"``.
A CubaLIF bias enters v on Loihi, not the current: it is written as ``b/(1-alpha)`` (exact in steady state) and
listed under ``approximations``.

SpiNNaker2 (targets.md §3.3, §4.4): per population ``ws = 127 / max|W|`` (15 for projections with delays, which use
the ``lif`` model), int8 weights ``round(W*ws)``, float32 ``threshold = theta*ws``, ``alpha_decay = beta``,
``exc_decay = alpha``, ``i_offset = b*ws`` (CubaLIF: ``b/(1-alpha)*ws``, approximate), reset kept; a graded
population (spikes carry the membrane) stays graded, its payload in float units, float32 or with
``payload_frac_bits = f`` int8 fixed point ``round(v' / ws * 2**f)`` into synapses whose float weights are divided
by ``2**f`` (Loihi: refused).

:class:`~spikeseq.graph.ir.EGRUCell` populations (a custom PE program, SpiNNaker2 only; :func:`quantize_cells`):
int8 weights with one scale per gate and matrix, ``s_g = 127 / max|W_g|`` (``W_g`` the r, z or n rows of
``weight_ih`` or ``weight_hh``), ``round(W_g * s_g)``; biases and thresholds stay float32 (the PE computes the
gates in float32); payloads ``y`` float32 or, with ``payload_frac_bits = f``, int8 ``round(y * 2**f)`` (``y`` lies
in ``(theta, 1)``: ``f = 7`` uses the full int8 range). The readout ``Affine`` fed by a cell is an int8 matrix
``round(W * s)`` (``s = 127 / max|W|``) accumulated in int32 and divided once by ``s * 2**f`` (a readout PE):
it is written as the float ``Affine`` with weight ``round(W * s) / (s * 2**f)``. Loihi refuses the cell
(:data:`LOIHI_REFUSAL`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from spikeseq.errors import ExportError, ParameterError
from spikeseq.graph import ir, targets

__all__ = ["LOIHI_REFUSAL", "QuantFactors", "incoming_synapses", "input_frac_bits", "input_synapses", "quantize",
           "quantize_cells", "quantize_input", "quantize_with_factors", "scale_input_synapses"]


@dataclass
class QuantFactors:
    """What each quantised array was multiplied by before rounding (the derivative a straight-through estimator
    uses): ``weight[synapse]`` broadcasts against the synapse's weight array (``[out, 1]``, ``[C_out, 1, ...]`` for a
    conv: the population's scale times the neuron's input gain ``k``); ``bias[population][synapse]`` is the
    per-neuron factor ``[n]`` of that synapse's (flattened, conv biases repeated over positions) bias in the
    population's bias (``k * s``; CubaLIF: ``k * s / (1 - alpha)``); ``cell[population]``: an
    :class:`~spikeseq.graph.ir.EGRUCell`'s per-row factors ``[3H, 1]`` of its ``weight_ih`` and ``weight_hh``
    (the per-gate ``s_g``; its biases are kept in float32, factor 1)."""

    weight: dict[str, np.ndarray] = field(default_factory=dict)
    bias: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    cell: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def input_frac_bits(amax: float, bits: int) -> int:
    """Fractional bits ``k`` of real-valued inputs sent to Loihi as graded payloads ``round(x * 2**k)``: the largest
    ``k`` in 0..16 keeping ``amax * 2**k <= 2**(bits-1) - 1`` (``amax``: the largest ``|x|``)."""
    if not 2 <= int(bits) <= 24:
        raise ParameterError(f"input_bits must be in 2..24 (Lava graded payloads carry up to 24 bits), got {bits}")
    lim = 2 ** (int(bits) - 1) - 1
    amax = float(amax)
    if not math.isfinite(amax):
        raise ParameterError(f"inputs must be finite to choose their fixed-point format, got max |x| = {amax}")
    if not amax > 0:
        return 0
    k = int(np.clip(np.floor(np.log2(lim / amax)), 0, 16))
    while k > 0 and amax * 2.0**k > lim:    # log2 of a ratio a few ulps below 2**k can round up to k
        k -= 1
    return k


def quantize_input(x, k: int, bits: int):
    """The graded payloads ``clip(round(x * 2**k), -(2**(bits-1) - 1), 2**(bits-1) - 1)`` of real-valued inputs
    (numpy array or torch tensor; values beyond the ``bits`` range saturate)."""
    lim = 2 ** (int(bits) - 1) - 1
    y = (x * 2.0 ** int(k)).round()
    return y.clip(-lim, lim)


def input_synapses(g: ir.Graph) -> list[str]:
    """The nodes an input feeds, directly or through Flatten nodes (the synapses that receive the input payloads)."""
    out, todo = [], [s for i in g.inputs() for s in g.successors(i)]
    while todo:
        n = todo.pop(0)
        if isinstance(g.nodes[n], ir.Flatten):
            todo += g.successors(n)
        elif n not in out:
            out.append(n)
    return out


def scale_input_synapses(g: ir.Graph, k: int) -> ir.Graph:
    """``g`` with the float weights of the synapses fed by an input divided by ``2**k`` (biases unchanged) and the
    inputs declared ``"graded"``: fed ``round(x * 2**k)`` it computes what it computed on ``x``. A graph of
    :class:`~spikeseq.graph.ir.EGRUCell` populations is refused first with :data:`LOIHI_REFUSAL` (the gates, not
    the input format, are what Loihi cannot run)."""
    cells = [k for k, n in g.flat().nodes.items() if isinstance(n, ir.EGRUCell)]
    if cells:
        raise ExportError(LOIHI_REFUSAL.format(name=cells[0]))
    nodes = dict(g.nodes)
    fed = input_synapses(g)
    for s in fed:
        node = nodes[s]
        if node.role != "synapse" or not hasattr(node, "weight"):
            raise ParameterError(f"real-valued inputs on Loihi need the input to feed weight synapses; {s!r} is a "
                                 f"{node.kind}")
        nodes[s] = replace(node, weight=node.weight / 2.0**k)
    for i in g.inputs():
        nodes[i] = replace(nodes[i], payload="graded")
    meta = dict(g.metadata, input_frac_bits=k)
    return ir.Graph(nodes, list(g.edges), dt=g.dt, discretization=g.discretization, metadata=meta)


def incoming_synapses(g: ir.Graph, name: str) -> list[str]:
    """The synapse nodes feeding neuron ``name``; any other kind of predecessor is an error for hardware targets."""
    preds = g.predecessors(name)
    bad = [p for p in preds if g.nodes[p].role != "synapse"]
    if bad:
        raise ExportError(
            f"node {name!r} ({g.nodes[name].kind}) receives directly from {bad} "
            f"({[g.nodes[p].kind for p in bad]}); on a hardware target every neuron input must pass through a "
            "synapse (Linear/Affine/Conv) node"
        )
    return preds


def _gain(g: ir.Graph, node: ir.Node) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Per-neuron (input gain k, decay of the current alpha (0 = none), decay of v beta, extra bias, threshold,
    kind) of a float neuron so that its dynamics read ``u = alpha u + k x; v = beta v + u + bias``."""
    if isinstance(node, ir.LIF):
        beta = g.decay(node.tau)
        gg = 1 - beta
        return gg * node.r, np.zeros_like(beta), beta, gg * node.v_leak, node.v_threshold, "spiking"
    if isinstance(node, ir.IF):
        one = np.ones_like(node.r)
        return g.dt * node.r, np.zeros_like(one), one, np.zeros_like(one), node.v_threshold, "spiking"
    if isinstance(node, ir.LI):
        beta = g.decay(node.tau)
        gg = 1 - beta
        return gg * node.r, np.zeros_like(beta), beta, gg * node.v_leak, np.full_like(beta, np.inf), "readout"
    if isinstance(node, ir.I):
        one = np.ones_like(node.r)
        return g.dt * node.r, np.zeros_like(one), one, np.zeros_like(one), np.full_like(one, np.inf), "readout"
    if isinstance(node, (ir.CubaLIF, ir.CubaLI)):
        alpha, beta = g.decay(node.tau_syn), g.decay(node.tau_mem)
        k = (1 - alpha) * node.w_in * (1 - beta) * node.r
        th = node.v_threshold if isinstance(node, ir.CubaLIF) else np.full_like(beta, np.inf)
        return k, alpha, beta, (1 - beta) * node.v_leak, th, "spiking" if isinstance(node, ir.CubaLIF) else "readout"
    raise ExportError(f"neuron kind {node.kind} cannot be quantised for a hardware target")


def _weights(node: ir.Node) -> np.ndarray:
    if isinstance(node, (ir.Affine, ir.Linear, ir.DelayAffine, ir.Conv2d, ir.Conv1d)):
        return node.weight.astype(np.float64)
    raise ExportError(f"synapse kind {node.kind} is not supported on hardware targets yet (use Linear/Conv)")


def _row_scale(node: ir.Node, k: np.ndarray) -> np.ndarray:
    """W with each output neuron's row multiplied by its gain ``k`` (k has the neuron shape)."""
    w = _weights(node)
    kf = k.reshape(-1)
    if isinstance(node, (ir.Affine, ir.Linear, ir.DelayAffine)):
        return w * kf[:, None]
    # conv: one gain per output channel required
    kc = k.reshape(k.shape[0], -1)
    if not np.allclose(kc, kc[:, :1]):
        raise ExportError(f"{node.kind}: per-neuron input gains differ within a channel; cannot fold into a conv")
    return w * kc[:, 0].reshape(-1, *([1] * (w.ndim - 1)))


def _graded_source(g: ir.Graph, syn: str) -> bool:
    """Whether synapse ``syn`` is fed (through Flatten nodes) by a graded neuron population."""
    todo = list(g.predecessors(syn))
    while todo:
        n = todo.pop()
        node = g.nodes[n]
        if isinstance(node, ir.Flatten):
            todo += g.predecessors(n)
        elif node.role == "neuron" and getattr(node, "graded", False):
            return True
    return False


def _row_factor(node: ir.Node, k: np.ndarray) -> np.ndarray:
    """The gains ``k`` :func:`_row_scale` multiplied the weight rows by, shaped to broadcast against the weight."""
    w = node.weight
    if isinstance(node, (ir.Affine, ir.Linear, ir.DelayAffine)):
        return k.reshape(-1, 1).astype(np.float64)
    kc = k.reshape(k.shape[0], -1)[:, 0]
    return kc.reshape(-1, *([1] * (w.ndim - 1))).astype(np.float64)


def _bias(node: ir.Node) -> np.ndarray | None:
    b = getattr(node, "bias", None)
    if b is None:
        return None
    if isinstance(node, (ir.Conv2d, ir.Conv1d)):
        return np.repeat(b.astype(np.float64), math.prod(node.out_shape[1:]))
    return b.astype(np.float64)


def _with_weight(node: ir.Node, w: np.ndarray) -> ir.Node:
    w = w.astype(np.float32)
    if isinstance(node, (ir.Affine, ir.Linear)):
        return ir.Linear(w)
    if isinstance(node, ir.DelayAffine):
        return ir.DelayAffine(w, node.delay, None)
    if isinstance(node, ir.Conv2d):
        return ir.Conv2d(node.input_shape, w, np.zeros(w.shape[0], np.float32), node.stride, node.padding,
                         node.dilation, node.groups)
    if isinstance(node, ir.Conv1d):
        return ir.Conv1d(node.input_shape, w, np.zeros(w.shape[0], np.float32), node.stride, node.padding,
                         node.dilation, node.groups)
    raise ExportError(f"synapse kind {node.kind} is not supported on hardware targets yet")


def quantize(graph: ir.Graph, target: str, *, weight_exp: int = 0, reset_policy: str = "strict",
             payload_frac_bits: int | None = None) -> ir.Graph:
    """Quantise ``graph`` for ``target`` (``"loihi"`` or ``"spinnaker2"``); see the module docstring.

    ``payload_frac_bits`` (SpiNNaker2): graded populations send int8 fixed-point payloads
    ``clip(round(v' / w_scale * 2**f), -127, 127)`` and the synapses they feed get their float weights divided by
    ``2**f`` (``None``: float32 payloads ``v' / w_scale``)."""
    return quantize_with_factors(graph, target, weight_exp=weight_exp, reset_policy=reset_policy,
                                 payload_frac_bits=payload_frac_bits)[0]


def quantize_with_factors(graph: ir.Graph, target: str, *, weight_exp: int = 0, reset_policy: str = "strict",
                          payload_frac_bits: int | None = None) -> tuple[ir.Graph, QuantFactors]:
    """:func:`quantize` and the :class:`QuantFactors` of its rounding (the one computation both use)."""
    factors = QuantFactors()
    if graph.metadata.get("numerics") == target:
        return graph, factors
    if graph.metadata.get("numerics") not in (None, "float"):
        raise ParameterError(f"graph is already quantised for {graph.metadata['numerics']!r}, not {target!r}")
    if target not in ("loihi", "spinnaker2"):
        raise ParameterError(f"quantize target must be 'loihi' or 'spinnaker2', got {target!r}")
    if reset_policy not in ("strict", "zero"):
        raise ParameterError(f"reset_policy must be 'strict' or 'zero', got {reset_policy!r}")
    if payload_frac_bits is not None and (target != "spinnaker2" or not 0 <= int(payload_frac_bits) <= 16):
        raise ParameterError(f"payload_frac_bits is a SpiNNaker2 option in 0..16, got {payload_frac_bits!r} for "
                             f"{target}")
    g = graph.flat()
    if any(isinstance(n, ir.EGRUCell) for n in g.nodes.values()):
        return quantize_cells(g, target, payload_frac_bits=payload_frac_bits, factors=factors), factors
    lim = targets.limits(target)
    nodes: dict[str, ir.Node] = dict(g.nodes)
    div = {}   # synapse fed by a graded population with fixed-point payloads -> 2**f
    if payload_frac_bits is not None:
        for name, node in g.nodes.items():
            if node.role == "synapse" and _graded_source(g, name):
                div[name] = 2.0 ** int(payload_frac_bits)
    quant: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for name, node in g.nodes.items():
        if node.role == "synapse":
            users = [s for s in g.successors(name)]
            bad = [u for u in users if g.nodes[u].role != "neuron"]
            if bad:
                raise ExportError(
                    f"synapse node {name!r} ({node.kind}) feeds {bad} ({[g.nodes[u].kind for u in bad]}); on "
                    f"{target} a synapse must feed neuron populations only (no back-to-back weight layers)"
                )
            if len(users) > 1:
                raise ExportError(f"synapse node {name!r} feeds {len(users)} populations {users}; {target} needs "
                                  "one population per synapse node (duplicate the weights)")
        if node.role == "neuron":
            if isinstance(node, (ir.Threshold, ir.LMUMemory, ir.LoihiCUBA, ir.S2LIF)):
                raise ExportError(f"node {name!r} of kind {node.kind} is not supported on {target}")
            graded = bool(getattr(node, "graded", False))
            if graded and target == "loihi":
                raise ExportError(f"node {name!r}: graded spikes are not supported by the {target} quantiser yet "
                                  "(spikeseq's Loihi CUBA export sends binary spikes; SpiNNaker2 takes graded ones)")
            reset = getattr(node, "reset", "zero")
            vres = getattr(node, "v_reset", None)
            k, alpha, beta, leak_bias, theta, mode = _gain(g, node)
            syn = incoming_synapses(g, name)
            if not syn:
                raise ExportError(f"neuron {name!r} has no incoming synapse")
            ws = [_row_scale(g.nodes[s], k) / div.get(s, 1.0) for s in syn]
            bias = leak_bias.reshape(-1).copy()
            bias_gain = {}   # synapse -> d(population bias)/d(synapse bias), before the population scale
            for s in syn:
                b = _bias(g.nodes[s])
                if b is not None:
                    bias = bias + k.reshape(-1) * b
                    bias_gain[s] = k.reshape(-1).astype(np.float64)
            approx = []
            if isinstance(node, (ir.CubaLIF, ir.CubaLI)) and np.any(bias != leak_bias.reshape(-1)):
                a = alpha.reshape(-1)
                bias = leak_bias.reshape(-1) + (bias - leak_bias.reshape(-1)) / (1 - a)
                bias_gain = {sn: f / (1 - a) for sn, f in bias_gain.items()}
                approx.append("synaptic bias moved from the current to the membrane as b/(1-alpha) "
                              "(exact in steady state only)")
            bad = [s for s, w in zip(syn, ws) if not np.isfinite(w).all()]
            if bad or not np.isfinite(bias).all():
                what = f"the weights of {bad} hold" if bad else "its bias holds"
                raise ExportError(f"node {name!r} ({node.kind}): {what} NaN or Inf; {target} needs finite "
                                  "parameters (the float training diverged or a parameter was set to NaN/Inf)")
            wmax = max(float(np.abs(w).max()) for w in ws)
            if wmax == 0:
                wmax = 1.0
            th_fin = theta[np.isfinite(theta)]
            info = {"kind": node.kind, "synapses": syn, "approximations": approx, "reset": reset}
            if target == "loihi":
                if reset in ("subtract", "none") and mode == "spiking":
                    if reset_policy == "strict":
                        raise ExportError(
                            f"node {name!r} ({node.kind}) uses reset={reset!r} but Loihi CUBA resets v to 0; "
                            "train with reset='zero' or pass reset_policy='zero' to accept the change"
                        )
                    approx.append(f"reset {reset!r} replaced by Loihi's reset to zero")
                if vres is not None and np.any(vres != 0):
                    raise ExportError(f"node {name!r}: Loihi resets v to 0, but v_reset is not zero")
                e = int(weight_exp)
                if not 0 <= e <= lim.weight_exp_max:
                    raise ParameterError(f"weight_exp must be in 0..{lim.weight_exp_max}, got {e}")
                s = lim.weight_max * 2**e / wmax
                if th_fin.size and float(th_fin.max()) * s > lim.vth_mant_max:
                    s = lim.vth_mant_max / float(th_fin.max())
                if np.abs(bias).max(initial=0) * s > lim.bias_mant_max:
                    s = min(s, lim.bias_mant_max / float(np.abs(bias).max()))
                step = 2 ** (e + 1)
                qws = [np.round(w * s / step) * step for w in ws]
                for sname, qw in zip(syn, qws):
                    mant = qw / 2**e
                    if mant.min(initial=0) < lim.weight_min or mant.max(initial=0) > lim.weight_max:
                        raise ExportError(f"synapse {sname!r}: weight mantissa range [{mant.min()}, {mant.max()}] "
                                          f"exceeds [{lim.weight_min}, {lim.weight_max}]")
                    nodes[sname] = _with_weight(g.nodes[sname], qw)
                    factors.weight[sname] = _row_factor(g.nodes[sname], k) * s
                    d = getattr(g.nodes[sname], "delay", None)
                    if isinstance(g.nodes[sname], ir.DelayAffine) and d.max(initial=0) > lim.max_delay:
                        raise ExportError(f"synapse {sname!r}: delay {int(d.max())} steps exceeds the Loihi "
                                          f"limit of {lim.max_delay}")
                    owner[sname] = name
                i_decay = np.where(alpha > 0, np.round((1 - alpha) * lim.decay_max), lim.decay_max)
                v_decay = np.round((1 - beta) * lim.decay_max)
                vth = np.where(np.isfinite(theta), np.round(np.where(np.isfinite(theta), theta, 0) * s),
                               lim.vth_mant_max)
                qb = np.round(bias * s).reshape(k.shape)
                if th_fin.size and (vth[np.isfinite(theta)] < 0).any():
                    raise ExportError(f"node {name!r}: negative threshold is not representable on Loihi")
                nodes[name] = ir.LoihiCUBA(i_decay=i_decay, v_decay=v_decay, vth=vth, bias=qb, bias_exp=6,
                                           scale=float(s), readout=(mode == "readout"))
                info.update(scale=float(s), weight_exp=e, vth_max=int(vth.max()), bias_max=int(np.abs(qb).max()))
            else:
                if reset == "none" and mode == "spiking":
                    raise ExportError(f"node {name!r} ({node.kind}) uses reset='none'; py-spinnaker2 LIF models "
                                      "reset by subtraction or to v_reset")
                has_delay = any(isinstance(g.nodes[x], ir.DelayAffine) for x in syn)
                wlim = lim.weight_max_with_delay if has_delay else lim.weight_max_int8
                s = wlim / wmax
                for sname, w in zip(syn, ws):
                    nodes[sname] = _with_weight(g.nodes[sname], np.round(w * s))
                    factors.weight[sname] = _row_factor(g.nodes[sname], k) * s / div.get(sname, 1.0)
                    d = getattr(g.nodes[sname], "delay", None)
                    if isinstance(g.nodes[sname], ir.DelayAffine) and d.max(initial=0) > lim.max_delay:
                        raise ExportError(f"synapse {sname!r}: delay {int(d.max())} steps exceeds the SpiNNaker2 "
                                          f"'lif' model limit of {lim.max_delay}")
                    owner[sname] = name
                thr = np.where(np.isfinite(theta), theta * s, np.inf)
                nodes[name] = ir.S2LIF(alpha_decay=beta, threshold=thr, i_offset=(bias * s).reshape(k.shape),
                                       exc_decay=alpha if np.any(alpha > 0) else None,
                                       v_reset=None if vres is None else vres * s,
                                       reset=reset, w_scale=float(s), readout=(mode == "readout"),
                                       graded=graded and mode != "readout",
                                       payload_frac_bits=payload_frac_bits if graded else None)
                info.update(scale=float(s), model=("lif" if has_delay else
                                                   ("lif_curr_exp_no_delay" if np.any(alpha > 0)
                                                    else "lif_no_delay")))
            quant[name] = info
            factors.bias[name] = {sn: f * info["scale"] for sn, f in bias_gain.items()}
    for name, node in g.nodes.items():
        if node.role == "synapse" and name not in owner:
            raise ExportError(f"synapse node {name!r} feeds no neuron population; {target} cannot host it")
        if node.role not in ("synapse", "neuron", "io"):
            if isinstance(node, ir.Flatten):
                continue
            raise ExportError(f"node {name!r} of kind {node.kind} is not supported on {target}")
    meta = dict(g.metadata, numerics=target, quant=quant)
    return ir.Graph(nodes, list(g.edges), dt=g.dt, discretization=g.discretization, metadata=meta), factors


LOIHI_REFUSAL = (
    "node {name!r} (EGRUCell) does not map to Loihi-style cores: gate n = tanh(W_n x + b_in + r * (R_n y[t-1] + "
    "b_hn)) multiplies the reset gate r by the recurrent input (a product of two state-dependent values), and "
    "c~ = z * c + (1 - z) * n decays the state by the update gate z (a state-dependent decay); the Loihi CUBA "
    "neuron of lava-dl netx has a fixed decay and no multiplicative gate (Loihi 2 graded spikes could carry the "
    "payload y = e * c~, the gates cannot run). Export it with target 'spinnaker2' (a custom PE program)"
)


#: the largest ``payload_frac_bits`` of an EGRUCell: its payload ``y = e * c~`` lies in ``(theta, 1)``, so the int8
#: ``round(y * 2**f)`` fits ``|q| <= 127`` up to ``f = 7``.
CELL_MAX_FRAC_BITS = 7


def _gate_scales(w: np.ndarray, lim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-gate int8 weights ``round(W_g * s_g)`` and the scales ``s_g = lim / max|W_g|`` (1 for a zero gate)."""
    h = w.shape[0] // 3
    s = np.array([lim / m if (m := float(np.abs(w[k * h:(k + 1) * h]).max(initial=0))) > 0 else 1.0
                  for k in range(3)])
    return np.round(w * np.repeat(s, h)[:, None]), s


def quantize_cells(g: ir.Graph, target: str, *, payload_frac_bits: int | None = None,
                   factors: QuantFactors | None = None) -> ir.Graph:
    """Quantise a graph of :class:`~spikeseq.graph.ir.EGRUCell` populations (fed by inputs or other cells) and
    ``Affine``/``Linear`` readouts into outputs for SpiNNaker2 (see the module docstring); Loihi: refused with
    :data:`LOIHI_REFUSAL`. ``factors``: filled with the rounding factors (:class:`QuantFactors`)."""
    factors = factors if factors is not None else QuantFactors()
    for name, node in g.nodes.items():
        if isinstance(node, ir.EGRUCell) and target == "loihi":
            raise ExportError(LOIHI_REFUSAL.format(name=name))
    lim = targets.limits(target).weight_max_int8
    f = None if payload_frac_bits is None else int(payload_frac_bits)
    if f is not None and not 0 <= f <= CELL_MAX_FRAC_BITS:
        raise ExportError(f"EGRUCell payloads are int8 round(y * 2**f) with 0 < y = e * c~ < 1: payload_frac_bits "
                          f"must be in 0..{CELL_MAX_FRAC_BITS} (got {f}; from f = 8 on every payload >= "
                          f"{127 / 2 ** 8:.3f} saturates at 127), or None for float32 payloads")
    pay = 1.0 if f is None else 2.0**f
    nodes: dict[str, ir.Node] = dict(g.nodes)
    quant: dict[str, dict] = {}
    for name, node in g.nodes.items():
        preds = g.predecessors(name)
        if isinstance(node, ir.EGRUCell):
            bad = [p for p in preds if not isinstance(g.nodes[p], (ir.Input, ir.Flatten, ir.EGRUCell))]
            if bad:
                raise ExportError(f"EGRUCell {name!r} receives from {bad}: a cell holds its own input weights, so it "
                                  "must be fed by graph inputs or other cells directly (no synapse node before it)")
            src = pay if any(isinstance(g.nodes[p], ir.EGRUCell) for p in preds) else 1.0
            wi, si = _gate_scales(node.weight_ih, lim)
            wh, sh = _gate_scales(node.weight_hh, lim)
            nodes[name] = ir.EGRUCell(weight_ih=wi, weight_hh=wh, bias_ih=node.bias_ih, bias_hh=node.bias_hh,
                                      threshold=node.threshold, ih_scale=si * src, hh_scale=sh * pay,
                                      payload_frac_bits=f)
            factors.cell[name] = {"weight_ih": np.repeat(si, node.hidden)[:, None],
                                  "weight_hh": np.repeat(sh, node.hidden)[:, None]}
            quant[name] = {"kind": node.kind, "model": "custom_egru", "ih_scale": si.tolist(),
                           "hh_scale": sh.tolist(), "payload_frac_bits": f, "approximations": []}
        elif node.role == "synapse":
            if not isinstance(node, (ir.Affine, ir.Linear)) or not all(
                    isinstance(g.nodes[p], ir.EGRUCell) for p in preds) or not all(
                    isinstance(g.nodes[u], ir.Output) for u in g.successors(name)):
                raise ExportError(f"synapse {name!r} ({node.kind}): in a graph of EGRUCell populations only an "
                                  "Affine/Linear readout from cells into an output is supported on "
                                  f"{target}")
            w = node.weight.astype(np.float64)
            s = lim / m if (m := float(np.abs(w).max(initial=0))) > 0 else 1.0
            wq = (np.round(w * s) / (s * pay)).astype(np.float32)
            factors.weight[name] = np.full((w.shape[0], 1), 1.0 / pay)     # wq = round(W s) / (s 2**f) ~ W / 2**f
            nodes[name] = ir.Affine(wq, node.bias) if isinstance(node, ir.Affine) else ir.Linear(wq)
            quant[name] = {"kind": node.kind, "model": "readout", "scale": s, "payload_frac_bits": f,
                           "approximations": []}
        elif node.role == "neuron":
            raise ExportError(f"node {name!r} of kind {node.kind} next to EGRUCell populations is not supported "
                              f"on {target} yet")
    meta = dict(g.metadata, numerics=target, quant=quant)
    return ir.Graph(nodes, list(g.edges), dt=g.dt, discretization=g.discretization, metadata=meta)
