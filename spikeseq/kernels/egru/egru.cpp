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
//             each a contiguous row of 3H numbers (or its CSR nonzeros): cost nnz(y) * 3H instead of H * 3H;
//   backward  dL/dy[t-1, j] = RT[j, :] . gh is computed only for units that fired at t-1 or lie inside the
//             pseudo-derivative's support (|c~ - theta| < width): for any other unit dy/dc~ = e + c~ * de/dc~ = 0,
//             so the skipped value would be multiplied by zero (sparse BPTT, exact). dL/dR^T[j, :] += y[j] gh
//             only for units with an event.
// The batch rows are independent in time, so threads split the batch for the whole loop; each thread
// accumulates its own dR, db_h and dtheta (summed by the caller). Sums run in a fixed order (ascending unit index),
// independent of the thread count. -ffp-contract=off: no fused multiply-add (results round like torch's ops).

#include <cmath>
#include <cstdint>
#include <vector>

#include "../parallel.h"

namespace {

#define RS __restrict__

using spikeseq::parallel;

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <typename S>
struct VecOf {
  typedef S type __attribute__((vector_size(kVecBytes), aligned(alignof(S))));
};
template <typename S>
using Vec = typename VecOf<S>::type;

template <typename S>
inline Vec<S> load(const S* p) {
  return *reinterpret_cast<const Vec<S>*>(p);
}
template <typename S>
inline void store(S* p, Vec<S> v) {
  *reinterpret_cast<Vec<S>*>(p) = v;
}
template <typename S>
inline Vec<S> splat(S s) {
  return Vec<S>{} + s;
}

// dst[c0 : c0 + U*L] = init (or 0) + sum_p w[p] * src[list[p], c0 : ...]; U accumulators in registers.
template <typename S, int U>
inline void block_axpy(const S* RS src, int64_t O, const int32_t* RS list, const S* RS w, int64_t n, int64_t c0,
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

// CSR form of weighted_rows: dst = init (or 0) + sum_p w[p] * row list[p] of the compressed matrix.
template <typename S>
void weighted_rows_csr(const int64_t* RS rowptr, const int32_t* RS col, const S* RS val, int64_t O,
                       const int32_t* RS list, const S* RS w, int64_t n, const S* init, S* dst) {
  for (int64_t c = 0; c < O; ++c) dst[c] = init ? init[c] : S(0);
  for (int64_t p = 0; p < n; ++p) {
    const int64_t j = list[p];
    const S s = w[p];
    for (int64_t q = rowptr[j]; q < rowptr[j + 1]; ++q) dst[col[q]] += s * val[q];
  }
}

template <typename S>
inline S dot(const S* RS a, const S* RS b, int64_t n) {
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

// dst[:O] += s * src[:O]
template <typename S>
inline void axpy(S s, const S* RS src, S* RS dst, int64_t O) {
  for (int64_t c = 0; c < O; ++c) dst[c] += s * src[c];
}

// The nonzeros of row v[:n] as (index, value) lists; returns their number.
template <typename S>
inline int64_t nonzeros(const S* RS v, int64_t n, int32_t* RS idx, S* RS w) {
  int64_t p = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (v[k] != S(0)) {
      idx[p] = int32_t(k);
      w[p++] = v[k];
    }
  }
  return p;
}

template <typename S>
inline S sigmoid(S x) {
  return S(1) / (S(1) + std::exp(-x));
}

struct Weights {
  const void* rt;         // dense R^T [H, 3H], or null when csr
  const int64_t* rowptr;  // CSR of R^T (when rt is null)
  const int32_t* col;
  const void* val;
};

template <typename S>
void egru_fwd(int64_t T, int64_t B, int64_t H, const S* RS A, Weights W, const S* RS bh, const S* RS th,
              const S* RS mask, const S* RS c0, const S* RS y0, S* RS y, S* RS e, S* RS sr, S* RS sz, S* RS sn,
              S* RS shn, S* RS sct, S* RS cseq, int nth) {
  const int64_t G = 3 * H;
  parallel(B, nth, [&](int64_t b0, int64_t b1) {
    std::vector<S> h(G), wbuf(H);
    std::vector<int32_t> list(H);
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t t = 0; t < T; ++t) {
        const S* yp = t ? y + ((t - 1) * B + b) * H : y0 + b * H;
        const S* cp = t ? cseq + ((t - 1) * B + b) * H : c0 + b * H;
        const int64_t n = nonzeros(yp, H, list.data(), wbuf.data());
        if (W.rt) weighted_rows(static_cast<const S*>(W.rt), G, list.data(), wbuf.data(), n, bh, h.data());
        else weighted_rows_csr(W.rowptr, W.col, static_cast<const S*>(W.val), G, list.data(), wbuf.data(), n, bh,
                               h.data());
        const int64_t o = (t * B + b) * H;
        const S* a = A + (t * B + b) * G;
        const S* m = mask ? mask + o : nullptr;
        for (int64_t i = 0; i < H; ++i) {
          const S r = sigmoid(a[i] + h[i]);
          const S z = sigmoid(a[H + i] + h[H + i]);
          const S hn = h[2 * H + i];
          const S nn = std::tanh(a[2 * H + i] + r * hn);
          const S ct = z * cp[i] + (S(1) - z) * nn;
          const S ev = (ct - th[i]) > S(0) ? S(1) : S(0);
          S c = ct - ev * th[i];
          if (m) c = m[i] * cp[i] + (S(1) - m[i]) * c;
          sr[o + i] = r;
          sz[o + i] = z;
          sn[o + i] = nn;
          shn[o + i] = hn;
          sct[o + i] = ct;
          cseq[o + i] = c;
          e[o + i] = ev;
          y[o + i] = ev * ct;
        }
      }
    }
  }, 1, 1);
}

