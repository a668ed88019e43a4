"""Fast EGRU backends (registered with :mod:`spikeseq.kernels.dispatch` on import).

``"cpu"``: the activity-sparse fused C++ loop (:mod:`.cpu`, ``egru.cpp``), priority 10.
``"triton"``: a Triton forward kernel with a PyTorch backward (:mod:`.gpu`), priority 20, available with triton
and a CUDA device (or ``TRITON_INTERPRET=1`` on CPU tensors, for tests).
Importing this package compiles nothing and imports neither triton nor a compiler.
"""

from __future__ import annotations

from spikeseq.kernels import dispatch


def _register() -> None:
    from spikeseq.kernels.egru import cpu, gpu

    dispatch.register("egru_scan", "cpu", cpu.egru_scan, available=cpu.available, supports=cpu.supports,
                      priority=10)
    # opt-in for backend="auto" (SPIKESEQ_TRITON=1) until validated on a GPU, like the LIF-family kernels
    dispatch.register_triton("egru_scan", gpu.egru_scan, gpu.supports, priority=20)


_register()
