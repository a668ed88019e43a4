"""Per-call context handed to counters: the time layout of a call and the options of the run."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch


@dataclass
class CallContext:
    """``T``/``B``: time steps and batch of the profiled input. ``step_mode``: the model is called once per step.

    ``ac_rule``: ``"element"`` (native: each input element of magnitude 1 is a spike, others are values) or
    ``"call"`` (NeuroBench: a layer-step is all ACs iff every input element is in {-1, 0, 1}, else all MACs).
    ``neurobench``: also compute the ``nb_*`` counters. ``call_index``: how many times this layer was already
    called in the current batch (NeuroBench's first-call rule for membrane updates).
    """

    T: int
    B: int
    step_mode: bool = False
    ac_rule: str = "element"
    neurobench: bool = False
    name: str = ""
    call_index: int = 0
    stash: object = None
    notes: list[str] = field(default_factory=list)
    binary: dict = field(default_factory=dict)  # shared per batch: storage ptr -> (weakref, offset, numel)

    def mark_binary(self, z: torch.Tensor) -> None:
        """Record that ``z`` holds only 0/1 values (spikes of a spiking neuron) so consumers skip the check."""
        try:
            self.binary[z.untyped_storage().data_ptr()] = (weakref.ref(z), z.storage_offset(), z.numel())
        except (RuntimeError, TypeError):  # pragma: no cover - tensors without storage
            pass

    def is_binary(self, x: torch.Tensor) -> bool:
        """True when ``x`` is (a view of the whole of) a tensor recorded by :meth:`mark_binary` that is alive."""
        try:
            entry = self.binary.get(x.untyped_storage().data_ptr())
        except (RuntimeError, TypeError):  # pragma: no cover
            return False
        if entry is None:
            return False
        ref, offset, numel = entry
        z = ref()
        return z is not None and x.storage_offset() == offset and x.numel() == numel and x.dtype == z.dtype

    def steps(self, x: torch.Tensor, time_first: bool = False, features: int = 0) -> torch.Tensor:
        """View ``x`` as ``[T_call, rows, ...]``.

        Time-first modules get ``[T, B, ...]`` as is. For per-sample modules: ``[T*B, ...]`` (time folded into the
        batch by :func:`spikeseq.nn.time_distributed`) is unfolded, ``[T, B, ...]`` kept, ``[B, T, ...]``
        transposed, and anything else (the model called once per step) is one step. ``features``: trailing
        per-sample axes ``x`` always has (1 for Linear's ``in``): a ``[rows, in]`` input of one step whose sizes
        happen to equal ``(T, B)`` is then not taken for ``T`` steps of one feature each.
        """
        if time_first:
            return x
        if self.step_mode or x.dim() == 0:
            return x.unsqueeze(0)
        T, B = self.T, self.B
        if x.dim() >= 2 + features and x.shape[0] == T and x.shape[1] == B and T > 1:
            return x
        if x.dim() >= 1 and T > 1 and x.shape[0] == T * B:
            return x.reshape(T, B, *x.shape[1:])
        if x.dim() >= max(3, 2 + features) and x.shape[0] == B and x.shape[1] == T and T > 1:
            return x.transpose(0, 1)
        return x.unsqueeze(0)
