// One step of the fixed-point EGRU cell program (SpiNNaker2-style, spikeseq/graph/quantize.py quantize_cells) and
// its adjoint, the elementwise part: the products W_i x[t] and W_h y[t-1] come in already summed and rounded to
// float32 (the caller's matmuls), so what is here is the gate arithmetic of spikeseq/graph/simulate.py
// egru_cell_step, operation for operation in float32 (-ffp-contract=off: every product and sum rounded on its own,
// as numpy and torch round them), with sigmoid and tanh evaluated in double (vector polynomials accurate to about
// 1 ulp) and rounded once to float.
//
// Layouts (contiguous): per-step [B, 3H] products (gates r, z, n), [B, H] states; per-unit [3H] factors and biases,
// [H] thresholds. Called through ctypes by spikeseq/kernels/egru/fixed.py (target mode: spikeseq/graph/target_cells).

#include <cmath>
#include <cstdint>
#include <vector>

#include "../simd.h"
#include "gates.h"

#define RS __restrict__

namespace {

using spikeseq::kVecBytes;
using spikeseq::load;
using spikeseq::store;
using D = spikeseq::Vec<double>;
typedef int64_t IV __attribute__((vector_size(kVecBytes)));
constexpr int L = kVecBytes / sizeof(double);

inline D splat(double v) { return D{} + v; }

// exp on double vectors, accurate to about 1 ulp: Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2), the Taylor
// polynomial of degree 13 (truncation below 1e-17 relative), times 2^n built in the exponent bits; inputs clamped to
// [-708, 709] (beyond, the float results below are the same: 0 or 1).
inline D vexp(D x) {
  x = x > 709.0 ? splat(709.0) : x;
  x = x < -708.0 ? splat(-708.0) : x;
  const double shifter = 6755399441055744.0;   // 1.5 * 2^52: adding it rounds to an integer
  const D t = x * 1.4426950408889634 + shifter;
  const D n = t - shifter;
  const D r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
  D p = splat(1.0 / 6227020800.0);             // 1/13!
  double c = 1.0 / 6227020800.0;
  for (int k = 13; k >= 1; --k) {
    c *= double(k);                            // 1/(k-1)!
    p = p * r + c;
  }
  const IV bits = ((IV)t - (IV)splat(shifter) + 1023) << 52;
  return p * (D)bits;
}

// exp(y) - 1 for |y| <= 0.35 without cancellation: sum of y^k / k! for k = 1..15.
inline D vexpm1_small(D y) {
  double c = 1.0;
  for (int k = 2; k <= 15; ++k) c /= double(k);   // 1/15!
  D p = splat(c);
  for (int k = 15; k >= 2; --k) {
    c *= double(k);                                // 1/(k-1)!
    p = p * y + c;
  }
  return p * y;
}

inline D vsigmoid(D a) { return 1.0 / (1.0 + vexp(-a)); }

// tanh(x) = sign(x) em / (em + 2) with em = expm1(2 |x|): no cancellation near 0.
inline D vtanh(D x) {
  const D ax = x < 0.0 ? -x : x;
  const D y = ax + ax;
  const D em = y <= 0.35 ? vexpm1_small(y) : vexp(y) - 1.0;
  const D t = em / (em + 2.0);
  return x < 0.0 ? -t : t;
}

// out[i] = float(f(double(in[i]))) for i < n, on a scratch of whole vectors.
template <D (*F)(D)>
inline void apply_once(const float* RS in, float* RS out, int64_t n, double* RS scratch) {
  const int64_t m = (n + L - 1) / L * L;
  for (int64_t i = 0; i < n; ++i) scratch[i] = double(in[i]);
  for (int64_t i = n; i < m; ++i) scratch[i] = 0.0;
  for (int64_t i = 0; i < m; i += L) store(scratch + i, F(load(scratch + i)));
  for (int64_t i = 0; i < n; ++i) out[i] = float(scratch[i]);
}

}  // namespace

