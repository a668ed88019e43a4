// Event-driven products with spike matrices: the CPU kernels of spikeseq/kernels/spike_linear.py.
//
// Built lazily together with lif/scan.cpp by spikeseq/kernels/_native.py (plain C ABI, loaded with ctypes) and
// called through spikeseq/kernels/spmm.py. A spike matrix Z [R, K] of 0s and 1s (R = time x batch rows, K input
// neurons) is held as compressed rows: rowptr [R + 1] (int64) and idx [nnz] (int32, the columns of the 1s of each
// row, ascending). Then
//
//     forward          out[r, :] = bias + sum_{j in row r} W^T[j, :]        (W^T [K, O] contiguous)
//     weight gradient  dW^T[j, :] = sum_{r : Z[r, j] = 1} G[r, :]            (G = dL/d out, [R, O])
//
// cost nnz * O additions instead of R * K * O multiply-adds. Sums run in a fixed order (bias first, then the
// spikes in ascending order; the weight gradient by ascending row), independent of the thread count.
// The inner loops add whole rows of O numbers in registers: GCC/Clang vector extensions of the widest vector
// the build targets (the library is compiled with -march=native where the compiler accepts it).

#include <cstdint>
#include <vector>

#include "parallel.h"
#include "simd.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

#define RS __restrict__

using spikeseq::parallel;
using spikeseq::kVecBytes;
using spikeseq::load;
using spikeseq::store;
using spikeseq::Vec;

// dst[c0 : c0 + U*L] = init[c0 : ...] (or 0) + sum_p src[list[p], c0 : ...], U accumulators held in registers.
template <typename S, int U>
inline void block_sum(const S* RS src, int64_t O, const int32_t* RS list, int64_t n, int64_t c0, const S* init,
                      S* dst) {
  constexpr int L = kVecBytes / sizeof(S);
  Vec<S> acc[U];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) acc[u] = init ? load(init + c0 + u * L) : Vec<S>{};
  for (int64_t p = 0; p < n; ++p) {
    const S* RS row = src + int64_t(list[p]) * O + c0;
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[u] += load(row + u * L);
  }
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) store(dst + c0 + u * L, acc[u]);
}

// dst[:O] = init (or 0) + the rows of src named in list[:n]. init may equal dst (accumulation).
template <typename S>
void sum_listed_rows(const S* RS src, int64_t O, const int32_t* RS list, int64_t n, const S* init, S* dst) {
  constexpr int L = kVecBytes / sizeof(S);
  int64_t c = 0;
  for (; c + 8 * L <= O; c += 8 * L) block_sum<S, 8>(src, O, list, n, c, init, dst);
  for (; c + L <= O; c += L) block_sum<S, 1>(src, O, list, n, c, init, dst);
  for (; c < O; ++c) {
    S s = init ? init[c] : S(0);
    for (int64_t p = 0; p < n; ++p) s += src[int64_t(list[p]) * O + c];
    dst[c] = s;
  }
}

// The columns of row r's nonzeros, ascending, written from out[0]; returns their number and sets `odd` when an
// entry is neither 0 nor 1 (NaN included).
template <typename S>
inline int64_t compress_row(const S* RS zr, int64_t K, int32_t* RS out, bool& odd) {
  int64_t p = 0, k = 0;
#if defined(__AVX512F__)
  if constexpr (sizeof(S) == 4) {
    const float* zf = reinterpret_cast<const float*>(zr);
    __m512i cols = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    const __m512 one = _mm512_set1_ps(1.0f);
    __mmask16 strange = 0;
    for (; k + 16 <= K; k += 16) {
      const __m512 v = _mm512_loadu_ps(zf + k);
      const __mmask16 nz = _mm512_cmpneq_ps_mask(v, _mm512_setzero_ps());  // unordered: NaN counts as nonzero
      strange |= nz & _mm512_cmpneq_ps_mask(v, one);
      _mm512_mask_compressstoreu_epi32(out + p, nz, cols);
      p += __builtin_popcount(static_cast<unsigned>(nz));
      cols = _mm512_add_epi32(cols, sixteen);
    }
    odd |= strange != 0;
  }
#endif
  for (; k < K; ++k) {
    const S v = zr[k];
    if (v != S(0)) {
      out[p++] = int32_t(k);
      odd |= v != S(1);
    }
  }
  return p;
}

