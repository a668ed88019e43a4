// Activity-sparse EGRU on the CPU: the fused time loop (forward and sparse BPTT) and the event-driven products of
// a stacked layer's input projection. Equations: spikeseq/functional/egru.py (gate order r, z, n as torch.nn.GRU).
//
// Built lazily together with the LIF scans by spikeseq/kernels/_native.py (plain C ABI, ctypes) and called from
// spikeseq/kernels/egru/cpu.py, which holds the autograd function and the input projection W x (dense or
// event-driven). Layouts (all contiguous): sequences [T, B, H], pre-activations A [T, B, 3H], the recurrent
// weights transposed, RT = R^T [H, 3H] (row j = what unit j's event sends to the three gates), or the same matrix in
// compressed rows (rowptr [H + 1] int64, col [nnz] int32, val [nnz]) when the weights are pruned.
//
// Where the sparsity is used:
//   forward   h = b_h + R y[t-1] sums only the rows j of RT with y[t-1, j] != 0 (the units that sent an event),
//             each a contiguous row of 3H numbers (or its CSR nonzeros): cost nnz(y) * 3H instead of H * 3H; with
//             pruned R, whichever is cheaper at the step's activity of that scatter and a batched product over
//             blocks of rows (every nonzero of R once per vector of rows; csr.h);
//   backward  dL/dy[t-1, j] = RT[j, :] . gh is computed only for units that fired at t-1 or lie inside the
//             pseudo-derivative's support (|c~ - theta| < width): for any other unit dy/dc~ = e + c~ * de/dc~ = 0,
//             so the skipped value would be multiplied by zero (sparse BPTT, exact). dL/dR^T[j, :] += y[j] gh
//             only for units with an event.
// The batch rows are independent in time, so threads split the batch for the whole loop; each thread
// accumulates its own dR, db_h and dtheta (summed by the caller). Sums run in a fixed order (ascending unit index),
// independent of the thread count. The products fuse their multiply-adds (FMA_OK); the rest is compiled with
// -ffp-contract=off (the element-wise gate arithmetic rounds like torch's separate ops). Compressed rows (building
// them, the weight-sparse products, the transposes they need): csr.h.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "../parallel.h"
#include "../simd.h"
#include "csr.h"
#include "gates.h"

namespace {

#define RS __restrict__

using spikeseq::by_row_length;
using spikeseq::csr_block;
using spikeseq::csr_count;
using spikeseq::csr_fill;
using spikeseq::csr_fill_rows;
using spikeseq::csr_mm;
using spikeseq::csr_rows;
using spikeseq::csr_transpose;
using spikeseq::CsrScratch;
using spikeseq::kVecBytes;
using spikeseq::LineVector;
using spikeseq::load;
using spikeseq::nonzeros;
using spikeseq::parallel;
using spikeseq::splat;
using spikeseq::store;
using spikeseq::transpose;
using spikeseq::Vec;

// Transparent huge pages for the 2 MiB-aligned interior of a large array about to be written (Linux, where THP is
// enabled "always" or "madvise"; elsewhere, and for an array holding no whole aligned 2 MiB, nothing). The
// sequences a training step writes ([T, B, H] states and gates, [T, B, 3H] projections and gate gradients: about
// 200 MB per layer at T 256, B 32, H 512) are fresh memory from the allocator on every call, first touched here:
// page by page (4 KiB) the
// kernel's fault handling cost about a tenth of the 2 x 512 language model's training step on a 2-core Sapphire
// Rapids (one thread, perf samples), and advising them cut the step by 5-8 % (medians of 12-14, interleaved). The
// values computed are the same.
template <typename S>
void advise_huge(S* p, int64_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p), b = a + uintptr_t(n) * sizeof(S);
  const uintptr_t a2 = (a + kHuge - 1) & ~(kHuge - 1), b2 = b & ~(kHuge - 1);
  if (p && n > 0 && b2 > a2) madvise(reinterpret_cast<void*>(a2), b2 - a2, MADV_HUGEPAGE);  // advice only
#else
  (void)p, (void)n;
#endif
}

// dst[c0 : c0 + U*L] = init (or 0) + sum_p w[p] * src[list[p], c0 : ...]; U accumulators in registers.
#define FMA_OK __attribute__((optimize("fp-contract=fast")))

template <typename S, int U>
FMA_OK inline void block_axpy(const S* RS src, int64_t O, const int32_t* RS list, const S* RS w, int64_t n, int64_t c0,
                       const S* init, S* dst) {
  constexpr int L = kVecBytes / sizeof(S);
  Vec<S> acc[U];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) acc[u] = init ? load(init + c0 + u * L) : Vec<S>{};
  for (int64_t p = 0; p < n; ++p) {
    const S* RS row = src + int64_t(list[p]) * O + c0;
    const Vec<S> s = splat(w[p]);
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) acc[u] += s * load(row + u * L);
  }
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) store(dst + c0 + u * L, acc[u]);
}

// dst[:O] = init (or 0) + sum_p w[p] * src[list[p], :]
template <typename S>
void weighted_rows(const S* RS src, int64_t O, const int32_t* RS list, const S* RS w, int64_t n, const S* init,
                   S* dst) {
  constexpr int L = kVecBytes / sizeof(S);
  int64_t c = 0;
  for (; c + 8 * L <= O; c += 8 * L) block_axpy<S, 8>(src, O, list, w, n, c, init, dst);
  for (; c + L <= O; c += L) block_axpy<S, 1>(src, O, list, w, n, c, init, dst);
  for (; c < O; ++c) {
    S s = init ? init[c] : S(0);
    for (int64_t p = 0; p < n; ++p) s += w[p] * src[int64_t(list[p]) * O + c];
    dst[c] = s;
  }
}

// dst[col[q]] += s * val[q] for q in [q, q_end): whole vectors of one CSR row at a time with AVX-512 gather /
// scatter (the columns of one row are distinct, so a vector never writes one element twice; a fused multiply-add,
// rounded once, as the scalar loop of weighted_rows_csr and the batched csr_rows: the same result bit for bit).
// Returns where the scalar tail starts. On a 2-core Sapphire Rapids, 5 % of a [512, 1536] R^T times 17 % active
// units, B 32, T 256: 31 ms scalar, 24 ms here.
inline int64_t scatter_add_run(float s, const int32_t* RS col, const float* RS val, int64_t q, int64_t q_end,
                               float* dst) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
  const __m512 sv = _mm512_set1_ps(s);
  for (; q + 16 <= q_end; q += 16) {
    const __m512i idx = _mm512_loadu_si512(col + q);
    const __m512 d = _mm512_i32gather_ps(idx, dst, 4);
    _mm512_i32scatter_ps(dst, idx, _mm512_fmadd_ps(sv, _mm512_loadu_ps(val + q), d), 4);
  }
  if (q < q_end) {  // the rest of the row under a mask
    const __mmask16 m = __mmask16((1u << (q_end - q)) - 1u);
    const __m512i idx = _mm512_maskz_loadu_epi32(m, col + q);
    const __m512 d = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, dst, 4);
    _mm512_mask_i32scatter_ps(dst, m, idx, _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(m, val + q), d), 4);
    q = q_end;
  }
#else
  (void)s, (void)col, (void)val, (void)q_end, (void)dst;
#endif
  return q;
}
inline int64_t scatter_add_run(double s, const int32_t* RS col, const double* RS val, int64_t q, int64_t q_end,
                               double* dst) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
  const __m512d sv = _mm512_set1_pd(s);
  for (; q + 8 <= q_end; q += 8) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + q));
    const __m512d d = _mm512_i32gather_pd(idx, dst, 8);
    _mm512_i32scatter_pd(dst, idx, _mm512_fmadd_pd(sv, _mm512_loadu_pd(val + q), d), 8);
  }
  if (q < q_end) {
    const __mmask8 m = __mmask8((1u << (q_end - q)) - 1u);
    const __m256i idx = _mm256_maskz_loadu_epi32(m, col + q);
    const __m512d d = _mm512_mask_i32gather_pd(_mm512_setzero_pd(), m, idx, dst, 8);
    _mm512_mask_i32scatter_pd(dst, m, idx, _mm512_fmadd_pd(sv, _mm512_maskz_loadu_pd(m, val + q), d), 8);
    q = q_end;
  }
#else
  (void)s, (void)col, (void)val, (void)q_end, (void)dst;
#endif
  return q;
}

