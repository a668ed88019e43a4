"""Tensor-level wrappers of the event-driven spike products in ``spmm.cpp`` (CPU, float32/float64).

A spike matrix ``Z [R, K]`` (0s and 1s) is turned into :class:`SpikeRows` (compressed rows: the columns of its 1s),
then ``Z @ W.T + b`` and the weight gradient ``G.T @ Z`` are sums of selected rows: ``nnz * O`` additions instead
of ``R * K * O`` multiply-adds. The library is the one of :mod:`spikeseq.kernels._native`; :func:`available` says
whether it could be built.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spikeseq.kernels import _native

DTYPES = {torch.float32: "f32", torch.float64: "f64"}
#: Rows of G visited together by the weight gradient (a block of 256 rows x 256 float32 outputs is 256 KiB and stays
#: in a 2 MiB L2 cache). Measured on the 2-core dev machine at [3200, 256] x [256, 256], density 0.1: blocks of
#: 64/128/256/512 rows took 0.60/0.54/0.52/0.53 ms; unblocked 0.86 ms.
WEIGHT_GRAD_BLOCK_ROWS = 256


@dataclass(frozen=True)
class SpikeRows:
    """Compressed rows of a ``[rows, cols]`` spike matrix: ``idx[rowptr[r]:rowptr[r + 1]]`` are row r's 1s."""

    rowptr: torch.Tensor  # int64 [rows + 1]
    idx: torch.Tensor  # int32 [max(nnz, 1)]
    rows: int
    cols: int

    @property
    def nnz(self) -> int:
        """Number of spikes (1s) stored."""
        return int(self.rowptr[-1])


def available() -> bool:
    """Whether the C++ spike-matrix library is built and loaded."""
    return _native.library() is not None


def vector_bytes() -> int:
    """Width of the vectors the row sums were compiled for (16 SSE2/NEON, 32 AVX2, 64 AVX-512)."""
    return int(_native.library().spike_vector_bytes())


def supports(z: torch.Tensor) -> bool:
    """Whether the C++ path can take ``z`` (CPU, float32/float64, library built)."""
    return z.device.type == "cpu" and z.dtype in DTYPES and available()


#: Additions (nnz x outputs) per extra thread for the row sums. Measured on the 2-core dev machine (float32,
#: median of 15): at 21M additions ([3200, 256] x 256, density 0.1) two threads were no faster than one (gather
#: 0.60 vs 0.56 ms) and inside a training step slower (the threads compete with torch's); at 143-209M additions
#: two threads took 0.55-0.87x the time of one. Compressing is memory bound and runs on one thread (with two it
#: took 0.45 instead of 0.15 ms at [3200, 256]).
ADDS_PER_THREAD = 64_000_000


def _threads(work: int) -> int:
    return max(1, min(torch.get_num_threads(), work // ADDS_PER_THREAD))


def compress(z2: torch.Tensor) -> tuple[SpikeRows, int]:
    """The compressed rows of a contiguous ``[R, K]`` matrix (one pass) and the number of rows holding an entry
    that is neither 0 nor 1 (the rows are only meaningful when that number is 0)."""
    rows, cols = z2.shape
    rowptr = torch.empty(rows + 1, dtype=torch.int64)
    buf = torch.empty(max(rows * cols, 1), dtype=torch.int32)  # room for every entry; only nnz are written
    fn = getattr(_native.library(), f"spike_rows_compress_{DTYPES[z2.dtype]}")
    bad = fn(z2.data_ptr(), rows, cols, rowptr.data_ptr(), buf.data_ptr())
    idx = buf[: max(int(rowptr[-1]), 1)].clone()
    return SpikeRows(rowptr, idx, rows, cols), int(bad)


def linear(spikes: SpikeRows, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``Z @ weight.T + bias`` as ``[R, O]``: bias plus the sum of the weight columns of every row's spikes."""
    wt = weight.detach().t().contiguous()
    out_features = wt.shape[1]
    out = torch.empty(spikes.rows, out_features, dtype=weight.dtype)
    b = None if bias is None else bias.detach().contiguous()
    fn = getattr(_native.library(), f"spike_gather_{DTYPES[weight.dtype]}")
    fn(spikes.rows, out_features, spikes.rowptr.data_ptr(), spikes.idx.data_ptr(), wt.data_ptr(),
       None if b is None else b.data_ptr(), out.data_ptr(), _threads(spikes.nnz * out_features))
    return out


def weight_grad(spikes: SpikeRows, g2: torch.Tensor) -> torch.Tensor:
    """``g2.T @ Z`` (``[O, K]``, the weight gradient) from the output gradient ``g2 [R, O]``."""
    lib = _native.library()
    g2 = g2.contiguous()
    out_features = g2.shape[1]
    colptr = torch.empty(spikes.cols + 1, dtype=torch.int64)
    by_col = torch.empty(max(spikes.nnz, 1), dtype=torch.int32)
    lib.spike_rows_transpose(spikes.rows, spikes.cols, spikes.rowptr.data_ptr(), spikes.idx.data_ptr(),
                             colptr.data_ptr(), by_col.data_ptr())
    gwt = torch.empty(spikes.cols, out_features, dtype=g2.dtype)
    fn = getattr(lib, f"spike_weight_grad_{DTYPES[g2.dtype]}")
    fn(spikes.rows, spikes.cols, out_features, colptr.data_ptr(), by_col.data_ptr(), g2.data_ptr(), gwt.data_ptr(),
       WEIGHT_GRAD_BLOCK_ROWS, _threads(spikes.nnz * out_features))
    return gwt.t()
