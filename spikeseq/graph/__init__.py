"""spikeseq.graph: the event-graph IR, tracing ``nn`` models into it, quantisation to a target, the event-driven
reference interpreter and export verification.

    g = trace(model, dt=1e-3)                       # IR (float), dt recorded
    r = simulate(g, x, numerics="float")            # or "loihi" (bit-exact) / "spinnaker2"
    q = quantize(g, "loihi")                        # integer IR
    res = export_and_verify(model, "loihi", "net.net", x, labels, dt=1e-3)
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

__all__ = ["Graph", "GraphBuilder", "SimResult", "affine_node", "export_and_verify", "fold_batchnorm", "ir",
           "linear_node", "neuron_node", "quantize", "register_lowering", "simulate", "trace", "unregister_lowering"]


def __getattr__(name):
    if name == "export_and_verify":
        from spikeseq.graph.verify import export_and_verify

        return export_and_verify
    raise AttributeError(name)