// CSR form of weighted_rows: dst = init (or 0) + sum_p w[p] * row list[p] of the compressed matrix (multiply-adds
// fused where the target has them, like every other product of the recurrent input).
template <typename S>
FMA_OK void weighted_rows_csr(const int64_t* RS rowptr, const int32_t* RS col, const S* RS val, int64_t O,
                       const int32_t* RS list, const S* RS w, int64_t n, const S* init, S* dst) {
  for (int64_t c = 0; c < O; ++c) dst[c] = init ? init[c] : S(0);
  for (int64_t p = 0; p < n; ++p) {
    const int64_t j = list[p];
    const S s = w[p];
    int64_t q = rowptr[j];
    q = scatter_add_run(s, col, val, q, rowptr[j + 1], dst);
    for (; q < rowptr[j + 1]; ++q) dst[col[q]] += s * val[q];
  }
}

template <typename S>
FMA_OK inline S dot(const S* RS a, const S* RS b, int64_t n) {
  constexpr int L = kVecBytes / sizeof(S);
  Vec<S> acc0{}, acc1{};
  int64_t c = 0;
  for (; c + 2 * L <= n; c += 2 * L) {
    acc0 += load(a + c) * load(b + c);
    acc1 += load(a + c + L) * load(b + c + L);
  }
  for (; c + L <= n; c += L) acc0 += load(a + c) * load(b + c);
  acc0 += acc1;
  S s = S(0);
  for (int k = 0; k < L; ++k) s += acc0[k];
  for (; c < n; ++c) s += a[c] * b[c];
  return s;
}

// exp on whole vectors (the scalar libm calls cost more than the rest of the loop): Cody-Waite reduction
// x = n ln2 + r, |r| <= ln2/2, a Taylor polynomial of r (degree 11 for double: truncation < 1e-15 relative; degree 7
// for float), times 2^n built in the exponent bits. Inputs are clamped to the finite range of the type.
template <typename S>
struct ExpConst;
template <>
struct ExpConst<double> {
  using I = int64_t;
  static constexpr double hi = 709.0, lo = -708.0, log2e = 1.4426950408889634, shifter = 6755399441055744.0;
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  static constexpr int degree = 11, mant = 52;
  static constexpr I bias = 1023;
};
template <>
struct ExpConst<float> {
  using I = int32_t;
  static constexpr float hi = 88.0f, lo = -87.0f, log2e = 1.44269504f, shifter = 12582912.0f;
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  static constexpr int degree = 7, mant = 23;
  static constexpr I bias = 127;
};

// The Taylor coefficients of vexp, computed once at compile time by the same rounded operations as a loop at run
// time would do: lead = 1/degree! (successive divisions), then c[k] = lead * degree * ... * k = 1/(k-1)! for the
// Horner step of degree k. (Computing them inside vexp cost a division chain and a multiply per step of every call:
// GCC does not fold floating-point loops at -O2.)
template <typename S>
struct ExpTaylor {
  static constexpr int D = ExpConst<S>::degree;
  S lead{};
  S c[D + 1]{};
  constexpr ExpTaylor() {
    S coef = S(1);
    for (int k = 2; k <= D; ++k) coef /= S(k);
    lead = coef;
    for (int k = D; k >= 1; --k) {
      coef *= S(k);
      c[k] = coef;
    }
  }
};

template <typename S>
inline Vec<S> vexp(Vec<S> x) {
  using C = ExpConst<S>;
  using I = typename C::I;
  typedef I IV __attribute__((vector_size(kVecBytes)));
  static constexpr ExpTaylor<S> T{};
  x = x > C::hi ? splat<S>(C::hi) : x;
  x = x < C::lo ? splat<S>(C::lo) : x;
  const Vec<S> t = x * C::log2e + C::shifter;
  const Vec<S> n = t - C::shifter;
  const Vec<S> r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  Vec<S> p = splat<S>(T.lead);  // Horner from 1/degree! down to 1
#pragma GCC unroll 16
  for (int k = C::degree; k >= 1; --k) p = p * r + T.c[k];
  const IV ni = (IV)t - (IV)splat<S>(C::shifter);
  const IV bits = (ni + C::bias) << C::mant;
  return p * (Vec<S>)bits;
}

template <typename S>
inline Vec<S> vsigmoid(Vec<S> x) {
  return S(1) / (S(1) + vexp<S>(-x));
}

template <typename S>
inline Vec<S> vtanh(Vec<S> x) {
  return S(1) - S(2) / (vexp<S>(x + x) + S(1));
}