template <typename S>
void egru_bwd(int64_t T, int64_t B, int64_t H, Weights W, const S* RS th, const S* RS mask, const S* RS c0,
              const S* RS y0, const S* RS y, const S* RS sr, const S* RS sz, const S* RS sn, const S* RS shn,
              const S* RS sct, const S* RS cseq, const S* RS gy_out, const S* RS ge_out, const S* RS gcT,
              const S* RS gyT, S width, S damp, S* RS ga, S* RS gc0, S* RS gy0, S* RS grt, S* RS gbh, S* RS gth,
              int64_t* RS counts, int nth) {
  const int64_t G = 3 * H;
  const int64_t chunk = (B + nth - 1) / nth;
  parallel(B, nth, [&](int64_t b0, int64_t b1) {
    const int k = int(b0 / chunk);  // this thread's slot of the per-thread accumulators
    S* RS grt_k = grt + int64_t(k) * H * G;
    S* RS gbh_k = gbh + int64_t(k) * G;
    S* RS gth_k = gth + int64_t(k) * H;
    int64_t skipped = 0;
    std::vector<S> gh(G), gyr(H), gc(H), wbuf(H);
    std::vector<int32_t> list(H);
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t i = 0; i < H; ++i) {
        gyr[i] = gyT ? gyT[b * H + i] : S(0);
        gc[i] = gcT ? gcT[b * H + i] : S(0);
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = (t * B + b) * H;
        const S* cp = t ? cseq + ((t - 1) * B + b) * H : c0 + b * H;
        const S* yp = t ? y + ((t - 1) * B + b) * H : y0 + b * H;
        S* RS gat = ga + (t * B + b) * G;
        for (int64_t i = 0; i < H; ++i) {
          const S ct = sct[o + i], r = sr[o + i], z = sz[o + i], nn = sn[o + i];
          const S x = ct - th[i];
          const S ev = x > S(0) ? S(1) : S(0);
          const S pd = std::fmax(std::fabs(x) / -width + S(1), S(0)) * damp;
          const S gy = (gy_out ? gy_out[o + i] : S(0)) + gyr[i];
          const S m = mask ? mask[o + i] : S(0);
          const S gco = gc[i];
          const S gcn = (S(1) - m) * gco;
          const S get = (ge_out ? ge_out[o + i] : S(0)) + gy * ct - gcn * th[i];
          const S gct = gcn + gy * ev + get * pd;
          gth_k[i] += -(ev * gcn) - get * pd;
          const S gz = gct * (cp[i] - nn);
          gc[i] = gct * z + m * gco;
          const S gpn = gct * (S(1) - z) * (S(1) - nn * nn);
          const S gr = gpn * shn[o + i];
          const S gpr = gr * r * (S(1) - r);
          const S gpz = gz * z * (S(1) - z);
          gat[i] = gpr;
          gat[H + i] = gpz;
          gat[2 * H + i] = gpn;
          gh[i] = gpr;
          gh[H + i] = gpz;
          gh[2 * H + i] = gpn * r;
        }
        for (int64_t c = 0; c < G; ++c) gbh_k[c] += gh[c];
        // dR^T[j, :] += y[t-1, j] * gh, only for units that sent an event
        const int64_t n = nonzeros(yp, H, list.data(), wbuf.data());
        for (int64_t p = 0; p < n; ++p) axpy(wbuf[p], gh.data(), grt_k + int64_t(list[p]) * G, G);
        // dL/dy[t-1, j]: only where it reaches c~[t-1] (event or inside the support); all units for y0
        for (int64_t j = 0; j < H; ++j) {
          bool need = true;
          if (t) {
            const S xp = sct[o - B * H + j] - th[j];
            need = xp > S(0) || std::fabs(xp) / width < S(1);
          }
          if (!need) {
            gyr[j] = S(0);
            ++skipped;
            continue;
          }
          if (W.rt) {
            gyr[j] = dot(static_cast<const S*>(W.rt) + j * G, gh.data(), G);
          } else {
            const S* RS val = static_cast<const S*>(W.val);
            S s = S(0);
            for (int64_t q = W.rowptr[j]; q < W.rowptr[j + 1]; ++q) s += val[q] * gh[W.col[q]];
            gyr[j] = s;
          }
        }
      }
      for (int64_t i = 0; i < H; ++i) {
        gy0[b * H + i] = gyr[i];
        gc0[b * H + i] = gc[i];
      }
    }
    counts[k] = skipped;
  }, 1, 1);
}

