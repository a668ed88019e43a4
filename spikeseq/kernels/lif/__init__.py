"""Fast LIF-family scan backends (registered with :mod:`spikeseq.kernels.dispatch` on import).

``"cpu"``: fused C++ loops built lazily on first use (:mod:`.cpu`, :mod:`spikeseq.kernels._native`), priority 10.
``"triton"``: Triton GPU kernels (:mod:`.gpu`, :mod:`._triton_kernels`), priority 20, available with triton and a
CUDA device (or ``TRITON_INTERPRET=1`` on CPU tensors, for tests); opt-in for ``backend="auto"``
(``SPIKESEQ_TRITON=1``) until validated on a GPU, so CUDA tensors run the torch reference by default.
Importing this package compiles nothing and imports neither triton nor a compiler.
"""

from __future__ import annotations

from spikeseq.kernels import dispatch

#: ``backend="auto"`` picks Triton only when this is 1 (or name ``backend="triton"``): the kernels are tested under
#: ``TRITON_INTERPRET=1`` only, until ``spikeseq bench gpu`` has checked them on a GPU (results/gpu/).
TRITON_OPT_IN = dispatch.TRITON_OPT_IN


def _register() -> None:
    from spikeseq.kernels.lif import cpu, gpu

    for op, fn, supports in (
        ("lif_scan", cpu.lif_scan, cpu.supports_lif),
        ("cuba_lif_scan", cpu.cuba_lif_scan, cpu.supports_cuba),
        ("li_scan", cpu.li_scan, cpu.supports_li),
        ("alif_scan", cpu.alif_scan, cpu.supports_alif),
    ):
        dispatch.register(op, "cpu", fn, available=cpu.available, supports=supports, priority=10)
    for op, fn, supports in (
        ("lif_scan", gpu.lif_scan, gpu.supports_lif),
        ("cuba_lif_scan", gpu.cuba_lif_scan, gpu.supports_cuba),
        ("li_scan", gpu.li_scan, gpu.supports_li),
        ("alif_scan", gpu.alif_scan, gpu.supports_alif),
    ):
        dispatch.register_triton(op, fn, supports, priority=20)


_register()
