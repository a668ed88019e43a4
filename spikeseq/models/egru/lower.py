"""IR lowering of the EGRU models: a refusal that names what does not map.

The IR (:mod:`spikeseq.graph.ir`) carries graded events (``payload="graded"``) through its synapse nodes, but it
has no node kind for the EGRU cell, and the cell cannot be written with the kinds it has (LI/LIF/CubaLIF neurons,
affine synapses): the gates need

- ``r, z = sigmoid(.)`` and ``n = tanh(W_n x + b_in + r * (R_n y[t-1] + b_hn))``: non-linear functions of the
  synaptic input and a **product of two state-dependent quantities** (``r`` times the recurrent candidate input);
- ``c~ = z * c + (1 - z) * n``: a state decay that is itself a state (``z``), where every LIF-family kind has a
  fixed decay.

So both export targets refuse the model with an :class:`~spikeseq.errors.ExportError` naming the gate:

- SpiNNaker2-style: py-spinnaker2's neuron models (``lif``, ``lif_curr_exp``, ``lif_conv2d``, ... in
  specs/targets.md §3.2) have no GRU gate; the SpiNNaker 2 EGRU (Nazeer et al., arXiv 2312.09084) ran a custom
  ARM program per PE, which this exporter does not generate. The pruned weights are available in CSR
  (:func:`spikeseq.models.egru.to_csr`) and the op counts per gate from :mod:`.count`.
- Loihi-style: Loihi 2 graded spikes (24-bit payload) could carry ``y = e * c~``, but the CUBA neuron of lava-dl
  netx has no multiplicative gate (``r * (R_n y + b_hn)``) nor a state-dependent decay (``z``).
"""

from __future__ import annotations

from spikeseq.errors import ExportError
from spikeseq.graph import GraphBuilder
from spikeseq.models.egru.modules import EGRULM, EGRUClassifier

REFUSAL = (
    "{prefix}: the EGRU cell does not map to the IR's node kinds (and hence not to the SpiNNaker2-style or "
    "Loihi-style targets): gate n = tanh(W_n x + b_in + r * (R_n y[t-1] + b_hn)) multiplies the reset gate r by "
    "the recurrent input (a product of two state-dependent values), and c~ = z * c + (1 - z) * n decays the state by "
    "the gate z (a state-dependent decay); py-spinnaker2 neuron models (lif, lif_curr_exp, ...) and the Loihi CUBA "
    "neuron have neither. Graded events (y = e * c~) and CSR weights themselves would map: use "
    "spikeseq.models.egru.to_csr for the pruned weights and spikeseq.profile.count for the per-gate op counts"
)


def lower_egru(m: EGRULM | EGRUClassifier, b: GraphBuilder, prev: list[str], shape, prefix: str):
    """Refuse with an :class:`~spikeseq.errors.ExportError` naming the gates that have no IR kind."""
    raise ExportError(REFUSAL.format(prefix=prefix.rstrip(".") or type(m).__name__))


LOWERINGS = {EGRULM: lower_egru, EGRUClassifier: lower_egru}