// out[r, :] = bias (or 0) + sum_{j : X[r, j] != 0} X[r, j] * WT[j, :]   (X [R, K], WT [K, O])
template <typename S>
void gather_mm(int64_t R, int64_t K, int64_t O, const S* RS X, const S* RS WT, const S* RS bias, S* RS out,
               int nth) {
  parallel(R, nth, [&](int64_t r0, int64_t r1) {
    std::vector<S> wbuf(K);
    std::vector<int32_t> list(K);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = nonzeros(X + r * K, K, list.data(), wbuf.data());
      weighted_rows(WT, O, list.data(), wbuf.data(), n, bias, out + r * O);
    }
  }, 64, 1);
}

// out[j, :] = sum_{r : X[r, j] != 0} X[r, j] * G[r, :]   (the weight gradient of gather_mm; X [R, K], G [R, O])
template <typename S>
void gather_outer(int64_t R, int64_t K, int64_t O, const S* RS X, const S* RS Gr, S* RS out, int nth) {
  parallel(K, nth, [&](int64_t k0, int64_t k1) {
    for (int64_t j = k0; j < k1; ++j)
      for (int64_t c = 0; c < O; ++c) out[j * O + c] = S(0);
    for (int64_t r = 0; r < R; ++r) {
      const S* xr = X + r * K;
      for (int64_t j = k0; j < k1; ++j)
        if (xr[j] != S(0)) axpy(xr[j], Gr + r * O, out + j * O, O);
    }
  }, 16, 1);
}

}  // namespace

#define EGRU_API(S, suf)                                                                                            \
  extern "C" void egru_fwd_##suf(int64_t T, int64_t B, int64_t H, const S* A, const S* rt, const int64_t* rowptr,   \
                                 const int32_t* col, const S* val, const S* bh, const S* th, const S* mask,         \
                                 const S* c0, const S* y0, S* y, S* e, S* sr, S* sz, S* sn, S* shn, S* sct, S* cseq, \
                                 int nth) {                                                                         \
    egru_fwd<S>(T, B, H, A, Weights{rt, rowptr, col, val}, bh, th, mask, c0, y0, y, e, sr, sz, sn, shn, sct, cseq,  \
                nth);                                                                                               \
  }                                                                                                                 \
  extern "C" void egru_bwd_##suf(int64_t T, int64_t B, int64_t H, const S* rt, const int64_t* rowptr,                \
                                 const int32_t* col, const S* val, const S* th, const S* mask, const S* c0,         \
                                 const S* y0, const S* y, const S* sr, const S* sz, const S* sn, const S* shn,      \
                                 const S* sct, const S* cseq, const S* gy_out, const S* ge_out, const S* gcT,       \
                                 const S* gyT, double width, double damp, S* ga, S* gc0, S* gy0, S* grt, S* gbh,    \
                                 S* gth, int64_t* counts, int nth) {                                                \
    egru_bwd<S>(T, B, H, Weights{rt, rowptr, col, val}, th, mask, c0, y0, y, sr, sz, sn, shn, sct, cseq, gy_out,    \
                ge_out, gcT, gyT, S(width), S(damp), ga, gc0, gy0, grt, gbh, gth, counts, nth);                     \
  }                                                                                                                 \
  extern "C" void egru_gather_mm_##suf(int64_t R, int64_t K, int64_t O, const S* X, const S* WT, const S* bias,     \
                                       S* out, int nth) {                                                           \
    gather_mm<S>(R, K, O, X, WT, bias, out, nth);                                                                   \
  }                                                                                                                 \
  extern "C" void egru_gather_outer_##suf(int64_t R, int64_t K, int64_t O, const S* X, const S* G, S* out,          \
                                          int nth) {                                                                \
    gather_outer<S>(R, K, O, X, G, out, nth);                                                                       \
  }

EGRU_API(float, f32)
EGRU_API(double, f64)
