"""IR lowering of the EGRU models: the cell as a programmable-PE population, or a refusal naming the gate.

The EGRU cell cannot be written with the IR's LIF-family kinds (LI/LIF/CubaLIF neurons, affine synapses): its
gates need

- ``r, z = sigmoid(.)`` and ``n = tanh(W_n x + b_in + r * (R_n y[t-1] + b_hn))``: non-linear functions of the
  synaptic input and a **product of two state-dependent quantities** (``r`` times the recurrent candidate input);
- ``c~ = z * c + (1 - z) * n``: a state decay that is itself a state (``z``), where every LIF-family kind has a
  fixed decay.

So the lowering writes each layer as one :class:`~spikeseq.graph.ir.EGRUCell`, a population that a SpiNNaker2 PE
runs as a custom program (as the SpiNNaker 2 EGRU did: Nazeer et al., arXiv 2312.09084, graded events and CSR
weights per PE):

- :class:`EGRULM`: the input is the one-hot token (``[vocab]`` binary events); the embedding is folded into the
  first cell's input weights (``W_ih @ E^T``, ``[3H, vocab]``: a token selects one column, what an embedding
  lookup is), cells are chained by graded events, and the decoder is an :class:`~spikeseq.graph.ir.Affine` into
  the output (the logits). Dropout is the identity (evaluation).
- :class:`EGRUClassifier`: the flattened input feeds the first cell; the readout is an ``Affine`` at every step.

Refused by name (:class:`~spikeseq.errors.ExportError`): zoneout > 0 (its evaluation-time state mixing
``c = p c[t-1] + (1-p) c`` is not part of the cell program), and an EGRU built with ``batch_first`` (the model
would recur over the batch axis of its time-first input; the graph steps over time). Loihi-style export refuses
the cell in :mod:`spikeseq.graph.quantize` (:data:`LOIHI_REFUSAL` there names the gates): the CUBA neuron of
lava-dl netx has no multiplicative gate and no state-dependent decay, although Loihi 2 graded spikes could carry
``y``.
"""

from __future__ import annotations

import numpy as np
import torch

from spikeseq.errors import ExportError
from spikeseq.graph import GraphBuilder, ir
from spikeseq.graph.trace import affine_node, bind, bind_spiking
from spikeseq.models.egru.modules import EGRULM, EGRUClassifier


def _np64(t: torch.Tensor | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape) if t is None else t.detach().cpu().to(torch.float64).numpy()


def _cells(m: EGRULM | EGRUClassifier, b: GraphBuilder, prev: list[str], prefix: str,
           embed: torch.Tensor | None) -> list[str]:
    rnn = m.rnn
    if float(rnn.zoneout) > 0:
        raise ExportError(f"{prefix or type(m).__name__}: zoneout={rnn.zoneout} mixes the state in evaluation "
                          "(c = p c[t-1] + (1-p) c); the EGRUCell program has no zoneout: train with zoneout=0")
    if getattr(rnn, "batch_first", False):
        raise ExportError(f"{prefix or type(m).__name__}: its EGRU has batch_first=True, so the model runs the "
                          "recurrence over the second axis of its [T, B, ...] input (time and batch swapped) while "
                          "the graph steps over the first: build the EGRU with batch_first=False (the models pass "
                          "time-first tensors)")
    h = rnn.hidden_size
    for layer in range(rnn.num_layers):
        p = rnn.layer_params(layer)
        w_t, w = p["weight_ih"], _np64(p["weight_ih"], ())
        if layer == 0 and embed is not None:   # the embedding folded into the input weights (a token picks a column)
            w_t, w = w_t @ embed.t(), w @ _np64(embed, ()).T     # the array in float64, the binding in torch
        node = ir.EGRUCell(weight_ih=w, weight_hh=_np64(p["weight_hh"], ()),
                           bias_ih=_np64(p["bias_ih"], (3 * h,)), bias_hh=_np64(p["bias_hh"], (3 * h,)),
                           threshold=_np64(p["threshold"], ()))
        bind(node, weight_ih=w_t, weight_hh=p["weight_hh"], bias_ih=p["bias_ih"], bias_hh=p["bias_hh"])
        bind_spiking(node, rnn)   # the events' pseudo-derivative, for target mode
        prev = [b.add(f"{prefix}rnn_l{layer}", node, prev)]   # graded: compared through the logits, not hooked
    return prev


def lower_egru(m: EGRULM | EGRUClassifier, b: GraphBuilder, prev: list[str], shape, prefix: str):
    """Lower an EGRU model: :class:`~spikeseq.graph.ir.EGRUCell` populations plus an ``Affine`` readout (see the
    module docstring); ``shape`` must be the model's per-step input (one-hot ``[vocab]`` for the LM)."""
    if isinstance(m, EGRULM):
        if tuple(shape) != (m.vocab,):
            raise ExportError(f"an EGRU language model is traced on one-hot tokens: input_shape=({m.vocab},), got "
                              f"{tuple(shape)}")
        prev = _cells(m, b, prev, prefix, m.embed.weight)
        out = b.add(f"{prefix}decoder", affine_node(m.decoder), prev)
        return [out], (m.vocab,)
    if int(np.prod(shape)) != m.input_size:
        raise ExportError(f"EGRUClassifier expects {m.input_size} input features per step, got shape {tuple(shape)}")
    if len(shape) > 1:
        prev = [b.add(f"{prefix}flatten", ir.Flatten(tuple(shape)), prev)]
    prev = _cells(m, b, prev, prefix, None)
    out = b.add(f"{prefix}out", affine_node(m.out), prev)
    return [out], (m.out.out_features,)


def one_hot(tokens: np.ndarray, vocab: int) -> np.ndarray:
    """Token ids ``[T, B]`` as the graph input of the lowered language model: one-hot ``[T, B, vocab]`` events."""
    ids = np.asarray(tokens, np.int64)
    out = np.zeros((*ids.shape, vocab))
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


LOWERINGS = {EGRULM: lower_egru, EGRUClassifier: lower_egru}
