"""Fast LIF-family scan backends (registered with :mod:`spikeseq.kernels.dispatch` on import).

``"cpu"``: fused C++ loops built lazily on first use (:mod:`.cpu`, :mod:`._build`), priority 10.
``"triton"``: Triton GPU kernels (:mod:`.triton`), priority 20, available with triton and a CUDA device (or
``TRITON_INTERPRET=1`` on CPU tensors, for tests). Importing this package compiles and imports nothing heavy.
"""

from __future__ import annotations

from spikeseq.kernels import dispatch


def _register() -> None:
    from spikeseq.kernels.lif import cpu

    for op, fn, supports in (
        ("lif_scan", cpu.lif_scan, cpu.supports_lif),
        ("cuba_lif_scan", cpu.cuba_lif_scan, cpu.supports_cuba),
        ("li_scan", cpu.li_scan, cpu.supports_li),
    ):
        dispatch.register(op, "cpu", fn, available=cpu.available, supports=supports, priority=10)


_register()
