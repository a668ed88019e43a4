"""Continual learning plug-ins that attach to any spikeseq model through hooks (see ARCHITECTURE.md).

:class:`HLOP` (Hebbian orthogonal projection, Xiao et al. ICLR 2024) and the baselines :class:`GPM` (SVD
gradient projection memory, Saha et al. ICLR 2021) and :class:`EWC` (Kirkpatrick et al. PNAS 2017) share one
protocol: ``begin_task(t)``, ``end_task(...)``, ``attach()`` / ``detach()``, ``state_dict()`` /
``load_state_dict()``. :mod:`spikeseq.continual.metrics` holds ACC / BWT.
"""

from spikeseq.continual.hlop import HLOP, HLOPConfig

__all__ = ["HLOP", "HLOPConfig"]