// dst[q, j] = sum_k a[q, k] * b[k, j] for a [M, K] (rows lda apart), b [K, N] row-major, dst [M, N]: a register-blocked
// product (QB rows x JV vectors of accumulators, one broadcast of a[q, k] per vector of b) for the dense part of the
// backward (dL/dy[t-1] = gh R when most units need it). Sums run over k in ascending order for every entry.
template <typename S, int QB, int JV>
FMA_OK inline void mm_block(const S* RS a, int64_t lda, const S* RS b, int64_t K, int64_t N, int64_t j0, S* RS dst,
                            int64_t ldd) {
  constexpr int L = kVecBytes / sizeof(S);
  Vec<S> acc[QB][JV];
#pragma GCC unroll 8
  for (int u = 0; u < QB; ++u)
#pragma GCC unroll 8
    for (int v = 0; v < JV; ++v) acc[u][v] = Vec<S>{};
  for (int64_t k = 0; k < K; ++k) {
    Vec<S> bv[JV];
#pragma GCC unroll 8
    for (int v = 0; v < JV; ++v) bv[v] = load(b + k * N + j0 + v * L);
#pragma GCC unroll 8
    for (int u = 0; u < QB; ++u) {
      const Vec<S> s = splat(a[u * lda + k]);
#pragma GCC unroll 8
      for (int v = 0; v < JV; ++v) acc[u][v] += s * bv[v];
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < QB; ++u)
#pragma GCC unroll 8
    for (int v = 0; v < JV; ++v) store(dst + u * ldd + j0 + v * L, acc[u][v]);
}

// Accumulator tile of the product: 6 rows x kMmVecs vectors (12 of the 16 AVX2 registers, 24 of the 32 AVX-512 ones).
constexpr int kMmVecs = kVecBytes == 64 ? 4 : 2;

// b [K, N] row-major packed into column panels of P = kMmVecs vectors, panel p = b[:, p P : (p + 1) P] as [K, P]
// contiguous (zero-padded): the product then streams each panel linearly instead of reading one cache line per row
// at a stride of N (a power of two for the usual widths, which maps a whole panel onto a few cache sets).
template <typename S>
LineVector<S> pack_panels(const S* RS b, int64_t K, int64_t N) {
  constexpr int64_t P = kMmVecs * (kVecBytes / sizeof(S));
  const int64_t np = (N + P - 1) / P;
  LineVector<S> out(np * K * P, S(0));
  for (int64_t p = 0; p < np; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < P && p * P + c < N; ++c) out[(p * K + k) * P + c] = b[k * N + p * P + c];
  return out;
}

// One column panel p of dst [QB rows] = a x b (b packed by pack_panels); the last, partial panel through a buffer.
template <typename S, int QB>
void mm_panel(const S* RS a, int64_t lda, const S* RS bp, int64_t K, int64_t N, int64_t p, S* RS dst, int64_t ldd) {
  constexpr int64_t P = kMmVecs * (kVecBytes / sizeof(S));
  const S* RS panel = bp + p * K * P;
  if ((p + 1) * P <= N) {
    mm_block<S, QB, kMmVecs>(a, lda, panel, K, P, 0, dst + p * P, ldd);
  } else {
    S tmp[QB * P];
    mm_block<S, QB, kMmVecs>(a, lda, panel, K, P, 0, tmp, P);
    for (int u = 0; u < QB; ++u)
      for (int64_t c = 0; p * P + c < N; ++c) dst[u * ldd + p * P + c] = tmp[u * P + c];
  }
}

// dst [M, N] = a [M, K] (rows lda apart) x b [K, N], b given as pack_panels(b). Panel-outer order: one panel of b
// (K x P, 384 KiB at K = 1536, P = 64 floats) is read from memory once and then stays in L2 while every block of
// rows of a uses it. Row-block-outer order re-read the whole of b (3 MiB at 1536 x 512) once per block of 6 rows:
// on a 2-core Sapphire Rapids the EGRU-512 backward's per-step product gh R ([32, 1536] x [1536, 512]) took 0.59 ms
// that way and takes 0.32 ms panel-outer (MKL's sgemm: 0.26 ms).
template <typename S>
void small_mm(const S* RS a, int64_t lda, const S* RS bp, int64_t M, int64_t K, int64_t N, S* RS dst, int64_t ldd) {
  constexpr int64_t P = kMmVecs * (kVecBytes / sizeof(S));
  for (int64_t p = 0; p * P < N; ++p) {
    int64_t q = 0;
    for (; q + 6 <= M; q += 6) mm_panel<S, 6>(a + q * lda, lda, bp, K, N, p, dst + q * ldd, ldd);
    if (q + 4 <= M) {
      mm_panel<S, 4>(a + q * lda, lda, bp, K, N, p, dst + q * ldd, ldd);
      q += 4;
    }
    if (q + 2 <= M) {
      mm_panel<S, 2>(a + q * lda, lda, bp, K, N, p, dst + q * ldd, ldd);
      q += 2;
    }
    for (; q < M; ++q) mm_panel<S, 1>(a + q * lda, lda, bp, K, N, p, dst + q * ldd, ldd);
  }
}

// One vector of units through the step equations (functional/egru.py), writing what the backward needs.
template <typename S>
inline void gates(const S* ar, const S* az, const S* an, const S* hr, const S* hz, const S* hn, const S* cp,
                  const S* th, const S* m, S* sr, S* sz, S* sn, S* shn, S* sct, S* cseq, S* e, S* y) {
  const Vec<S> r = vsigmoid<S>(load(ar) + load(hr));
  const Vec<S> z = vsigmoid<S>(load(az) + load(hz));
  const Vec<S> hnv = load(hn);
  const Vec<S> nn = vtanh<S>(load(an) + r * hnv);
  const Vec<S> c0 = load(cp), thv = load(th);
  const Vec<S> ct = z * c0 + (S(1) - z) * nn;
  const Vec<S> ev = (ct - thv) > S(0) ? splat<S>(S(1)) : splat<S>(S(0));
  Vec<S> c = ct - ev * thv;
  if (m) {
    const Vec<S> mv = load(m);
    c = mv * c0 + (S(1) - mv) * c;
  }
  store(sr, r);
  store(sz, z);
  store(sn, nn);
  store(shn, hnv);
  store(sct, ct);
  store(cseq, c);
  store(e, ev);
  store(y, ev * ct);
}

struct Weights {
  const void* r;          // dense R [3H, H] (weight_hh itself; the backward's dense product), or null when csr
  const void* rt;         // dense R^T [H, 3H], or null when csr
  const int64_t* rowptr;  // CSR of R^T (when rt is null)
  const int32_t* col;
  const void* val;
  const int64_t* o_rowptr;  // CSR of R itself, one row per gate output (the forward's batched product), or null
  const int32_t* o_col;
  const void* o_val;
};

// dst[c_begin : c_end] = init + sum_p w[p] * src[list[p], c_begin : c_end] (blocks of 8 vectors, then 1, then scalars).
template <typename S>
void weighted_rows_range(const S* RS src, int64_t O, const int32_t* RS list, const S* RS w, int64_t n,
                         int64_t c_begin, int64_t c_end, const S* init, S* dst) {
  constexpr int L = kVecBytes / sizeof(S);
  int64_t c = c_begin;
  for (; c + 8 * L <= c_end; c += 8 * L) block_axpy<S, 8>(src, O, list, w, n, c, init, dst);
  for (; c + L <= c_end; c += L) block_axpy<S, 1>(src, O, list, w, n, c, init, dst);
  for (; c < c_end; ++c) {
    S s = init ? init[c] : S(0);
    for (int64_t p = 0; p < n; ++p) s += w[p] * src[int64_t(list[p]) * O + c];
    dst[c] = s;
  }
}

// The full column panels of P = 8 vectors of src [K, O] (row-major), panel p = src[:, p P : (p + 1) P] as [K, P]
// contiguous: a gathered row of a panel is 8 vectors in a row of 4 cache lines, and consecutive rows are adjacent
// (rows O apart alias a few cache sets when O is a multiple of a power of two, e.g. 3H = 1536).
template <typename S>
LineVector<S> pack_gather_panels(const S* RS src, int64_t K, int64_t O) {
  constexpr int64_t P = 8 * (kVecBytes / sizeof(S));
  const int64_t np = O / P;
  LineVector<S> out(np * K * P);
  for (int64_t p = 0; p < np; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < P; ++c) out[(p * K + k) * P + c] = src[k * O + p * P + c];
  return out;
}

// Panel p (or, for p = O / P, the remaining columns from src itself) of
// dst[:O] = init (or 0) + sum_q w[q] * src[list[q], :] with pan = pack_gather_panels(src).
template <typename S>
inline void gather_panel(const S* RS src, const S* RS pan, int64_t K, int64_t O, int64_t p, const int32_t* RS list,
                         const S* RS w, int64_t n, const S* init, S* dst) {
  constexpr int64_t P = 8 * (kVecBytes / sizeof(S));
  if ((p + 1) * P <= O)
    block_axpy<S, 8>(pan + p * K * P, P, list, w, n, 0, init ? init + p * P : nullptr, dst + p * P);
  else
    weighted_rows_range(src, O, list, w, n, p * P, O, init, dst);
}

// The input of a fused inference forward: x [T, B, I] and the pruned W_ih [3H, I] in compressed rows (plus b_ih):
// each step's projection W x[t] + b_ih is computed for the thread's rows into a [rows, 3H] buffer right before the
// step's gates, instead of a [T, B, 3H] array written by one product and read back by the loop.
template <typename S>
struct StepInput {
  const S* x;
  int64_t I;
  const int64_t* rowptr;
  const int32_t* col;
  const S* val;
  const S* bias;
};

// Scattered multiply-adds of the active units' compressed rows of R^T (weighted_rows_csr, one per active unit and
// nonzero weight) against one vector multiply-add per nonzero weight of R and vector of rows (csr_rows): whether
// this step's activity makes the scatter the cheaper of the two. Measured on a 2-core Sapphire Rapids (AVX-512, one
// thread) with the trained 2 x 512 language model's layer-1 events (17 % active) and its 95 %-pruned R, over 8192
// rows: scatter 37 ms (0.66 ns per active-unit weight), batched 18.6 ms including a 50 MB write-back that the loop
// does not have (about 0.7 ns per nonzero weight and vector of rows): the scatter pays below about 1.1 times as many
// scattered multiply-adds as batched ones.
constexpr double kScatterPerBatched = 1.1;

inline bool scattered_pays(const int64_t* RS rowptr, const int32_t* RS list, const int64_t* RS cnt, int64_t nb,
                           int64_t H, int64_t nnz, int64_t lanes) {
  int64_t scattered = 0;
  for (int64_t q = 0; q < nb; ++q)
    for (int64_t p = 0; p < cnt[q]; ++p) scattered += rowptr[list[q * H + p] + 1] - rowptr[list[q * H + p]];
  const int64_t vectors = (nb + lanes - 1) / lanes;
  return double(scattered) < kScatterPerBatched * double(nnz) * double(vectors);
}

// Forward. Each thread owns a range of batch rows for the whole sequence; per step, the recurrent products of all
// its rows run column block by column block, so that one block of R^T (H x 64 floats) stays in L2 while every
// row sums its active units (R^T is read from memory once per step, not once per batch row).
template <typename S>
void egru_fwd(int64_t T, int64_t B, int64_t H, const S* RS A, Weights W, const S* RS bh, const S* RS th,
              const S* RS mask, const S* RS c0, const S* RS y0, S* RS y, S* RS e, S* RS sr, S* RS sz, S* RS sn,
              S* RS shn, S* RS sct, S* RS cseq, int nth, const StepInput<S>* in = nullptr, bool cs_ring = false) {
  const int64_t G = 3 * H;
  constexpr int L = kVecBytes / sizeof(S);
  const LineVector<S> rpan = W.rt ? pack_gather_panels(static_cast<const S*>(W.rt), H, G) : LineVector<S>();
  const std::vector<int32_t> in_order = in ? by_row_length(in->rowptr, G) : std::vector<int32_t>();
  const std::vector<int32_t> rec_order = W.o_rowptr ? by_row_length(W.o_rowptr, G) : std::vector<int32_t>();
  const int64_t rec_nnz = W.o_rowptr ? W.o_rowptr[G] : 0;
  for (S* out : {y, e, sr, sz, sn, shn, sct}) advise_huge(out, T * B * H);
  advise_huge(cseq, (cs_ring ? 2 : T) * B * H);
  parallel(B, nth, [&](int64_t b0, int64_t b1) {
    const int64_t nb = b1 - b0;
    LineVector<S> h(nb * G), wbuf(nb * H);
    std::vector<int32_t> list(nb * H);
    std::vector<int64_t> cnt(nb);
    // inference (sr == nullptr): r, z, n, h_n, c~ go to one scratch row instead of [T, B, H] arrays
    const bool save = sr != nullptr;
    LineVector<S> scratch(save ? 0 : 5 * H);
    LineVector<S> astep(in ? nb * G : 0);  // this step's input projection of the owned rows (fused input)
    std::unique_ptr<CsrScratch<S>> in_scratch(in ? new CsrScratch<S>(in->I, G) : nullptr);
    std::unique_ptr<CsrScratch<S>> rec_scratch(W.o_rowptr ? new CsrScratch<S>(H, G) : nullptr);
    // the state sequence: [T, B, H], or two alternating [B, H] slots when only the last state is wanted (cs_ring)
    auto c_at = [&](int64_t tt, int64_t b) { return ((cs_ring ? tt % 2 : tt) * B + b) * H; };
    for (int64_t t = 0; t < T; ++t) {
      if (in)
        csr_rows<S>(nb, in->I, G, in->x + (t * B + b0) * in->I, in->I, in_order.data(), in->rowptr, in->col, in->val,
                    in->bias, astep.data(), G, *in_scratch);
      for (int64_t q = 0; q < nb; ++q) {
        const int64_t b = b0 + q;
        const S* yp = t ? y + ((t - 1) * B + b) * H : y0 + b * H;
        cnt[q] = nonzeros(yp, H, list.data() + q * H, wbuf.data() + q * H);
      }
      if (W.rt) {
        const S* RS rt = static_cast<const S*>(W.rt);
        for (int64_t p = 0; p * 8 * L < G; ++p)
          for (int64_t q = 0; q < nb; ++q)
            gather_panel(rt, rpan.data(), H, G, p, list.data() + q * H, wbuf.data() + q * H, cnt[q], bh,
                         h.data() + q * G);
      } else if (rec_scratch && scattered_pays(W.rowptr, list.data(), cnt.data(), nb, H, rec_nnz, L)) {
        for (int64_t q = 0; q < nb; ++q)
          weighted_rows_csr(W.rowptr, W.col, static_cast<const S*>(W.val), G, list.data() + q * H,
                            wbuf.data() + q * H, cnt[q], bh, h.data() + q * G);
      } else if (rec_scratch) {  // every nonzero weight once per vector of rows, active or not
        csr_rows<S>(nb, H, G, t ? y + ((t - 1) * B + b0) * H : y0 + b0 * H, H, rec_order.data(), W.o_rowptr,
                    W.o_col, static_cast<const S*>(W.o_val), bh, h.data(), G, *rec_scratch);
      } else {
        for (int64_t q = 0; q < nb; ++q)
          weighted_rows_csr(W.rowptr, W.col, static_cast<const S*>(W.val), G, list.data() + q * H,
                            wbuf.data() + q * H, cnt[q], bh, h.data() + q * G);
      }
      for (int64_t q = 0; q < nb; ++q) {
        const int64_t b = b0 + q;
        const S* hb = h.data() + q * G;
        const S* cp = t ? cseq + c_at(t - 1, b) : c0 + b * H;
        const int64_t o = (t * B + b) * H, oc = c_at(t, b);
        const S* a = in ? astep.data() + q * G : A + (t * B + b) * G;
        const S* m = mask ? mask + o : nullptr;
        const int64_t os = save ? o : 0;
        S* RS xr = save ? sr : scratch.data();
        S* RS xz = save ? sz : scratch.data() + H;
        S* RS xn = save ? sn : scratch.data() + 2 * H;
        S* RS xhn = save ? shn : scratch.data() + 3 * H;
        S* RS xct = save ? sct : scratch.data() + 4 * H;
        int64_t i = 0;
        for (; i + L <= H; i += L)
          gates<S>(a + i, a + H + i, a + 2 * H + i, hb + i, hb + H + i, hb + 2 * H + i, cp + i, th + i,
                   m ? m + i : nullptr, xr + os + i, xz + os + i, xn + os + i, xhn + os + i, xct + os + i,
                   cseq + oc + i, e + o + i, y + o + i);
        if (i < H) {  // the tail through padded copies (one code path: the same rounding for every unit)
          S in[9][L] = {}, out[8][L];
          const S* src[9] = {a + i, a + H + i, a + 2 * H + i, hb + i, hb + H + i, hb + 2 * H + i, cp + i, th + i,
                             m ? m + i : nullptr};
          for (int k = 0; k < 9; ++k)
            for (int64_t u = 0; u < H - i; ++u) in[k][u] = src[k] ? src[k][u] : S(0);
          gates<S>(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], m ? in[8] : nullptr, out[0], out[1],
                   out[2], out[3], out[4], out[5], out[6], out[7]);
          S* dst[8] = {xr + os + i, xz + os + i, xn + os + i, xhn + os + i, xct + os + i, cseq + oc + i, e + o + i,
                       y + o + i};
          for (int k = 0; k < 8; ++k)
            for (int64_t u = 0; u < H - i; ++u) dst[k][u] = out[k][u];
        }
      }
    }
  }, 1, 1);
}

