"""spikeseq.verify: does the exported graph still compute what the model computed?

Sits above :mod:`spikeseq.graph` and :mod:`spikeseq.export` (it sees torch modules, the IR and the exporters):

    res = export_and_verify(model, "loihi", "net.net", x, labels, dt=1e-3)   # trace, write, simulate, compare
    steps = loihi_error_budget(model, x, labels, dt=1e-3)                     # where the Loihi accuracy goes
"""

from spikeseq.verify.core import (
    TARGETS,
    VerifyResult,
    export_and_verify,
    fixed_point_input,
    output_transform,
    predictions,
    spike_event_metrics,
)
from spikeseq.verify.error_budget import BudgetStep, loihi_error_budget, to_markdown, zero_reset

__all__ = ["TARGETS", "BudgetStep", "VerifyResult", "export_and_verify", "fixed_point_input",
           "loihi_error_budget", "output_transform", "predictions", "spike_event_metrics", "to_markdown", "zero_reset"]
