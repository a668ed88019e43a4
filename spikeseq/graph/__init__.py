"""spikeseq.graph: the event-graph IR, tracing ``nn`` models into it, quantisation to a target, the event-driven
reference interpreter (export verification is :mod:`spikeseq.verify`).

    g = trace(model, dt=1e-3)                       # IR (float), dt recorded
    r = simulate(g, x, numerics="float")            # or "loihi" (bit-exact) / "spinnaker2"
    q = quantize(g, "loihi")                        # integer IR
"""

from spikeseq.graph import ir
from spikeseq.graph.ir import Graph
from spikeseq.graph.quantize import quantize
from spikeseq.graph.simulate import SimResult, simulate
from spikeseq.graph.trace import (
    GraphBuilder,
    affine_node,
    fold_batchnorm,
    linear_node,
    neuron_node,
    register_lowering,
    trace,
    unregister_lowering,
)

__all__ = ["Graph", "GraphBuilder", "SimResult", "affine_node", "fold_batchnorm", "ir",
           "linear_node", "neuron_node", "quantize", "register_lowering", "simulate", "trace", "unregister_lowering"]