// hT[o, :] = bh[o] + sum_j yT[j, :] * R[o, j] for one block of rows held transposed (yT [H, RB], hT [3H, RB]) by
// scattering the active units' compressed rows of R^T lane by lane (the low-activity alternative to csr_block):
// each entry sums its units in ascending order with fused multiply-adds, as csr_block does.
template <typename S>
FMA_OK void scatter_block(int64_t H, int64_t G, const S* RS yT, const int64_t* RS rowptr, const int32_t* RS col,
                          const S* RS val, const S* RS bh, S* RS hT) {
  static_assert(CsrScratch<S>::NV == 1, "one vector of rows per gate output");
  constexpr int64_t RB = CsrScratch<S>::RB;
  for (int64_t o = 0; o < G; ++o) store(hT + o * RB, splat<S>(bh[o]));
  for (int64_t j = 0; j < H; ++j)
    for (int64_t r = 0; r < RB; ++r) {
      const S s = yT[j * RB + r];
      if (s == S(0)) continue;
      for (int64_t q = rowptr[j]; q < rowptr[j + 1]; ++q) hT[col[q] * RB + r] += s * val[q];
    }
}

// Fused inference with pruned W_ih and R (both in compressed rows, no zoneout mask): each block of RB rows runs
// through the whole sequence on its own, its state held transposed ([units, RB], one lane per row). Per step the
// input block is transposed once, both products leave their results transposed (csr_block, no write-back), the
// gates run unit by unit over the block's rows (the same element-wise arithmetic as egru_fwd, so the same bits),
// the new events are already the next step's transposed recurrent input, and only y and e are transposed back into
// [T, B, H]. (egru_fwd's row-major loop transposed 4 H + I values per row and step for the two batched products,
// this loop 2 H + I: 11 % of the 2 x 512 pruned language model's forward went to transposes there.)
template <typename S>
void egru_infer_blocks(int64_t T, int64_t B, int64_t H, const StepInput<S>& in, Weights W, const S* RS bh,
                       const S* RS th, const S* RS c0, const S* RS y0, S* RS y, S* RS e, S* RS cs2, int nth) {
  static_assert(CsrScratch<S>::NV == 1, "the gates take one vector of rows per unit");
  constexpr int64_t RB = CsrScratch<S>::RB;
  const int64_t G = 3 * H, I = in.I;
  const std::vector<int32_t> in_order = by_row_length(in.rowptr, G);
  const std::vector<int32_t> rec_order = by_row_length(W.o_rowptr, G);
  const int64_t rec_nnz = W.o_rowptr[G];
  const S* RS o_val = static_cast<const S*>(W.o_val);
  const S* RS rt_val = static_cast<const S*>(W.val);
  const int64_t nblk = (B + RB - 1) / RB;
  parallel(nblk, nth, [&](int64_t k0, int64_t k1) {
    LineVector<S> xt(I * RB), aT(G * RB), hT(G * RB), yT(2 * H * RB), cT(2 * H * RB), eT(H * RB), thb(H * RB),
        scratch(5 * RB);
    for (int64_t i = 0; i < H; ++i) store(thb.data() + i * RB, splat<S>(th[i]));
    for (int64_t blk = k0; blk < k1; ++blk) {
      const int64_t r0 = blk * RB, nr = std::min(RB, B - r0);
      transpose(c0 + r0 * H, H, nr, H, cT.data(), RB, RB);
      transpose(y0 + r0 * H, H, nr, H, yT.data(), RB, RB);
      for (int64_t t = 0; t < T; ++t) {
        S* RS yp = yT.data() + (t % 2) * H * RB;  // y[t - 1], transposed
        S* RS yn = yT.data() + ((t + 1) % 2) * H * RB;
        const S* RS cp = cT.data() + (t % 2) * H * RB;
        S* RS cn = cT.data() + ((t + 1) % 2) * H * RB;
        transpose(in.x + (t * B + r0) * I, I, nr, I, xt.data(), RB, RB);
        csr_block<S, CsrScratch<S>::NV>(in_order.data(), G, xt.data(), in.rowptr, in.col, in.val, in.bias,
                                        aT.data());
        int64_t scattered = 0;
        for (int64_t j = 0; j < H; ++j) {
          int64_t active = 0;
          for (int64_t r = 0; r < RB; ++r) active += yp[j * RB + r] != S(0);
          scattered += active * (W.rowptr[j + 1] - W.rowptr[j]);
        }
        if (double(scattered) < kScatterPerBatched * double(rec_nnz))
          scatter_block(H, G, yp, W.rowptr, W.col, rt_val, bh, hT.data());
        else
          csr_block<S, CsrScratch<S>::NV>(rec_order.data(), G, yp, W.o_rowptr, W.o_col, o_val, bh, hT.data());
        const S* RS a = aT.data();
        const S* RS h = hT.data();
        S* RS sc = scratch.data();
        for (int64_t i = 0; i < H; ++i)
          gates<S>(a + i * RB, a + (H + i) * RB, a + (2 * H + i) * RB, h + i * RB, h + (H + i) * RB,
                   h + (2 * H + i) * RB, cp + i * RB, thb.data() + i * RB, nullptr, sc, sc + RB, sc + 2 * RB,
                   sc + 3 * RB, sc + 4 * RB, cn + i * RB, eT.data() + i * RB, yn + i * RB);
        transpose(yn, RB, H, nr, y + (t * B + r0) * H, H, H);
        transpose(eT.data(), RB, H, nr, e + (t * B + r0) * H, H, H);
        if (t == T - 1) transpose(cn, RB, H, nr, cs2 + ((T - 1) % 2 * B + r0) * H, H, H);
      }
    }
  }, 1, 1);
}

