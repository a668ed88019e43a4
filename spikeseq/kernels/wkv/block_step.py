"""One token through an RWKV-4 block in the C++ loops of ``block_step.cpp`` (RNN-mode generation).

:meth:`spikeseq.nn.rwkv.RWKVBlock.step` packs its weights once (:func:`pack`, kept with its other step weights)
and runs each token through :func:`run`. Where the library is not built, or a tensor is not a contiguous CPU tensor
of the block's dtype (float32 or float64), or a LIF's decay or threshold is not one number, :func:`pack` returns
``None`` and the block runs its torch calls instead. No checks beyond those, no autograd: inference only.
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple

import torch

from spikeseq.kernels import _native

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
#: Weights per block (floats) above which, with more than one torch thread, the torch calls take over: the C++
#: step is one thread, and a large block's step is bound by reading its weights, which torch's matrix-vector
#: products split between the threads. Measured at batch 1, 2 threads, against the ``rwkv`` package in the same
#: run (``spikeseq bench generation``, session 8): RWKV-4 4 x 128 (213 k floats per block) 3,256 tokens/s here
#: against its 1,720; 12 x 512 (3.4 M per block) 128 against its 178, where the torch calls ran 189 standalone.
THREADED_MIN_FLOATS = 1 << 20
#: Fields of the block state, in the order of the C entry point (spikeseq.nn.rwkv.RWKVBlockState's order).
STATE_FIELDS = 7


class Packed(NamedTuple):
    """A block's weights as the C entry point takes them: the function, the weights' pointers and the scalars (as
    C arrays), the tensors they point into (kept alive), whether the branches spike, the dtype, the hidden width
    and the channels."""

    fn: object
    pointers: ctypes.Array
    scalars: ctypes.Array
    tensors: tuple
    spiking: bool
    dtype: torch.dtype
    hidden: int
    channels: int


def pack(ln0, ln1, ln2, kvr, mu_kvr, w, u, out_w, mu_kr, key_w, rec_w, val_w, lif) -> Packed | None:
    """Pack one block for :func:`run`, or ``None`` where the C++ loops cannot run it (module docstring).

    ``ln0`` (or ``None``), ``ln1``, ``ln2``: ``(weight, bias, eps)``; ``kvr`` ``[3, C, C]``, ``out_w`` ``[C, C]``,
    ``key_w`` ``[C, H]``, ``rec_w`` ``[C, C]``, ``val_w`` ``[H, C]``: the projections transposed to ``[in, out]``;
    ``mu_kvr`` ``[3, C]``, ``mu_kr`` ``[2, C]``: the mixes; ``w = e^{time_decay}`` and ``u`` ``[C]``; ``lif``:
    ``None`` (no spikes) or ``(in_scale, beta, v_th)`` with ``beta``, ``v_th`` one-element tensors."""
    lib = _native.library()
    dt = kvr.dtype
    suffix = _SUFFIX.get(dt)
    if lib is None or suffix is None:
        return None
    if any(ln is not None and (ln[0] is None or ln[1] is None) for ln in (ln0, ln1, ln2)) or ln1 is None \
            or ln2 is None:  # the loops take LayerNorms with a gain and a bias
        return None
    lns = [(None, None, 0.0) if ln is None else ln for ln in (ln0, ln1, ln2)]
    weights = [t for ln in lns for t in ln[:2]] + [mu_kvr, kvr, w, u, out_w, mu_kr, key_w, rec_w, val_w]
    present = [t for t in weights if t is not None]
    if any(t.dtype != dt or t.device.type != "cpu" or not t.is_contiguous() for t in present):
        return None
    scalars = [float(ln[2]) for ln in lns] + [0.0, 0.0, 0.0]
    if lif is not None:
        if lif[1].numel() != 1 or lif[2].numel() != 1:
            return None
        scalars[3:] = [float(lif[0]), float(lif[1]), float(lif[2])]
    pointers = (ctypes.c_void_p * len(weights))(*(None if t is None else t.data_ptr() for t in weights))
    return Packed(getattr(lib, f"rwkv_block_step_{suffix}"), pointers, (ctypes.c_double * 6)(*scalars),
                  tuple(present), lif is not None, dt, int(key_w.shape[1]), int(kvr.shape[-1]))


def pays(packed: Packed) -> bool:
    """Whether the C++ step is the faster way for this block now (see :data:`THREADED_MIN_FLOATS`)."""
    C, H = packed.channels, packed.hidden
    return torch.get_num_threads() == 1 or 5 * C * C + 2 * C * H < THREADED_MIN_FLOATS


def run(packed: Packed, x: torch.Tensor, state) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]] | None:
    """``x`` ``[B, C]`` through the packed block with its state (7 ``[B, C]`` tensors: ``att_x, a, b, p, ffn_x,
    v_att, v_ffn``); returns the block's output and the new state, or ``None`` when ``x`` or the state is not what
    the pack was made for (another dtype or device, non-contiguous, another width)."""
    dt, shape = packed.dtype, x.shape
    if len(shape) != 2 or shape[1] != packed.channels:
        return None
    ptrs = []
    for t in (x, *state):
        if t.dtype != dt or not t.is_cpu or t.shape != shape or not t.is_contiguous():
            return None
        ptrs.append(t.data_ptr())
    B, C = shape
    out = torch.empty((1 + STATE_FIELDS, B, C), dtype=dt)
    fields = (ctypes.c_void_p * STATE_FIELDS)(*ptrs[1:])
    packed.fn(B, C, packed.hidden, packed.pointers, packed.scalars, int(packed.spiking), ptrs[0], fields,
              out.data_ptr())
    y, *new = out.unbind(0)
    return y, tuple(new)
