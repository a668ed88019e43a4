"""The fixed-point EGRU cell step of target mode in C++ (``egru_fixed.cpp``, built with the other kernels by
:mod:`spikeseq.kernels._native`): the gate arithmetic of one step and its adjoint on contiguous float32 CPU tensors.
``available()`` says whether the library loads here; :mod:`spikeseq.graph.target_cells` runs the same operations in
torch where it does not."""

from __future__ import annotations

import torch

from spikeseq.errors import ShapeError
from spikeseq.kernels import _native

__all__ = ["Steps", "available", "event_outer", "event_products", "step_backward", "step_forward"]


def available() -> bool:
    """Whether the C++ step functions can run here (a compiler, not disabled by ``SPIKESEQ_NO_CPP=1``)."""
    return _native.library() is not None


def _p(t: torch.Tensor) -> int:
    return t.data_ptr()


class Steps:
    """Per-step views of contiguous sequence buffers ``[T, ...]`` as raw addresses (``at(t)``), so a time loop
    passes step ``t`` of every buffer to the C++ functions without indexing tensors."""

    def __init__(self, *seqs: torch.Tensor):
        for s in seqs:
            if not s.is_contiguous():
                raise ShapeError("the C++ EGRU step needs contiguous sequence buffers; pass tensor.contiguous()")
        self.base = [s.data_ptr() for s in seqs]
        self.stride = [s[0].numel() * s.element_size() for s in seqs]

    def at(self, t: int) -> list[int]:
        """The addresses of step ``t`` of every buffer."""
        return [b + t * st for b, st in zip(self.base, self.stride)]


def step_forward(b: int, h: int, xw: int, ghm: torch.Tensor, consts: tuple[torch.Tensor, ...], c_in: int,
                 frac: int | None, out: list[int]) -> None:
    """One step: writes ``out = (y, c, r, z, n, gh_n, c~, e)`` (addresses of ``[B, H]`` float32 buffers; ``e``
    one byte each) from the input products at ``xw`` and the recurrent products ``ghm`` (``[B, 3H]`` float32,
    rounded once), ``consts = (k_i, b_i, k_h, b_h, theta)`` (per-gate factors and biases ``[3H]``, thresholds
    ``[H]``) and the state at ``c_in``; ``frac``: int8 payloads ``round(y * 2**frac)`` (``None``: float32)."""
    _native.library().egru_fixed_fwd(b, h, xw, _p(ghm), *(_p(t) for t in consts), c_in,
                                     -1 if frac is None else int(frac), *out)


def step_backward(b: int, h: int, g_out: int, g_rec: torch.Tensor, scale: float, saved: list[int], c_in: int,
                  th: torch.Tensor, sg: int, g_c: torch.Tensor, g_gi: int, g_gh: int) -> None:
    """The adjoint of one step: writes ``g_gi``, ``g_gh`` (``[B, 3H]``) and ``g_c`` (in place: d loss / d c of the
    previous step) from the payload gradients at ``g_out`` plus ``g_rec`` (times ``scale``), the addresses ``saved``
    of the step's ``(r, z, n, gh_n, c~, e)``, the state ``c_in`` before the step, the thresholds and the
    pseudo-derivative at ``sg``."""
    _native.library().egru_fixed_bwd(b, h, g_out, _p(g_rec), float(scale), *saved, c_in, _p(th), sg, _p(g_c),
                                     g_gi, g_gh)



def event_products(y: torch.Tensor, w_t: torch.Tensor, out: torch.Tensor) -> None:
    """``out = y @ w_t`` (float32 ``[B, H] @ [H, 3H]``) summing only the rows of ``w_t`` of units that sent an event
    (``egru.cpp``'s gather product, in ascending unit order): for int8 payloads and weights every partial sum is an
    exact integer, so this equals the dense product."""
    _native.library().egru_gather_mm_f32(y.shape[0], y.shape[1], w_t.shape[1], _p(y), _p(w_t), None, _p(out), 1)


def event_outer(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``x.T @ g`` (float32 ``[R, K]``, ``[R, O]`` -> ``[K, O]``) over the nonzero entries of ``x`` only (the
    weight gradient of :func:`event_products`: a unit's row gathers the gradients of the steps it sent an event)."""
    x, g = x.contiguous(), g.contiguous()
    out = torch.empty(x.shape[1], g.shape[1], dtype=torch.float32)
    _native.library().egru_gather_outer_f32(x.shape[0], x.shape[1], g.shape[1], _p(x), _p(g), _p(out), 1)
    return out