// Loads, stores and lane-wise selection for code written once for a scalar (V = S) and a vector (V = Vec<S>).
template <typename V, typename S>
inline V ld(const S* p) {
  if constexpr (std::is_same_v<V, S>) return *p; else return load(p);
}
template <typename V, typename S>
inline void st(S* p, V v) {
  if constexpr (std::is_same_v<V, S>) *p = v; else store(p, v);
}
template <typename V>
inline V pick(V lhs, V rhs, V a, V b) {  // lhs > rhs ? a : b, lane by lane
  return lhs > rhs ? a : b;
}
// One step of the backward's element-wise part for one unit (V = S) or one vector of units (V = Vec<S>): from
// dL/dy (the output's and the next step's recurrent share), dL/de, the zoneout mask and the next state's gradient
// gc, it writes the gate gradients (spikeseq::gate_adjoint), adds the threshold's gradient and replaces gc by the
// gradient of the previous state. Pseudo-derivative: damp * max(0, 1 - |c~ - theta| / width). The vector form
// does the scalar form's operations lane by lane (the same rounding); with -O2 GCC did not vectorise the scalar
// loop (its 9 input and 4 output streams), so the vector form is written out.
template <typename V, typename S>
inline void unit_adjoint(const S* RS sct, const S* RS sr, const S* RS sz, const S* RS sn, const S* RS shn,
                         const S* RS cp, const S* RS th, const S* RS gyo, const S* RS gyb, const S* RS geo,
                         const S* RS mo, S* RS gcb, S width, S damp, int64_t H, S* RS gth, S* RS gat, S* RS ghb,
                         S* RS gbh) {
  const V one = V{} + S(1), zero = V{};
  const V ct = ld<V>(sct), r = ld<V>(sr), z = ld<V>(sz), nn = ld<V>(sn), thv = ld<V>(th);
  const V x = ct - thv;
  const V ev = pick<V>(x, zero, one, zero);
  const V ax = pick<V>(zero, x, zero - x, x);
  const V lin = ax / (zero - width) + one;
  const V pd = pick<V>(lin, zero, lin, zero) * damp;
  const V gy = ld<V>(gyo) + ld<V>(gyb);
  const V m = ld<V>(mo);
  const V gco = ld<V>(gcb);
  const V gcn = (one - m) * gco;
  const V get = ld<V>(geo) + gy * ct - gcn * thv;
  const V gct = gcn + gy * ev + get * pd;
  st(gth, ld<V>(gth) + (-(ev * gcn) - get * pd));
  const spikeseq::GateAdjoint<V> g = spikeseq::gate_adjoint(gct, r, z, nn, ld<V>(shn), ld<V>(cp));
  st(gat, g.a_r);
  st(gat + H, g.a_z);
  st(gat + 2 * H, g.a_n);
  st(ghb, g.a_r);
  st(ghb + H, g.a_z);
  st(ghb + 2 * H, g.rh_n);
  st(gbh, ld<V>(gbh) + g.a_r);  // the recurrent bias's gradient: gh summed over rows and steps
  st(gbh + H, ld<V>(gbh + H) + g.a_z);
  st(gbh + 2 * H, ld<V>(gbh + 2 * H) + g.rh_n);
  st(gcb, gct * z + m * gco);
}

// Integers of the width of S (a vector compare's lane mask: 0 or -1).
template <typename S>
using MaskInt = std::conditional_t<sizeof(S) == 8, int64_t, int32_t>;

// need[j] = nonzero iff unit j fired or lies inside the pseudo-derivative's support, x = c~[j] - theta[j] > 0 or
// |x| / width < 1 (the units whose dL/dy the backward must compute); returns how many do.
template <typename S>
int64_t support_mask(const S* RS ct, const S* RS th, S width, int64_t H, MaskInt<S>* RS need) {
  using I = MaskInt<S>;
  typedef I IV __attribute__((vector_size(kVecBytes)));
  constexpr int L = kVecBytes / sizeof(S);
  const Vec<S> zero{}, one = zero + S(1);
  IV count{};
  int64_t j = 0;
  for (; j + L <= H; j += L) {
    const Vec<S> x = load(ct + j) - load(th + j);
    const Vec<S> ax = zero > x ? zero - x : x;
    const IV m = (x > zero) | (ax / width < one);
    __builtin_memcpy(need + j, &m, sizeof(m));
    count -= m;
  }
  int64_t n = 0;
  for (int u = 0; u < L; ++u) n += count[u];
  for (; j < H; ++j) {
    const S x = ct[j] - th[j];
    need[j] = x > S(0) || std::fabs(x) / width < S(1);
    n += need[j] != 0;
  }
  return n;
}

// Columns of gh (in vectors) per pass of pair_dots: a chunk of every owned row, nb x 16 vectors (32 KiB at nb = 32),
// stays in L1 while every needed (unit, row) pair of the step takes its share of the chunk.
constexpr int64_t kDotChunkVecs = 16;

// acc[k] += a[0 : nv vectors] * b[k][0 : nv vectors], lane by lane (one vector accumulator per pair).
template <typename S, int NQ>
FMA_OK inline void dot_chunk(const S* RS a, const S* const* b, int64_t nv, Vec<S>* RS acc) {
  constexpr int L = kVecBytes / sizeof(S);
  Vec<S> r[NQ];
#pragma GCC unroll 4
  for (int k = 0; k < NQ; ++k) r[k] = acc[k];
  for (int64_t v = 0; v < nv; ++v) {
    const Vec<S> av = load(a + v * L);
#pragma GCC unroll 4
    for (int k = 0; k < NQ; ++k) r[k] += av * load(b[k] + v * L);
  }
#pragma GCC unroll 4
  for (int k = 0; k < NQ; ++k) acc[k] = r[k];
}

