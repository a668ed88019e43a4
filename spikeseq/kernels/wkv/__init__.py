"""Backends of the ``wkv`` op (registered with :mod:`spikeseq.kernels.dispatch` on import; nothing compiles here).

- ``"torch"``: :func:`spikeseq.functional.wkv_scan`, the reference loop (priority -1);
- ``"chunked"``: :func:`spikeseq.functional.wkv_chunked`, the chunked parallel form in torch ops, any device
  (priority 5: the default on GPUs, where it runs as batched matmuls);
- ``"chunked_compiled"``: the same chunked maths in phases that run every chunk at once (:mod:`.phases`), compiled
  by ``torch.compile`` (:mod:`.compiled`; CPU tensors; compiles on first use, runs the phases eagerly where
  compiling fails),
  priority 4: never chosen by ``"auto"`` while ``"chunked"`` is there (the first call compiles); name it to use it;
- ``"cpu"``: fused C++ loops with a hand-written backward (:mod:`.cpu`), priority 10: the default on the CPU;
- ``"triton"``: the same loops as Triton kernels (:mod:`.gpu`), priority 1: never chosen by ``"auto"`` until it
  has been run on a GPU (tested under ``TRITON_INTERPRET=1`` only); name it to use it.
"""

from __future__ import annotations

from spikeseq.functional.wkv import wkv_chunked
from spikeseq.kernels import dispatch


def _register() -> None:
    from spikeseq.kernels.wkv import compiled, cpu, gpu

    dispatch.register("wkv", "chunked", wkv_chunked, priority=5)
    dispatch.register("wkv", "chunked_compiled", compiled.wkv, supports=compiled.supports, priority=4)
    dispatch.register("wkv", "cpu", cpu.wkv, available=cpu.available, supports=cpu.supports, priority=10)
    dispatch.register_triton("wkv", gpu.wkv, gpu.supports, priority=1, opt_in="")


_register()
