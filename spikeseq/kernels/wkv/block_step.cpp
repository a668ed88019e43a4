// One token through one RWKV-4 block in RNN mode (generation), for B sequences: the equations of
// spikeseq/nn/rwkv.py (module docstring; RWKVBlock.step), in one call instead of some twenty torch calls.
//
// Built by spikeseq/kernels/_native.py into the shared library, called from spikeseq/kernels/wkv/block_step.py.
// Per sequence (row of C values): optional LN0, LN1, the time mix (mixes x mu + x_prev (1 - mu) as in the parallel
// form, the k, v, r projections, the WKV step of wkv.cpp, sigmoid(r) * wkv, the output projection), an optional
// LIF (forward-Euler, input scaled by in_scale, hard reset to 0) on the branch, the residual; then LN2, the channel
// mix (sigmoid(x_r W_r) * (relu(x_k W_k)^2 W_v)), the optional LIF and the residual.
//
// Matrices are transposed, [in, out] row-major (y = x W touches W row by row: contiguous and vectorisable); kvr is
// [3][C][C] (k, v, r). LayerNorm moments are accumulated in double. Built with -ffp-contract=off like every kernel
// here, so the elementwise steps round as torch's separate operations do.

#include <cmath>
#include <cstdint>
#include <vector>

extern "C" void wkv_fwd_f32(int64_t T, int64_t N, const float* k, const float* v, const float* w, const float* u,
                            const float* a0, const float* b0, const float* p0, float* y, float* a1, float* b1,
                            float* p1, float* sa, float* sb, float* sp, int nth);
extern "C" void wkv_fwd_f64(int64_t T, int64_t N, const double* k, const double* v, const double* w,
                            const double* u, const double* a0, const double* b0, const double* p0, double* y,
                            double* a1, double* b1, double* p1, double* sa, double* sb, double* sp, int nth);

namespace {

#define RS __restrict__

inline void wkv_one(int64_t N, const float* k, const float* v, const float* w, const float* u, const float* a0,
                    const float* b0, const float* p0, float* y, float* a1, float* b1, float* p1) {
  wkv_fwd_f32(1, N, k, v, w, u, a0, b0, p0, y, a1, b1, p1, nullptr, nullptr, nullptr, 1);
}
inline void wkv_one(int64_t N, const double* k, const double* v, const double* w, const double* u,
                    const double* a0, const double* b0, const double* p0, double* y, double* a1, double* b1,
                    double* p1) {
  wkv_fwd_f64(1, N, k, v, w, u, a0, b0, p0, y, a1, b1, p1, nullptr, nullptr, nullptr, 1);
}

// out = (x - mean) / sqrt(var + eps) * g + b over one row of C (biased variance, as torch's layer_norm).
template <typename S>
void layer_norm(int64_t C, const S* RS x, const S* RS g, const S* RS b, double eps, S* RS out) {
  double mean = 0.0;
  for (int64_t c = 0; c < C; ++c) mean += x[c];
  mean /= static_cast<double>(C);
  double var = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const double d = x[c] - mean;
    var += d * d;
  }
  var /= static_cast<double>(C);
  const S rstd = static_cast<S>(1.0 / std::sqrt(var + eps));
  const S m = static_cast<S>(mean);
  for (int64_t c = 0; c < C; ++c) out[c] = (x[c] - m) * rstd * g[c] + b[c];
}

// y = x W for one row: x [in], W [in, out] row-major.
template <typename S>
void row_times(int64_t in, int64_t out, const S* RS x, const S* RS W, S* RS y) {
  for (int64_t o = 0; o < out; ++o) y[o] = S(0);
  for (int64_t i = 0; i < in; ++i) {
    const S xi = x[i];
    const S* RS w = W + i * out;
    for (int64_t o = 0; o < out; ++o) y[o] += xi * w[o];
  }
}

// x mu + x_prev (1 - mu), as the parallel form's _mix.
template <typename S>
void mix(int64_t C, const S* RS x, const S* RS prev, const S* RS mu, S* RS out) {
  for (int64_t c = 0; c < C; ++c) out[c] = x[c] * mu[c] + prev[c] * (S(1) - mu[c]);
}

template <typename S>
inline S sigmoid(S x) {
  return S(1) / (S(1) + std::exp(-x));
}

// The LIF on a branch output y (replaced by the spikes): v' = beta v + in_scale y, z = v' > v_th, v = v' (1 - z).
template <typename S>
void lif(int64_t C, S* RS y, const S* RS v0, S* RS v1, S in_scale, S beta, S v_th) {
  for (int64_t c = 0; c < C; ++c) {
    const S vp = beta * v0[c] + y[c] * in_scale;
    const S z = (vp - v_th > S(0)) ? S(1) : S(0);
    v1[c] = vp * (S(1) - z);
    y[c] = z;
  }
}