// out[q * H + j] = RT[j, :] . gh[q, :] for the needed pairs (unit j, row q): for unit j the rows pq[jptr[j] :
// jptr[j + 1]]. Each product sums lane by lane over the full vectors in ascending column order, then the lanes in
// order, then the scalar tail (the sums of the unit-by-unit dot products this replaced, four rows per load of
// R^T: the same bits). Chunk-outer: each chunk of kDotChunkVecs vectors of every row of gh is packed contiguously
// (rows 3H apart alias a few L1 sets) and read from L1 by all pairs, whose vector accumulators carry over from
// chunk to chunk; unit-outer, the gh rows came from L2 once per pair (20 MB per step at B 32, 3H = 1536 and a fifth
// of the pairs needed). Groups of four pairs per load of R^T, then one of the rest. On the 2 x 512 language model
// (2-core Sapphire Rapids, one thread, about 20 % of the pairs needed) this and branch-free event lists took the
// training step from 847 to 809 ms (medians of 14, interleaved).
template <typename S>
FMA_OK void pair_dots(const S* RS rt, const S* RS gh, int64_t nb, int64_t H, int64_t G, const int64_t* RS jptr,
                      const int32_t* RS pq, LineVector<S>& pack, LineVector<S>& acc, S* RS out) {
  constexpr int L = kVecBytes / sizeof(S);
  const int64_t np = jptr[H], nfull = G / L;
  if (np == 0) return;
  if (int64_t(acc.size()) < np * L) acc.resize(np * L);
  if (int64_t(pack.size()) < nb * kDotChunkVecs * L) pack.resize(nb * kDotChunkVecs * L);
  Vec<S>* RS av = reinterpret_cast<Vec<S>*>(acc.data());
  for (int64_t p = 0; p < np; ++p) av[p] = Vec<S>{};
  for (int64_t v0 = 0; v0 < nfull; v0 += kDotChunkVecs) {
    const int64_t nv = std::min(kDotChunkVecs, nfull - v0), c0 = v0 * L, cw = nv * L;
    for (int64_t q = 0; q < nb; ++q)
      for (int64_t c = 0; c < cw; ++c) pack[q * cw + c] = gh[q * G + c0 + c];
    for (int64_t j = 0; j < H; ++j) {
      const S* RS a = rt + j * G + c0;
      int64_t p = jptr[j];
      const S* b[4];
      for (; p + 4 <= jptr[j + 1]; p += 4) {
        for (int k = 0; k < 4; ++k) b[k] = pack.data() + pq[p + k] * cw;
        dot_chunk<S, 4>(a, b, nv, av + p);
      }
      const int64_t rest = jptr[j + 1] - p;
      for (int k = 0; k < rest; ++k) b[k] = pack.data() + pq[p + k] * cw;
      if (rest == 3) dot_chunk<S, 3>(a, b, nv, av + p);
      if (rest == 2) dot_chunk<S, 2>(a, b, nv, av + p);
      if (rest == 1) dot_chunk<S, 1>(a, b, nv, av + p);
    }
  }
  for (int64_t j = 0; j < H; ++j)
    for (int64_t p = jptr[j]; p < jptr[j + 1]; ++p) {
      S s = S(0);
      for (int u = 0; u < L; ++u) s += av[p][u];
      const S* RS a = rt + j * G;
      const S* RS b = gh + pq[p] * G;
      for (int64_t c = nfull * L; c < G; ++c) s += a[c] * b[c];
      out[pq[p] * H + j] = s;
    }
}

// Steps whose dR^T contributions the backward sums in one pass over dR^T (a [H, 3H] matrix that does not stay in L2
// between steps at H = 512: once per step, its reads and writes bounded the pass).
constexpr int kDrBlock = 4;

