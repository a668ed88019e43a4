// Fused CPU loops of the RWKV-4 WKV operator: forward and hand-written backward.
//
// Built by spikeseq/kernels/_native.py into the shared library, called from spikeseq/kernels/wkv/cpu.py (autograd
// and checks: spikeseq/kernels/wkv/_autograd.py). The equations are those of spikeseq/functional/wkv.py (the
// stabilised step); the backward is derived there, in _autograd.py's docstring. The Triton kernels
// (_triton_kernels.py) run the same loops.
//
// Layout: sequences are contiguous [T, N] arrays (N = batch x channels), per-element arrays [N] (w and u expanded
// by the caller). Time outside, elements inside (contiguous); elements are split over threads.

#include <cmath>
#include <cstdint>

#include "../parallel.h"

namespace {

#define RS __restrict__

using spikeseq::parallel;

template <typename S>
inline S mx(S a, S b) {
  return a > b ? a : b;
}

// exp(x) for x <= 0, vectorisable (glibc's expf is a scalar call): Cephes expf (S. L. Moshier, Cephes Math
// Library 2.2, expf.c): x = n ln2 + r with |r| <= ln2/2 (ln2 split into 0.693359375 and -2.12194440e-4 for an exact
// n ln2), e^r by its degree-7 polynomial with Cephes' coefficients, 2^n put into the exponent bits. Error about
// 1 ulp (checked against the reference in tests/kernels/test_wkv.py); 0 below -87.3 (torch gives denormals there,
// below 1e-37 relative to the largest term of every sum that uses them). Doubles use std::exp.
inline float exp_le0(float x) {
  const bool tiny = x < -87.3f;
  x = tiny ? -87.3f : x;
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return tiny ? 0.0f : p * __builtin_bit_cast(float, bits);
}

inline double exp_le0(double x) { return std::exp(x); }

// Forward over elements [lo, hi): y and the final state; with SAVE, the state before every step.
template <bool SAVE, typename S>
void wkv_fwd(int64_t lo, int64_t hi, int64_t T, int64_t N, const S* RS k, const S* RS v, const S* RS w,
             const S* RS u, const S* RS a0, const S* RS b0, const S* RS p0, S* RS y, S* RS a1, S* RS b1,
             S* RS p1, S* RS sa, S* RS sb, S* RS sp) {
  for (int64_t n = lo; n < hi; ++n) {
    a1[n] = a0[n];
    b1[n] = b0[n];
    p1[n] = p0[n];
  }
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * N;
    for (int64_t n = lo; n < hi; ++n) {
      const S aa = a1[n], bb = b1[n], pp = p1[n], kk = k[o + n], vv = v[o + n];
      if (SAVE) {
        sa[o + n] = aa;
        sb[o + n] = bb;
        sp[o + n] = pp;
      }
      S ww = u[n] + kk;
      S q = mx(pp, ww);
      S e1 = exp_le0(pp - q), e2 = exp_le0(ww - q);
      y[o + n] = (e1 * aa + e2 * vv) / (e1 * bb + e2);
      ww = pp - w[n];
      q = mx(ww, kk);
      e1 = exp_le0(ww - q);
      e2 = exp_le0(kk - q);
      a1[n] = e1 * aa + e2 * vv;
      b1[n] = e1 * bb + e2;
      p1[n] = q;
    }
  }
}

