"""Pure reference maths: ``*_step`` (one step, ``[B, ...]``) and ``*_scan`` (``[T, B, ...]``) functions.

Every fast kernel in :mod:`spikeseq.kernels` is tested against these.
"""

from spikeseq.functional.alif import ALIFState, alif_scan, alif_step
from spikeseq.functional.cuba import CubaLIFState, cuba_lif_scan, cuba_lif_step
from spikeseq.functional.discretize import decay_from_tau, tau_from_decay
from spikeseq.functional.egru import EGRUOutput, EGRUState, egru_scan, egru_step
from spikeseq.functional.encode import delta_encode, latency_encode, rate_encode
from spikeseq.functional.li import LIState, li_scan, li_step
from spikeseq.functional.lif import LIFState, if_scan, if_step, lif_scan, lif_step
from spikeseq.functional.wkv import WKVState, initial_wkv_state, wkv_chunked, wkv_scan, wkv_step

__all__ = [
    "ALIFState", "CubaLIFState", "EGRUOutput", "EGRUState", "LIFState", "LIState", "WKVState",
    "alif_scan", "alif_step", "cuba_lif_scan", "cuba_lif_step", "decay_from_tau", "delta_encode",
    "egru_scan", "egru_step",
    "if_scan", "if_step", "latency_encode", "li_scan", "li_step", "lif_scan", "lif_step", "rate_encode",
    "initial_wkv_state", "tau_from_decay", "wkv_chunked", "wkv_scan", "wkv_step",
]