// Forward: payload y, state c_out and what the adjoint needs (r, z, n, gh_n, c~, e) from the input products xw,
// the recurrent products ghm, the factors ki / kh, the biases bi / bh, the thresholds th and the state c_in.
// frac < 0: float32 payloads; else int8 payloads clip(round_half_even(y * 2^frac), -127, 127).
extern "C" void egru_fixed_fwd(int64_t B, int64_t H, const float* RS xw, const float* RS ghm, const float* RS ki,
                               const float* RS bi, const float* RS kh, const float* RS bh, const float* RS th,
                               const float* RS c_in, int frac, float* RS y, float* RS c_out, float* RS r,
                               float* RS z, float* RS n, float* RS ghn, float* RS ct, uint8_t* RS e) {
  const float scale = frac < 0 ? 1.0f : float(std::ldexp(1.0, frac));
  std::vector<float> a(2 * H), gi_n(H);
  std::vector<double> scratch((2 * H + L - 1) / L * L);
  for (int64_t b = 0; b < B; ++b) {
    const float* RS xb = xw + b * 3 * H;
    const float* RS gb = ghm + b * 3 * H;
    const int64_t o = b * H;
    for (int64_t k = 0; k < 2 * H; ++k) {      // r and z pre-activations: (x k_i + b_i) + (h k_h + b_h)
      float gi = xb[k] * ki[k];
      gi = gi + bi[k];
      float gh = gb[k] * kh[k];
      gh = gh + bh[k];
      a[k] = gi + gh;
    }
    for (int64_t u = 0; u < H; ++u) {
      float gi = xb[2 * H + u] * ki[2 * H + u];
      gi_n[u] = gi + bi[2 * H + u];
      float gh = gb[2 * H + u] * kh[2 * H + u];
      ghn[o + u] = gh + bh[2 * H + u];
    }
    apply_once<vsigmoid>(a.data(), a.data(), 2 * H, scratch.data());      // r = a[:H], z = a[H:]
    for (int64_t u = 0; u < H; ++u) {
      const float rg = a[u] * ghn[o + u];
      n[o + u] = gi_n[u] + rg;                 // a_n, replaced by tanh(a_n) below
    }
    apply_once<vtanh>(n + o, n + o, H, scratch.data());
    for (int64_t u = 0; u < H; ++u) {
      const int64_t i = o + u;
      const float rr = a[u], zz = a[H + u], nn = n[i];
      const float zc = zz * c_in[i];
      const float omz = 1.0f - zz;
      const float zn = omz * nn;
      const float cc = zc + zn;
      const bool ev = cc > th[u];
      float out = ev ? cc : 0.0f;
      c_out[i] = cc - (ev ? th[u] : 0.0f);
      if (frac >= 0) {
        out = std::nearbyint(out * scale);   // the default rounding mode: half to even, as numpy.round
        out = out > 127.0f ? 127.0f : (out < -127.0f ? -127.0f : out);
      }
      y[i] = out;
      r[i] = rr;
      z[i] = zz;
      ct[i] = cc;
      e[i] = ev ? 1 : 0;
    }
  }
}

// Adjoint of one step: from d loss / d payload (g_out + g_rec, times the payload scale), d loss / d c_out (g_c) and
// the saved values, the pre-activation gradients g_gi = (d a_r, d a_z, d a_n) and g_gh = (d a_r, d a_z, r d a_n)
// ([B, 3H]) and d loss / d c_in (written over g_c). sg: d e / d c~ (the cell's pseudo-derivative).
extern "C" void egru_fixed_bwd(int64_t B, int64_t H, const float* RS g_out, const float* RS g_rec, float scale,
                               const float* RS r, const float* RS z, const float* RS n, const float* RS ghn,
                               const float* RS ct, const uint8_t* RS e, const float* RS c_in, const float* RS th,
                               const float* RS sg, float* RS g_c, float* RS g_gi, float* RS g_gh) {
  for (int64_t b = 0; b < B; ++b) {
    float* RS gi = g_gi + b * 3 * H;
    float* RS gh = g_gh + b * 3 * H;
    for (int64_t u = 0; u < H; ++u) {
      const int64_t i = b * H + u;
      const float gy = (g_out[i] + g_rec[i]) * scale;
      const float de = gy * ct[i] - g_c[i] * th[u];
      const float gct = (e[i] ? gy : 0.0f) + g_c[i] + de * sg[i];
      spikeseq::gate_adjoint(gct, r[i], z[i], n[i], ghn[i], c_in[i], H, gi + u, gh + u);
      g_c[i] = gct * z[i];
    }
  }
}