// Backward (sparse BPTT). Per step: the element-wise gate gradients of every owned batch row (and the recurrent
// bias's gradient), then dL/dy[t-1, b, j] = R^T[j, :] . gh[b] for the (row, unit) pairs that need it (an event or
// inside the pseudo-derivative's support at t-1; every unit for y0: pair_dots), and, once per kDrBlock steps,
// dR^T[j, :] += y[t-1, b, j] gh[b] over the rows b where unit j sent an event (each row of dR^T read once per
// block). When more than dense_min of the pairs need dL/dy (a wide pseudo-derivative), one register-blocked
// product gh R computes them all (then the others are zeroed): a dense product at near-GEMM speed beats the
// per-pair products there.
template <typename S>
void egru_bwd(int64_t T, int64_t B, int64_t H, Weights W, const S* RS th, const S* RS mask, const S* RS c0,
              const S* RS y0, const S* RS y, const S* RS sr, const S* RS sz, const S* RS sn, const S* RS shn,
              const S* RS sct, const S* RS cseq, const S* RS gy_out, const S* RS ge_out, const S* RS gcT,
              const S* RS gyT, S width, S damp, double dense_min, S* RS ga, S* RS gc0, S* RS gy0, S* RS grt,
              S* RS gbh, S* RS gth, int64_t* RS counts, int nth) {
  if (B <= 0) return;  // an empty batch: nothing to propagate (the accumulators stay zero)
  const int64_t G = 3 * H;
  constexpr int L = kVecBytes / sizeof(S);
  const int64_t chunk = (B + nth - 1) / nth;
  // R [3H, H] in column panels for the dense product, built once per call by the first thread that needs it and
  // shared by the threads (not at all when no step is dense: a narrow pseudo-derivative)
  LineVector<S> rpan;
  std::once_flag rpan_once;
  advise_huge(ga, T * B * G);
  parallel(B, nth, [&](int64_t b0, int64_t b1) {
    const int k = int(b0 / chunk);  // this thread's slot of the per-thread accumulators
    const int64_t nb = b1 - b0;
    S* RS grt_k = grt + int64_t(k) * H * G;
    S* RS gbh_k = gbh + int64_t(k) * G;
    S* RS gth_k = gth + int64_t(k) * H;
    int64_t skipped = 0;
    // gh of the last kDrBlock steps, one after the other: dR^T is accumulated once per block of steps
    LineVector<S> ghs(kDrBlock * nb * G), gyr(nb * H), gc(nb * H);
    // the block's events: by row (ridx, rval, rcnt), then by unit (dptr [H + 1], elist, evals)
    LineVector<S> rval(kDrBlock * nb * H), evals(kDrBlock * nb * H);
    std::vector<int32_t> ridx(kDrBlock * nb * H), elist(kDrBlock * nb * H);
    std::vector<int64_t> rcnt(kDrBlock * nb), dptr(H + 1), dpos(H);
    int64_t block_t[kDrBlock];
    int nblock = 0;
    // dR^T[j, :] += y[t-1, b, j] gh[t, b] over the block's steps (newest first) and rows where unit j sent an event,
    // summed in registers in that order (the order of a step-by-step accumulation: the same rounding). The events
    // by unit: each row's nonzeros (vectorised, ascending unit), then a counting sort by unit that keeps the rows'
    // order (reading y[t-1, b, j] unit by unit, a load H apart per row, and branching on it took over a third of
    // the loop's own perf samples).
    auto accumulate_dr = [&]() {
      std::fill(dptr.begin(), dptr.end(), int64_t(0));
      int64_t tot = 0;
      for (int u = 0; u < nblock; ++u) {
        const int64_t ts = block_t[u];
        for (int64_t q = 0; q < nb; ++q) {
          const int64_t b = b0 + q;
          const int64_t n = nonzeros(ts ? y + ((ts - 1) * B + b) * H : y0 + b * H, H, ridx.data() + tot,
                                     rval.data() + tot);
          rcnt[u * nb + q] = n;
          for (int64_t p = tot; p < tot + n; ++p) ++dptr[ridx[p] + 1];
          tot += n;
        }
      }
      for (int64_t j = 0; j < H; ++j) {
        dptr[j + 1] += dptr[j];
        dpos[j] = dptr[j];
      }
      for (int64_t row = 0, p = 0; row < nblock * nb; ++row)
        for (const int64_t end = p + rcnt[row]; p < end; ++p) {
          const int64_t at = dpos[ridx[p]]++;
          elist[at] = int32_t(row);
          evals[at] = rval[p];
        }
      for (int64_t j = 0; j < H; ++j)
        if (dptr[j + 1] > dptr[j])
          weighted_rows(ghs.data(), G, elist.data() + dptr[j], evals.data() + dptr[j], dptr[j + 1] - dptr[j],
                        grt_k + j * G, grt_k + j * G);
      nblock = 0;
    };
    std::vector<MaskInt<S>> need(nb * H);
    std::vector<int64_t> jptr(H + 1);  // the needed pairs by unit (pair_dots)
    std::vector<int32_t> pq(nb * H + 1);
    LineVector<S> dot_pack, dot_acc;
    const std::vector<S> zeros(H, S(0));
    for (int64_t q = 0; q < nb; ++q)
      for (int64_t i = 0; i < H; ++i) {
        const int64_t b = b0 + q;
        gyr[q * H + i] = gyT ? gyT[b * H + i] : S(0);
        gc[q * H + i] = gcT ? gcT[b * H + i] : S(0);
      }
    for (int64_t t = T - 1; t >= 0; --t) {
      S* RS gh = ghs.data() + nblock * nb * G;
      for (int64_t q = 0; q < nb; ++q) {
        const int64_t b = b0 + q;
        const int64_t o = (t * B + b) * H;
        const S* cp = t ? cseq + ((t - 1) * B + b) * H : c0 + b * H;
        S* RS gat = ga + (t * B + b) * G;
        S* RS ghb = gh + q * G;
        S* RS gyb = gyr.data() + q * H;
        S* RS gcb = gc.data() + q * H;
        // absent inputs read a row of zeros: no branch in the loop, so that it vectorises
        const S* RS gyo = gy_out ? gy_out + o : zeros.data();
        const S* RS geo = ge_out ? ge_out + o : zeros.data();
        const S* RS mo = mask ? mask + o : zeros.data();
        int64_t i = 0;
        for (; i + L <= H; i += L)
          unit_adjoint<Vec<S>, S>(sct + o + i, sr + o + i, sz + o + i, sn + o + i, shn + o + i, cp + i, th + i,
                                  gyo + i, gyb + i, geo + i, mo + i, gcb + i, width, damp, H, gth_k + i, gat + i,
                                  ghb + i, gbh_k + i);
        for (; i < H; ++i)
          unit_adjoint<S, S>(sct + o + i, sr + o + i, sz + o + i, sn + o + i, shn + o + i, cp + i, th + i, gyo + i,
                             gyb + i, geo + i, mo + i, gcb + i, width, damp, H, gth_k + i, gat + i, ghb + i,
                             gbh_k + i);
      }
      // which (row, unit) pairs need dL/dy[t-1]: an event or inside the pseudo-derivative's support at t-1 (all at t = 0)
      int64_t needed = 0;
      if (t) {
        for (int64_t q = 0; q < nb; ++q)
          needed += support_mask(sct + ((t - 1) * B + b0 + q) * H, th, width, H, need.data() + q * H);
      } else {
        std::fill(need.begin(), need.end(), MaskInt<S>(1));
        needed = nb * H;
      }
      skipped += nb * H - needed;
      const bool dense_dy = W.r && double(needed) > dense_min * double(nb * H);
      if (dense_dy) {  // most units need it: one register-blocked product gh [nb, 3H] x R [3H, H], then the mask
        std::call_once(rpan_once, [&] { rpan = pack_panels(static_cast<const S*>(W.r), G, H); });
        small_mm(gh, G, rpan.data(), nb, G, H, gyr.data(), H);
        for (int64_t p = 0; p < nb * H; ++p)
          if (!need[p]) gyr[p] = S(0);
      }
      if (!dense_dy && W.rt) {  // sparse: only the needed products, grouped by unit (pair_dots)
        int64_t np = 0;  // without branches: every row is written, the next slot taken only when needed
        for (int64_t j = 0; j < H; ++j) {
          jptr[j] = np;
          for (int64_t q = 0; q < nb; ++q) {
            pq[np] = int32_t(q);
            np += need[q * H + j] != 0;
          }
        }
        jptr[H] = np;
        std::fill(gyr.begin(), gyr.end(), S(0));
        pair_dots(static_cast<const S*>(W.rt), gh, nb, H, G, jptr.data(), pq.data(), dot_pack, dot_acc, gyr.data());
      }
      for (int64_t j = 0; j < H && !dense_dy && !W.rt; ++j) {
        for (int64_t q = 0; q < nb; ++q) {  // compressed R^T: one sparse dot product per needed pair
          S* RS gyj = gyr.data() + q * H + j;
          if (!need[q * H + j]) {
            *gyj = S(0);
          } else {
            const S* RS val = static_cast<const S*>(W.val);
            const S* RS ghq = gh + q * G;
            S acc = S(0);
            for (int64_t p = W.rowptr[j]; p < W.rowptr[j + 1]; ++p) acc += val[p] * ghq[W.col[p]];
            *gyj = acc;
          }
        }
      }
      block_t[nblock++] = t;
      if (nblock == kDrBlock || t == 0) accumulate_dr();
    }
    for (int64_t q = 0; q < nb; ++q)
      for (int64_t i = 0; i < H; ++i) {
        gy0[(b0 + q) * H + i] = gyr[q * H + i];
        gc0[(b0 + q) * H + i] = gc[q * H + i];
      }
    counts[k] = skipped;
  }, 1, 1);
}

// out[r, :] = bias (or 0) + sum_{j : X[r, j] != 0} X[r, j] * WT[j, :]   (X [R, K], WT [K, O])
// Rows in chunks of 32: the chunk's nonzero lists first, then panel by panel (one packed K x 8-vector panel of WT
// in L2) every row of the chunk, so that WT is streamed once per chunk instead of once per row.
template <typename S>
void gather_mm(int64_t R, int64_t K, int64_t O, const S* RS X, const S* RS WT, const S* RS bias, S* RS out,
               int nth) {
  constexpr int64_t RC = 32, P = 8 * (kVecBytes / sizeof(S));
  const LineVector<S> pan = pack_gather_panels(WT, K, O);
  advise_huge(out, R * O);
  const int64_t nchunk = (R + RC - 1) / RC;
  parallel(nchunk, nth, [&](int64_t k0, int64_t k1) {
    std::vector<S> wbuf(RC * K);
    std::vector<int32_t> list(RC * K);
    int64_t cnt[RC];
    for (int64_t ch = k0; ch < k1; ++ch) {
      const int64_t r0 = ch * RC, nr = std::min(RC, R - r0);
      for (int64_t u = 0; u < nr; ++u) cnt[u] = nonzeros(X + (r0 + u) * K, K, list.data() + u * K, wbuf.data() + u * K);
      for (int64_t p = 0; p * P < O; ++p)
        for (int64_t u = 0; u < nr; ++u)
          gather_panel(WT, pan.data(), K, O, p, list.data() + u * K, wbuf.data() + u * K, cnt[u], bias,
                       out + (r0 + u) * O);
    }
  }, 2, 1);
}

// out[r, :] = bias (or 0) + sum_{j : X[r, j] != 0} X[r, j] * WT[j, :] with WT [K, O] in compressed rows: the input
// projection when both the input (events) and the weights (pruned) are sparse, cost nnz(X) x nnz per row of WT.
template <typename S>
void gather_csr_mm(int64_t R, int64_t K, int64_t O, const S* RS X, const int64_t* RS rowptr, const int32_t* RS col,
                   const S* RS val, const S* RS bias, S* RS out, int nth) {
  parallel(R, nth, [&](int64_t r0, int64_t r1) {
    std::vector<S> wbuf(K);
    std::vector<int32_t> list(K);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = nonzeros(X + r * K, K, list.data(), wbuf.data());
      weighted_rows_csr(rowptr, col, val, O, list.data(), wbuf.data(), n, bias, out + r * O);
    }
  }, 64, 1);
}