// Z [R, K] -> compressed rows in one pass (on the calling thread: the pass is memory bound, and measured slower
// with a second thread). idx needs room for R * K indices (only the first nnz are written); rowptr [R + 1].
// Returns the number of rows holding an entry that is neither 0 nor 1.
template <typename S>
int64_t compress_rows(const S* RS z, int64_t R, int64_t K, int64_t* RS rowptr, int32_t* RS idx) {
  int64_t bad = 0;
  rowptr[0] = 0;
  for (int64_t r = 0; r < R; ++r) {
    bool odd = false;
    rowptr[r + 1] = rowptr[r] + compress_row<S>(z + r * K, K, idx + rowptr[r], odd);
    bad += odd;
  }
  return bad;
}

template <typename S>
void gather_rows(int64_t R, int64_t O, const int64_t* RS rowptr, const int32_t* RS idx, const S* RS wt,
                 const S* RS bias, S* RS out, int nth) {
  parallel(
      R, nth,
      [&](int64_t a, int64_t b) {
        for (int64_t r = a; r < b; ++r)
          sum_listed_rows<S>(wt, O, idx + rowptr[r], rowptr[r + 1] - rowptr[r], bias, out + r * O);
      },
      64, 1);
}

// Compressed rows -> compressed columns (counting sort; rows ascending within every column).
void transpose_rows(int64_t R, int64_t K, const int64_t* RS rowptr, const int32_t* RS idx, int64_t* RS colptr,
                    int32_t* RS rows) {
  for (int64_t k = 0; k <= K; ++k) colptr[k] = 0;
  const int64_t nnz = rowptr[R];
  for (int64_t p = 0; p < nnz; ++p) colptr[idx[p] + 1]++;
  for (int64_t k = 0; k < K; ++k) colptr[k + 1] += colptr[k];
  std::vector<int64_t> next(colptr, colptr + K);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t p = rowptr[r]; p < rowptr[r + 1]; ++p) rows[next[idx[p]]++] = int32_t(r);
}

// dW^T[j, :] = sum of the rows of G listed in column j. G is visited in blocks of `block` rows so that a block
// stays in cache while every column adds its rows from it (columns split between threads).
template <typename S>
void scatter_cols(int64_t R, int64_t K, int64_t O, const int64_t* RS colptr, const int32_t* RS rows,
                  const S* RS g, S* RS gwt, int64_t block, int nth) {
  parallel(
      K, nth,
      [&](int64_t a, int64_t b) {
        std::vector<int64_t> cursor(colptr + a, colptr + b);
        for (int64_t j = a; j < b; ++j)
          for (int64_t c = 0; c < O; ++c) gwt[j * O + c] = S(0);
        for (int64_t r_end = block; r_end < R + block; r_end += block) {
          const int32_t limit = int32_t(r_end < R ? r_end : R);
          for (int64_t j = a; j < b; ++j) {
            int64_t s = cursor[j - a], e = s;
            const int64_t end = colptr[j + 1];
            while (e < end && rows[e] < limit) ++e;
            if (e > s) sum_listed_rows<S>(g, O, rows + s, e - s, gwt + j * O, gwt + j * O);
            cursor[j - a] = e;
          }
        }
      },
      16, 1);
}

}  // namespace

#define SPIKESEQ_SPMM_EXPORT(S, SUF)                                                                           \
  extern "C" int64_t spike_rows_compress_##SUF(const S* z, int64_t R, int64_t K, int64_t* rowptr,              \
                                               int32_t* idx) {                                                \
    return compress_rows<S>(z, R, K, rowptr, idx);                                                            \
  }                                                                                                           \
  extern "C" void spike_gather_##SUF(int64_t R, int64_t O, const int64_t* rowptr, const int32_t* idx,          \
                                     const S* wt, const S* bias, S* out, int nth) {                           \
    gather_rows<S>(R, O, rowptr, idx, wt, bias, out, nth);                                                    \
  }                                                                                                           \
  extern "C" void spike_weight_grad_##SUF(int64_t R, int64_t K, int64_t O, const int64_t* colptr,              \
                                          const int32_t* rows, const S* g, S* gwt, int64_t block, int nth) {  \
    scatter_cols<S>(R, K, O, colptr, rows, g, gwt, block, nth);                                               \
  }

SPIKESEQ_SPMM_EXPORT(float, f32)
SPIKESEQ_SPMM_EXPORT(double, f64)

// The vector width the sums were compiled for (16: SSE2/NEON, 32: AVX2, 64: AVX-512).
extern "C" int spike_vector_bytes() { return kVecBytes; }

extern "C" void spike_rows_transpose(int64_t R, int64_t K, const int64_t* rowptr, const int32_t* idx,
                                     int64_t* colptr, int32_t* rows) {
  transpose_rows(R, K, rowptr, idx, colptr, rows);
}
