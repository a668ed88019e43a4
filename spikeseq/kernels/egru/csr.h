// Compressed rows (CSR) for the activity-sparse EGRU (egru.cpp): building them from dense matrices (a vectorised
// count and compress per row, the transpose by a counting sort) and the weight-sparse products over blocks of rows
// held transposed (csr_block, csr_rows, csr_mm), with the AVX-512 transposes they need. Every product here sums each
// output over its nonzeros in ascending column order with fused multiply-adds (FMA_OK), like the other recurrent
// products of egru.cpp, so the paths agree bit for bit.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../parallel.h"
#include "../simd.h"

#ifndef RS
#define RS __restrict__
#endif
#ifndef FMA_OK
#define FMA_OK __attribute__((optimize("fp-contract=fast")))
#endif

namespace spikeseq {

// The nonzeros of row v[:n] as (index, value) lists in ascending index order; returns their number. idx and w
// must have room for n entries.
template <typename S>
inline int64_t nonzeros(const S* RS v, int64_t n, int32_t* RS idx, S* RS w) {
  int64_t p = 0, k = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<S, float>) {
    // 16 at a time: compress the nonzero lanes (and their indices) to the front of a register and store it whole;
    // the store may write past the new count but never past k + 16 <= n. (The branchy scalar loop mispredicted
    // on every few units at the usual 10-30 % activity: a third of the forward loop's own time.)
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; k + 16 <= n; k += 16) {
      const __m512 x = _mm512_loadu_ps(v + k);
      const __mmask16 m = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ);  // v != 0 (NaN included)
      _mm512_storeu_ps(w + p, _mm512_maskz_compress_ps(m, x));
      const __m512i at = _mm512_add_epi32(lane, _mm512_set1_epi32(int(k)));
      _mm512_storeu_si512(idx + p, _mm512_maskz_compress_epi32(m, at));
      p += __builtin_popcount(unsigned(m));
    }
  }
#endif
  for (; k < n; ++k) {
    if (v[k] != S(0)) {
      idx[p] = int32_t(k);
      w[p++] = v[k];
    }
  }
  return p;
}

