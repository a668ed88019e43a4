"""Op counters of the delay family's own module types (registered through the family, see ``__init__.py``)."""

from __future__ import annotations

from spikeseq.models.delay_snn.modules import DenseSynapse
from spikeseq.profile import CallContext, CounterSpec, add_counts, bias_counts, matmul_counts


def count_dense_time_first(m: DenseSynapse, args, kwargs, out, ctx: CallContext) -> dict:
    """A time-first ``F.linear`` ``y[t] = W x[t] (+ b)``."""
    xs = args[0]
    res = matmul_counts(xs, m.weight, ctx, nb=False)
    return add_counts(res, bias_counts(m.bias, xs[0].numel() // m.weight.shape[1], xs.shape[0]))


COUNTERS = {DenseSynapse: CounterSpec(count_dense_time_first, "connection", time_first=True)}