template <typename S>
void block_step(int64_t B, int64_t C, int64_t H, const S* x_in, const S* ln0_g, const S* ln0_b, double eps0,
                const S* ln1_g, const S* ln1_b, double eps1, const S* ln2_g, const S* ln2_b, double eps2,
                const S* mu_kvr, const S* kvr, const S* w, const S* u, const S* out_w, const S* mu_kr,
                const S* key_w, const S* rec_w, const S* val_w, int spiking, double in_scale, double beta,
                double v_th, const S* att_x, const S* a, const S* b, const S* p, const S* ffn_x, const S* v_att,
                const S* v_ffn, S* x_out, S* att_x1, S* a1, S* b1, S* p1, S* ffn_x1, S* v_att1, S* v_ffn1) {
  std::vector<S> work(static_cast<size_t>(8 * C + H));
  S* mixed = work.data();  // 3 C: the k, v, r mixes (then 2 C for the channel mix's)
  S* kvr_out = mixed + 3 * C;  // 3 C: k, v, r
  S* y = kvr_out + 3 * C;  // C
  S* branch = y + C;  // C
  S* hidden = branch + C;  // H
  const S sc = static_cast<S>(in_scale), bt = static_cast<S>(beta), th = static_cast<S>(v_th);
  for (int64_t r = 0; r < B; ++r) {
    const int64_t o = r * C;
    S* RS x = x_out + o;
    if (ln0_g) layer_norm(C, x_in + o, ln0_g, ln0_b, eps0, x);
    else for (int64_t c = 0; c < C; ++c) x[c] = x_in[o + c];
    // time mix
    S* h = att_x1 + o;  // LN1(x) is the next token's shift input
    layer_norm(C, x, ln1_g, ln1_b, eps1, h);
    for (int j = 0; j < 3; ++j) {
      mix(C, h, att_x + o, mu_kvr + j * C, mixed + j * C);
      row_times(C, C, mixed + j * C, kvr + j * C * C, kvr_out + j * C);
    }
    wkv_one(C, kvr_out, kvr_out + C, w, u, a + o, b + o, p + o, y, a1 + o, b1 + o, p1 + o);
    for (int64_t c = 0; c < C; ++c) y[c] = sigmoid(kvr_out[2 * C + c]) * y[c];
    row_times(C, C, y, out_w, branch);
    if (spiking) lif(C, branch, v_att + o, v_att1 + o, sc, bt, th);
    else for (int64_t c = 0; c < C; ++c) v_att1[o + c] = v_att[o + c];
    for (int64_t c = 0; c < C; ++c) x[c] = x[c] + branch[c];
    // channel mix
    S* g = ffn_x1 + o;
    layer_norm(C, x, ln2_g, ln2_b, eps2, g);
    mix(C, g, ffn_x + o, mu_kr, mixed);
    mix(C, g, ffn_x + o, mu_kr + C, mixed + C);
    row_times(C, H, mixed, key_w, hidden);
    for (int64_t j = 0; j < H; ++j) {
      const S q = hidden[j] > S(0) ? hidden[j] : S(0);
      hidden[j] = q * q;
    }
    row_times(C, C, mixed + C, rec_w, kvr_out);
    row_times(H, C, hidden, val_w, branch);
    for (int64_t c = 0; c < C; ++c) branch[c] = sigmoid(kvr_out[c]) * branch[c];
    if (spiking) lif(C, branch, v_ffn + o, v_ffn1 + o, sc, bt, th);
    else for (int64_t c = 0; c < C; ++c) v_ffn1[o + c] = v_ffn[o + c];
    for (int64_t c = 0; c < C; ++c) x[c] = x[c] + branch[c];
  }
}

}  // namespace

// Entry points. weights: 15 pointers (LN0 gain and bias, or two nulls; LN1's; LN2's; mu_kvr, kvr, w, u, out_w,
// mu_kr, key_w, rec_w, val_w); scalars: eps0, eps1, eps2, in_scale, beta, v_th; state: 7 pointers (att_x, a, b,
// p, ffn_x, v_att, v_ffn, each [B, C]); out: [8, B, C] (the block's output, then the new state in that order).
#define BLOCK_STEP_INSTANCE(S, SUF)                                                                             \
  extern "C" void rwkv_block_step_##SUF(int64_t B, int64_t C, int64_t H, const void* const* wp,               \
                                        const double* sc, int spiking, const S* x_in, const void* const* st,  \
                                        S* out) {                                                             \
    const S* const* W = reinterpret_cast<const S* const*>(wp);                                                \
    const S* const* s = reinterpret_cast<const S* const*>(st);                                                \
    const int64_t n = B * C;                                                                                  \
    block_step<S>(B, C, H, x_in, W[0], W[1], sc[0], W[2], W[3], sc[1], W[4], W[5], sc[2], W[6], W[7], W[8],  \
                  W[9], W[10], W[11], W[12], W[13], W[14], spiking, sc[3], sc[4], sc[5], s[0], s[1], s[2], s[3], \
                  s[4], s[5], s[6], out, out + n, out + 2 * n, out + 3 * n, out + 4 * n, out + 5 * n,          \
                  out + 6 * n, out + 7 * n);                                                                  \
  }

BLOCK_STEP_INSTANCE(float, f32)
BLOCK_STEP_INSTANCE(double, f64)
