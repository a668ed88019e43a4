"""Event-graph lowering of SpikeGPT / RWKV-4: a refusal that names what cannot be mapped.

The event-graph IR (and with it the NIR, Loihi-style and SpiNNaker2-style exports) has no node for the WKV
operator (per channel and token: 4 exponentials, 1 division and a running maximum over a real-valued state, see
:mod:`spikeseq.functional.wkv`) or for LayerNorm (a mean and a variance over the channels of every token, then a
division by the standard deviation). Neither is a spike operation: SpikeGPT's spikes are only the embedding and the
two branch outputs per block (specs/models.md §1). So:

- NIR and Loihi-style: refused; NIR has no WKV or LayerNorm primitive and Loihi-style cores run LIF dynamics with
  integer synapses, no exponentials, divisions or cross-channel statistics;
- SpiNNaker2-style: refused too, with the reason: its PEs are programmable (ARM cores with exp/log accelerators),
  so WKV and LayerNorm could run there as software at the per-token cost counted by ``spikeseq profile`` (WKV:
  4 exp + 1 div + 6 mult + 9 add per channel; LayerNorm: 2 passes over C), but spikeseq's SpiNNaker2 writer maps
  event-graph nodes only and has no software-PE node to carry them.
"""

from __future__ import annotations

from spikeseq.errors import ExportError

REFUSAL = ("SpikeGPT / RWKV-4 cannot be exported to an event graph (NIR, Loihi-style or SpiNNaker2-style): its WKV "
           "operator (4 exponentials, 1 division and a running maximum per channel and token on a real-valued "
           "state) and its LayerNorm (mean and variance over the channels of each token) are not spike operations "
           "and have no event-graph node; on SpiNNaker2-style hardware they would need software PEs (cost per "
           "token in `spikeseq profile`), which the SpiNNaker2 writer does not map. Run the model in spikeseq.")


def lower_spikegpt(module, builder, prev, shape, prefix):
    """Refuse: raises :class:`~spikeseq.errors.ExportError` naming WKV and LayerNorm (see module docstring)."""
    raise ExportError(REFUSAL)