// Backward over elements [lo, hi), time reversed (time outside, elements inside). ga/gb: the adjoints of the true
// sums A, B scaled by e^{p_t}; gc: the gradient reaching the running maximum p_t (from the final state's p), passed
// down its argmax chain. They are carried in ga0/gb0/gp0; p_t is the saved p before step t + 1 (p1 at the end).
template <typename S>
void wkv_bwd(int64_t lo, int64_t hi, int64_t T, int64_t N, const S* RS gy, const S* RS k, const S* RS v,
             const S* RS y, const S* RS sa, const S* RS sb, const S* RS sp, const S* RS w, const S* RS u,
             const S* RS a1, const S* RS b1, const S* RS p1, const S* RS gaT, const S* RS gbT, const S* RS gpT,
             S* RS gk, S* RS gv, S* RS gw, S* RS gu, S* RS ga0, S* RS gb0, S* RS gp0) {
  for (int64_t n = lo; n < hi; ++n) {
    ga0[n] = gaT[n];
    gb0[n] = gbT[n];
    gp0[n] = gpT[n] - gaT[n] * a1[n] - gbT[n] * b1[n];
    gw[n] = S(0);
    gu[n] = S(0);
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t o = t * N;
    const S* RS pnext = (t == T - 1) ? p1 : sp + o + N;
    for (int64_t n = lo; n < hi; ++n) {
      const S aa = sa[o + n], bb = sb[o + n], pp = sp[o + n], kk = k[o + n], vv = v[o + n], yy = y[o + n];
      const S pc = pnext[n], ga = ga0[n], gb = gb0[n];
      S gc = gp0[n];
      const S ww = u[n] + kk;
      const S q = mx(pp, ww);
      const S e1 = exp_le0(pp - q), e2 = exp_le0(ww - q);
      const S gd = gy[o + n] / (e1 * bb + e2);
      const S gdiag = gd * e2;
      S gkk = gdiag * (vv - yy);
      S gvv = gdiag;
      gu[n] += gkk;
      const S f = exp_le0(kk - pc);
      gkk += f * (ga * vv + gb);
      gvv += f * ga;
      const S pd = pp - w[n];
      const S r = exp_le0(pd - pc);
      S gww = -r * (ga * aa + gb * bb);
      // p_t = k_t: the chain ends here; p_t = p_{t-1} - w: it goes on; a tie: split as torch.maximum splits it
      const S to_k = kk > pd ? S(1) : (kk < pd ? S(0) : S(0.5));
      gkk += to_k * gc;
      gc -= to_k * gc;
      gww -= gc;
      gw[n] += gww;
      ga0[n] = r * ga + gd * e1;
      gb0[n] = r * gb - gd * e1 * yy;
      gp0[n] = gc;
      gk[o + n] = gkk;
      gv[o + n] = gvv;
    }
  }
  for (int64_t n = lo; n < hi; ++n) gp0[n] += ga0[n] * sa[n] + gb0[n] * sb[n];
}

}  // namespace

#define WKV_INSTANCES(S, SUF)                                                                                   \
  extern "C" void wkv_fwd_##SUF(int64_t T, int64_t N, const S* k, const S* v, const S* w, const S* u,         \
                                const S* a0, const S* b0, const S* p0, S* y, S* a1, S* b1, S* p1, S* sa,     \
                                S* sb, S* sp, int nth) {                                                      \
    parallel(N, nth, [&](int64_t lo, int64_t hi) {                                                            \
      if (sa) wkv_fwd<true, S>(lo, hi, T, N, k, v, w, u, a0, b0, p0, y, a1, b1, p1, sa, sb, sp);             \
      else wkv_fwd<false, S>(lo, hi, T, N, k, v, w, u, a0, b0, p0, y, a1, b1, p1, sa, sb, sp);               \
    }, 1024, 16);                                                                                             \
  }                                                                                                           \
  extern "C" void wkv_bwd_##SUF(int64_t T, int64_t N, const S* gy, const S* k, const S* v, const S* y,        \
                                const S* sa, const S* sb, const S* sp, const S* w, const S* u, const S* a1,  \
                                const S* b1, const S* p1, const S* gaT, const S* gbT, const S* gpT, S* gk,   \
                                S* gv, S* gw, S* gu, S* ga0, S* gb0, S* gp0, int nth) {                      \
    parallel(N, nth, [&](int64_t lo, int64_t hi) {                                                            \
      wkv_bwd<S>(lo, hi, T, N, gy, k, v, y, sa, sb, sp, w, u, a1, b1, p1, gaT, gbT, gpT, gk, gv, gw, gu, ga0,  \
                 gb0, gp0);                                                                                   \
    }, 1024, 16);                                                                                             \
  }

WKV_INSTANCES(float, f32)
WKV_INSTANCES(double, f64)
