"""IR lowering of :class:`~spikeseq.models.delay_snn.modules.DelaySNN` (the wiring around its building blocks)."""

from __future__ import annotations

from torch import nn

from spikeseq.graph import GraphBuilder, affine_node
from spikeseq.models.delay_snn.modules import DelaySNN, DenseSynapse


def lower_delay_snn(m: DelaySNN, b: GraphBuilder, prev: list[str], shape, prefix: str):
    """Eval mode: (synapse -> BatchNorm (folded) -> LIF) x n, synapse -> LI. The synapses (``DelayLinear`` or
    :class:`DenseSynapse`), BatchNorms and neurons are lowered by their own lowerings; dropout is the identity.
    Frames (a per-step input shape of more than one dimension) are flattened first, as :meth:`DelaySNN.forward`
    does."""
    if len(shape) > 1:
        prev, shape = b.lower(nn.Flatten(), prev, shape, prefix)
    for k, (syn, norm, lif) in enumerate(zip(m.synapses, m.norms, m.neurons)):
        prev, shape = b.lower(syn, prev, shape, f"{prefix}syn{k}_", path=b.child_path(f"synapses.{k}"))
        prev, shape = b.lower(norm, prev, shape, f"{prefix}norm{k}_", path=b.child_path(f"norms.{k}"))
        prev, shape = b.lower(lif, prev, shape, f"{prefix}lif{k}_", path=b.child_path(f"neurons.{k}"))
    n = len(m.neurons)
    prev, shape = b.lower(m.synapses[n], prev, shape, f"{prefix}syn{n}_", path=b.child_path(f"synapses.{n}"))
    return b.lower(m.readout, prev, shape, f"{prefix}readout_", path=b.child_path("readout"))


def lower_dense(m: DenseSynapse, b: GraphBuilder, prev: list[str], shape, prefix: str):
    """``y[t] = W x[t] (+ b)``: an ``Affine`` (or ``Linear``) node."""
    node = affine_node(m)
    return [b.add(f"{prefix}{node.kind.lower()}", node, prev)], node.out_shape


LOWERINGS = {DelaySNN: lower_delay_snn, DenseSynapse: lower_dense}
