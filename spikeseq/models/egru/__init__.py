"""The EGRU family: the event-based GRU (Subramoney et al., ICLR 2023) as language models and classifiers, with
GRU / LSTM baselines trained the same way and magnitude pruning to the SpiNNaker 2 paper's 95%.

Models: ``egru_lm``, ``gru_lm``, ``lstm_lm`` (task ``language_modelling``), ``egru_classifier``,
``rnn_classifier`` (task ``classification``); modules in :mod:`.modules`, pruning in :mod:`.prune`.
The cell itself is a building block: :mod:`spikeseq.functional.egru`, :class:`spikeseq.nn.EGRU`. Export:
:mod:`.lower` writes each layer as an :class:`~spikeseq.graph.ir.EGRUCell` (a SpiNNaker2 custom PE program; Loihi
refuses the gates), :mod:`.energy` the energy per token on SpiNNaker2 against a GPU, and
``examples/egru/spinnaker2_export.py`` the verified export record.
"""

from spikeseq.models.egru.count import COUNTERS
from spikeseq.models.egru.lower import LOWERINGS
from spikeseq.models.egru.modules import (
    EGRULM,
    RNNLM,
    EGRUClassifier,
    RNNClassifier,
    build_egru_classifier,
    build_egru_lm,
    build_gru_lm,
    build_lstm_lm,
    build_rnn_classifier,
)
from spikeseq.models.egru.prune import Pruner, PruneSchedule, magnitude_mask, to_csr
from spikeseq.models.registry import Family, register_family

FAMILY = register_family(Family(
    name="egru",
    tasks=("language_modelling", "classification", "continual"),
    builders={"egru_lm": build_egru_lm, "gru_lm": build_gru_lm, "lstm_lm": build_lstm_lm,
              "egru_classifier": build_egru_classifier, "rnn_classifier": build_rnn_classifier},
    lowerings=LOWERINGS,
    counters=COUNTERS,
    model_tasks={"egru_lm": ("language_modelling",), "gru_lm": ("language_modelling",),
                 "lstm_lm": ("language_modelling",), "egru_classifier": ("classification", "continual"),
                 "rnn_classifier": ("classification",)},
    description="event-based GRU (EGRU): activity-sparse recurrent language models and classifiers",
))

__all__ = ["EGRULM", "FAMILY", "RNNLM", "EGRUClassifier", "PruneSchedule", "Pruner", "RNNClassifier",
           "magnitude_mask", "to_csr"]