// out[j, :] = sum_{r : X[r, j] != 0} X[r, j] * G[r, :]   (the weight gradient of gather_mm; X [R, K], G [R, O]),
// each entry summed in ascending r with fused multiply-adds. Threads split the units j. Rows in chunks of RC: the
// chunk's nonzeros sorted by unit (ascending r within a unit), then column panel by column panel (P = 8 vectors),
// the chunk's rows of the panel packed together (RC x P, 128 KiB of floats: in L2) and every unit's sum of its
// events there in registers, carried over from chunk to chunk in out. The row-outer axpy into out[j, :] read and
// wrote a row of out (3H numbers, out far larger than L2) per nonzero input: on a 2-core Sapphire Rapids (one
// thread; [8192, 512] inputs at density 0.17, 1536 outputs) 98.6 ms against MKL's dense 58.5 ms; this: see
// OUTER_DENSITY_MAX in cpu.py.
template <typename S>
FMA_OK void gather_outer(int64_t R, int64_t K, int64_t O, const S* RS X, const S* RS Gr, S* RS out, int nth) {
  constexpr int64_t P = 8 * (kVecBytes / sizeof(S)), RC = 256;
  const int64_t np = O / P;
  parallel(K, nth, [&](int64_t k0, int64_t k1) {
    const int64_t nk = k1 - k0;
    for (int64_t j = k0; j < k1; ++j)
      for (int64_t c = 0; c < O; ++c) out[j * O + c] = S(0);
    std::vector<int64_t> ptr(nk + 1), pos(nk);
    std::vector<int32_t> rows(RC * nk), idx(nk);
    LineVector<S> w(RC * nk), wrow(nk), pack(RC * P);
    for (int64_t r0 = 0; r0 < R; r0 += RC) {
      const int64_t nr = std::min(RC, R - r0);
      // the chunk's nonzeros by unit: count, then place them row by row (ascending r within each unit)
      std::fill(ptr.begin(), ptr.end(), int64_t(0));
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t j = 0; j < nk; ++j) ptr[j + 1] += X[(r0 + r) * K + k0 + j] != S(0);
      for (int64_t j = 0; j < nk; ++j) {
        ptr[j + 1] += ptr[j];
        pos[j] = ptr[j];
      }
      if (ptr[nk] == 0) continue;
      for (int64_t r = 0; r < nr; ++r) {
        const int64_t n = nonzeros(X + (r0 + r) * K + k0, nk, idx.data(), wrow.data());
        for (int64_t q = 0; q < n; ++q) {
          const int64_t at = pos[idx[q]]++;
          rows[at] = int32_t(r);
          w[at] = wrow[q];
        }
      }
      for (int64_t p = 0; p < np; ++p) {
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t c = 0; c < P; ++c) pack[r * P + c] = Gr[(r0 + r) * O + p * P + c];
        for (int64_t j = 0; j < nk; ++j) {
          S* dst = out + (k0 + j) * O + p * P;
          if (ptr[j + 1] > ptr[j])
            block_axpy<S, 8>(pack.data(), P, rows.data() + ptr[j], w.data() + ptr[j], ptr[j + 1] - ptr[j], 0, dst,
                             dst);
        }
      }
      for (int64_t j = 0; j < nk; ++j)  // the columns after the last full panel
        for (int64_t c = np * P; c < O; ++c) {
          S acc = out[(k0 + j) * O + c];
          for (int64_t q = ptr[j]; q < ptr[j + 1]; ++q) acc += w[q] * Gr[(r0 + rows[q]) * O + c];
          out[(k0 + j) * O + c] = acc;
        }
    }
  }, 16, 1);
}

}  // namespace

#define EGRU_API(S, suf)                                                                                            \
  extern "C" void egru_fwd_##suf(int64_t T, int64_t B, int64_t H, const S* A, const S* rt, const int64_t* rowptr,   \
                                 const int32_t* col, const S* val, const int64_t* o_rowptr, const int32_t* o_col,   \
                                 const S* o_val, const S* bh, const S* th, const S* mask, const S* c0,              \
                                 const S* y0, S* y, S* e, S* sr, S* sz, S* sn, S* shn, S* sct, S* cseq, int nth) {  \
    egru_fwd<S>(T, B, H, A, Weights{nullptr, rt, rowptr, col, val, o_rowptr, o_col, o_val}, bh, th, mask, c0, y0,  \
                y, e, sr, sz, sn, shn, sct, cseq, nth);                                                             \
  }                                                                                                                 \
  extern "C" void egru_fwd_infer_##suf(int64_t T, int64_t B, int64_t H, int64_t I, const S* x,                     \
                                       const int64_t* in_rowptr, const int32_t* in_col, const S* in_val,            \
                                       const S* b_ih, const S* rt, const int64_t* rowptr, const int32_t* col,       \
                                       const S* val, const int64_t* o_rowptr, const int32_t* o_col,                 \
                                       const S* o_val, const S* bh, const S* th, const S* mask, const S* c0,        \
                                       const S* y0, S* y, S* e, S* cs2, int nth) {                                  \
    const StepInput<S> in{x, I, in_rowptr, in_col, in_val, b_ih};                                                   \
    const Weights W{nullptr, rt, rowptr, col, val, o_rowptr, o_col, o_val};                                         \
    if (o_rowptr && !mask)                                                                                          \
      egru_infer_blocks<S>(T, B, H, in, W, bh, th, c0, y0, y, e, cs2, nth);                                         \
    else                                                                                                            \
      egru_fwd<S>(T, B, H, nullptr, W, bh, th, mask, c0, y0, y, e, nullptr, nullptr, nullptr, nullptr, nullptr, cs2, \
                  nth, &in, true);                                                                                  \
  }                                                                                                                 \
  extern "C" void egru_bwd_##suf(int64_t T, int64_t B, int64_t H, const S* r, const S* rt, const int64_t* rowptr,    \
                                 const int32_t* col, const S* val, const S* th, const S* mask, const S* c0,         \
                                 const S* y0, const S* y, const S* sr, const S* sz, const S* sn, const S* shn,      \
                                 const S* sct, const S* cseq, const S* gy_out, const S* ge_out, const S* gcT,       \
                                 const S* gyT, double width, double damp, double dense_min, S* ga, S* gc0, S* gy0,  \
                                 S* grt, S* gbh, S* gth, int64_t* counts, int nth) {                                \
    egru_bwd<S>(T, B, H, Weights{r, rt, rowptr, col, val, nullptr, nullptr, nullptr}, th, mask, c0, y0, y, sr,      \
                sz, sn, shn, sct, cseq, gy_out, ge_out, gcT, gyT, S(width), S(damp), dense_min, ga, gc0, gy0, grt,  \
                gbh, gth, counts, nth);                                                                             \
  }                                                                                                                 \
  extern "C" void egru_gather_mm_##suf(int64_t R, int64_t K, int64_t O, const S* X, const S* WT, const S* bias,     \
                                       S* out, int nth) {                                                           \
    gather_mm<S>(R, K, O, X, WT, bias, out, nth);                                                                   \
  }                                                                                                                 \
  extern "C" void egru_gather_outer_##suf(int64_t R, int64_t K, int64_t O, const S* X, const S* G, S* out,          \
                                          int nth) {                                                                \
    gather_outer<S>(R, K, O, X, G, out, nth);                                                                       \
  }                                                                                                                 \
  extern "C" void egru_gather_csr_mm_##suf(int64_t R, int64_t K, int64_t O, const S* X, const int64_t* rowptr,       \
                                           const int32_t* col, const S* val, const S* bias, S* out, int nth) {      \
    gather_csr_mm<S>(R, K, O, X, rowptr, col, val, bias, out, nth);                                                 \
  }                                                                                                                 \
  extern "C" void egru_csr_fill_##suf(int64_t rows, int64_t cols, const S* w, int64_t s_row, int64_t s_col,          \
                                      const int64_t* rowptr, int32_t* col, S* val) {                                \
    csr_fill<S>(rows, cols, w, s_row, s_col, rowptr, col, val);                                                     \
  }                                                                                                                 \
  extern "C" int64_t egru_csr_count_##suf(int64_t rows, int64_t cols, const S* w, int64_t ld, int64_t* rowptr) {    \
    return csr_count<S>(rows, cols, w, ld, rowptr);                                                                 \
  }                                                                                                                 \
  extern "C" void egru_csr_fill_rows_##suf(int64_t rows, int64_t cols, const S* w, int64_t ld,                      \
                                           const int64_t* rowptr, int32_t* col, S* val) {                           \
    csr_fill_rows<S>(rows, cols, w, ld, rowptr, col, val);                                                          \
  }                                                                                                                 \
  extern "C" void egru_csr_transpose_##suf(int64_t rows, int64_t cols, const int64_t* rowptr, const int32_t* col,   \
                                           const S* val, int64_t* t_rowptr, int32_t* t_col, S* t_val) {             \
    csr_transpose<S>(rows, cols, rowptr, col, val, t_rowptr, t_col, t_val);                                         \
  }                                                                                                                 \
  extern "C" void egru_csr_mm_##suf(int64_t R, int64_t K, int64_t O, const S* X, const int64_t* rowptr,              \
                                    const int32_t* col, const S* val, const S* bias, S* out, int nth) {             \
    csr_mm<S>(R, K, O, X, rowptr, col, val, bias, out, nth);                                                        \
  }

EGRU_API(float, f32)
EGRU_API(double, f64)