#if defined(__AVX512F__)
// The 16 x 16 transpose of the rows v[0..15] in place: unpack pairs of rows, then pairs of pairs, then regroup the
// 128-bit lanes in two rounds of shuffle_f32x4.
inline void transpose16(__m512 v[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // v[4i + k], lane l: rows 4i .. 4i + 3 of column 4l + k
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    v[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    v[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    v[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    v[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int k = 0; k < 4; ++k) {
    const __m512 u0 = _mm512_shuffle_f32x4(v[k], v[4 + k], 0x88), u1 = _mm512_shuffle_f32x4(v[k], v[4 + k], 0xdd);
    const __m512 u2 = _mm512_shuffle_f32x4(v[8 + k], v[12 + k], 0x88);
    const __m512 u3 = _mm512_shuffle_f32x4(v[8 + k], v[12 + k], 0xdd);
    t[k] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    t[8 + k] = _mm512_shuffle_f32x4(u0, u2, 0xdd);
    t[4 + k] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    t[12 + k] = _mm512_shuffle_f32x4(u1, u3, 0xdd);
  }
  for (int i = 0; i < 16; ++i) v[i] = t[i];
}
#endif

// dst[c, r] = src[r, c] for r < nr and c < nc, and dst[c, r] = 0 for nr <= r < r_fill (the zero rows of a partial
// block of inputs; r_fill = nr: none). Float with AVX-512 in 16 x 16 tiles, else one entry at a time.
template <typename S>
inline void transpose(const S* RS src, int64_t lds, int64_t nr, int64_t nc, S* RS dst, int64_t ldd, int64_t r_fill) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<S, float>) {
    for (int64_t r0 = 0; r0 < r_fill; r0 += 16) {
      const int64_t n = std::clamp<int64_t>(nr - r0, 0, 16);
      const __mmask16 keep = __mmask16((1u << std::min<int64_t>(16, r_fill - r0)) - 1u);
      int64_t c0 = 0;
      for (; c0 + 16 <= nc; c0 += 16) {
        __m512 v[16];
        for (int i = 0; i < 16; ++i) v[i] = i < n ? _mm512_loadu_ps(src + (r0 + i) * lds + c0) : _mm512_setzero_ps();
        transpose16(v);
        for (int i = 0; i < 16; ++i) _mm512_mask_storeu_ps(dst + (c0 + i) * ldd + r0, keep, v[i]);
      }
      for (int64_t c = c0; c < nc; ++c)
        for (int64_t r = r0; r < std::min(r0 + 16, r_fill); ++r) dst[c * ldd + r] = r < nr ? src[r * lds + c] : 0.0f;
    }
    return;
  }
#endif
  for (int64_t c = 0; c < nc; ++c)
    for (int64_t r = 0; r < r_fill; ++r) dst[c * ldd + r] = r < nr ? src[r * lds + c] : S(0);
}

// Outputs in ascending order of their row length (number of nonzeros): grouped four at a time by csr_block, rows
// of similar length share one pass (counting sort, stable: equal lengths keep ascending output order).
inline std::vector<int32_t> by_row_length(const int64_t* RS rowptr, int64_t O) {
  int64_t longest = 0;
  for (int64_t o = 0; o < O; ++o) longest = std::max(longest, rowptr[o + 1] - rowptr[o]);
  std::vector<int64_t> start(longest + 2, 0);
  for (int64_t o = 0; o < O; ++o) ++start[rowptr[o + 1] - rowptr[o] + 1];
  for (int64_t n = 0; n <= longest; ++n) start[n + 1] += start[n];
  std::vector<int32_t> order(O);
  for (int64_t o = 0; o < O; ++o) order[start[rowptr[o + 1] - rowptr[o]]++] = int32_t(o);
  return order;
}

// ot[o, :RB] = bias[o] (or 0) + sum_q val[q] * xt[col[q], :RB] for every output o, RB = NV vectors of rows (xt: the
// inputs transposed, [K, RB]). Four outputs (consecutive in `order`) at a time: four independent chains of
// multiply-adds hide each other's latency (one output at a time waited on its own previous multiply-add: on a 2-core
// Sapphire Rapids the [8192, 512] x [1536, 512] product at 5 % took 25-29 ms that way). Each output still sums its
// nonzeros in ascending order, so the result is the one-at-a-time result bit for bit.
template <typename S, int NV>
FMA_OK void csr_block(const int32_t* RS order, int64_t O, const S* RS xt, const int64_t* RS rowptr,
                      const int32_t* RS col, const S* RS val, const S* RS bias, S* RS ot) {
  constexpr int L = kVecBytes / sizeof(S);
  constexpr int64_t RB = NV * L;
  constexpr int G = 4;
  int64_t k = 0;
  for (; k + G <= O; k += G) {
    Vec<S> acc[G][NV];
    int64_t q[G], n[G];
#pragma GCC unroll 4
    for (int i = 0; i < G; ++i) {
      const int64_t o = order[k + i];
      q[i] = rowptr[o];
      n[i] = rowptr[o + 1] - q[i];
      const Vec<S> b = splat<S>(bias ? bias[o] : S(0));
#pragma GCC unroll 4
      for (int u = 0; u < NV; ++u) acc[i][u] = b;
    }
    const int64_t common = std::min(std::min(n[0], n[1]), std::min(n[2], n[3]));
    for (int64_t m = 0; m < common; ++m) {
#pragma GCC unroll 4
      for (int i = 0; i < G; ++i) {
        const Vec<S> w = splat_load<S>(val + q[i] + m);
        const S* RS src = xt + int64_t(col[q[i] + m]) * RB;
#pragma GCC unroll 4
        for (int u = 0; u < NV; ++u) acc[i][u] += w * load(src + u * L);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < G; ++i) {
      for (int64_t m = common; m < n[i]; ++m) {
        const Vec<S> w = splat_load<S>(val + q[i] + m);
        const S* RS src = xt + int64_t(col[q[i] + m]) * RB;
#pragma GCC unroll 4
        for (int u = 0; u < NV; ++u) acc[i][u] += w * load(src + u * L);
      }
      S* RS dst = ot + int64_t(order[k + i]) * RB;
#pragma GCC unroll 4
      for (int u = 0; u < NV; ++u) store(dst + u * L, acc[i][u]);
    }
  }
  for (; k < O; ++k) {
    const int64_t o = order[k];
    Vec<S> acc[NV];
    const Vec<S> b = splat<S>(bias ? bias[o] : S(0));
    for (int u = 0; u < NV; ++u) acc[u] = b;
    for (int64_t q = rowptr[o]; q < rowptr[o + 1]; ++q) {
      const Vec<S> w = splat_load<S>(val + q);
      const S* RS src = xt + int64_t(col[q]) * RB;
      for (int u = 0; u < NV; ++u) acc[u] += w * load(src + u * L);
    }
    for (int u = 0; u < NV; ++u) store(ot + o * RB + u * L, acc[u]);
  }
}

// Scratch of csr_rows: the transposed block of inputs [K, RB] and of outputs [O, RB].
template <typename S>
struct CsrScratch {
  static constexpr int NV = 1;
  static constexpr int64_t RB = NV * (kVecBytes / sizeof(S));  // rows per block
  LineVector<S> xt, ot;
  CsrScratch(int64_t K, int64_t O) : xt(K * RB), ot(O * RB) {}
};

// out[r, :] = bias (or 0) + W x[r] for rows r in [0, R) of X [R, K] (rows ldx apart), W [O, K] in CSR, out [R, O]
// (rows ldo apart). Blocks of RB rows of X are transposed into a small buffer (RB values per input unit,
// contiguous), so that each nonzero weight is one vector multiply-add over the block's rows (csr_block); the
// block's results go to a transposed buffer [O, RB] (whole vectors) and are transposed back into `out`. Both
// transposes run in 16 x 16 tiles of AVX-512 shuffles (as scalar copies they took more than half of the product's
// time). One vector of rows per block: the transposed block of X (K x 16 floats, 32 KiB at K = 512) then stays in
// L1 (measured on a 2-core Sapphire Rapids at [8192, 512] x [1536, 512], 5 % dense, AVX-512 float, one process:
// two vectors per block 27-29 ms, one vector 22 ms, and with one broadcast load per weight 21.7 ms, against 23-32 ms
// for the earlier two-vector loop with scalar transposes).
template <typename S>
void csr_rows(int64_t R, int64_t K, int64_t O, const S* RS X, int64_t ldx, const int32_t* RS order,
              const int64_t* RS rowptr, const int32_t* RS col, const S* RS val, const S* RS bias, S* RS out,
              int64_t ldo, CsrScratch<S>& sc) {
  constexpr int64_t RB = CsrScratch<S>::RB;
  S* RS xt = sc.xt.data();
  S* RS ot = sc.ot.data();
  for (int64_t r0 = 0; r0 < R; r0 += RB) {
    const int64_t nr = std::min(RB, R - r0);
    transpose(X + r0 * ldx, ldx, nr, K, xt, RB, RB);  // xt[k, j] = X[r0 + j, k], zero for j >= nr
    csr_block<S, CsrScratch<S>::NV>(order, O, xt, rowptr, col, val, bias, ot);
    transpose(ot, RB, O, nr, out + r0 * ldo, ldo, O);  // out[r0 + j, o] = ot[o, j]
  }
}

// out = X W^T + bias for X [R, K], W [O, K] in CSR, out [R, O], all row-major (csr_rows over threads' shares of
// whole blocks of rows).
template <typename S>
void csr_mm(int64_t R, int64_t K, int64_t O, const S* RS X, const int64_t* RS rowptr, const int32_t* RS col,
            const S* RS val, const S* RS bias, S* RS out, int nth) {
  constexpr int64_t RB = CsrScratch<S>::RB;
  const std::vector<int32_t> order = by_row_length(rowptr, O);
  const int64_t nblk = (R + RB - 1) / RB;
  parallel(nblk, nth, [&](int64_t k0, int64_t k1) {
    CsrScratch<S> sc(K, O);
    const int64_t r0 = k0 * RB, r1 = std::min(R, k1 * RB);
    csr_rows<S>(r1 - r0, K, O, X + r0 * K, K, order.data(), rowptr, col, val, bias, out + r0 * O, O, sc);
  }, 2, 1);
}

// Compressed rows of a strided [rows, cols] matrix whose row offsets are known (rowptr from the row counts): the
// columns and values of its nonzeros, row by row (one pass; the matrix may be a transposed view).
template <typename S>
void csr_fill(int64_t rows, int64_t cols, const S* RS w, int64_t s_row, int64_t s_col, const int64_t* RS rowptr,
              int32_t* RS col, S* RS val) {
  for (int64_t i = 0; i < rows; ++i) {
    int64_t q = rowptr[i];
    const S* wr = w + i * s_row;
    for (int64_t j = 0; j < cols; ++j) {
      const S v = wr[j * s_col];
      if (v != S(0)) {
        col[q] = int32_t(j);
        val[q++] = v;
      }
    }
  }
}

// rowptr[0] = 0, rowptr[i + 1] = rowptr[i] + the number of nonzeros of row i of w [rows, cols] (rows ld apart, each
// contiguous); returns the total. One vectorisable pass (torch.count_nonzero over the rows took 0.8 ms for a
// [1536, 512] matrix, this a tenth of that).
template <typename S>
int64_t csr_count(int64_t rows, int64_t cols, const S* RS w, int64_t ld, int64_t* RS rowptr) {
  rowptr[0] = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const S* RS wr = w + i * ld;
    int64_t n = 0;
    for (int64_t j = 0; j < cols; ++j) n += wr[j] != S(0);
    rowptr[i + 1] = rowptr[i] + n;
  }
  return rowptr[rows];
}

// The compressed rows of w [rows, cols] (rows ld apart, each contiguous) with rowptr from csr_count: nonzeros()
// per row, whose whole-vector stores may write up to 15 entries past a row's end (into the next row's place, filled
// afterwards, or into the slack of 16 entries the caller leaves after the last row).
template <typename S>
void csr_fill_rows(int64_t rows, int64_t cols, const S* RS w, int64_t ld, const int64_t* RS rowptr, int32_t* RS col,
                   S* RS val) {
  for (int64_t i = 0; i < rows; ++i) nonzeros(w + i * ld, cols, col + rowptr[i], val + rowptr[i]);
}

// The compressed rows of the transpose [cols, rows] of a compressed [rows, cols] matrix (each new row in ascending
// column order, as csr_fill would give it from the dense transpose): a counting sort of the nonzeros by column.
template <typename S>
void csr_transpose(int64_t rows, int64_t cols, const int64_t* RS rowptr, const int32_t* RS col, const S* RS val,
                   int64_t* RS t_rowptr, int32_t* RS t_col, S* RS t_val) {
  for (int64_t j = 0; j <= cols; ++j) t_rowptr[j] = 0;
  for (int64_t q = 0; q < rowptr[rows]; ++q) ++t_rowptr[col[q] + 1];
  for (int64_t j = 0; j < cols; ++j) t_rowptr[j + 1] += t_rowptr[j];
  std::vector<int64_t> next(t_rowptr, t_rowptr + cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t q = rowptr[i]; q < rowptr[i + 1]; ++q) {
      const int64_t at = next[col[q]]++;
      t_col[at] = int32_t(i);
      t_val[at] = val[q];
    }
}

}  // namespace spikeseq
