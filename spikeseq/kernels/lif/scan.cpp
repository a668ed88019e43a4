// Fused CPU time loops of the LIF family (LIF/IF, CuBa-LIF, ALIF, LI): forward and hand-written backward.
//
// Built lazily on first use by spikeseq/kernels/_native.py (plain C ABI, loaded with ctypes; no torch headers,
// so a build takes about a second) and called from spikeseq/kernels/lif/cpu.py, which holds the autograd
// functions, the checks and the surrogate gradient. The equations are those of spikeseq/functional/{lif,cuba,li}.py.
//
// Layout: every sequence is a contiguous [T, N] array (N = batch x neurons), every per-neuron array is [N]
// (parameters are expanded to the step shape by the caller). The loop runs over t outside and over neurons
// inside (contiguous, vectorisable); neurons are split over threads. Compiled with -ffp-contract=off so that
// `beta * v + x` is rounded exactly as torch's separate multiply and add: spikes match the reference bit for bit.
//
// Reset codes: 0 subtract, 1 zero, 2 none. The backward never receives spikes: it recomputes
// z = (v_pre - v_th > 0) from the saved v_pre with the same floating-point operation as the forward.
// sg[t, n] = surrogate.grad(v_pre - v_th), computed by the caller with the Surrogate object (one definition).

#include <cstdint>
#include <type_traits>

#include "../parallel.h"

namespace {

#define RS __restrict__

using spikeseq::parallel;

// Compile-time flags from runtime values: f(std::integral_constant<...>) for the value given.
template <typename F>
void with_bool(bool v, F f) {
  if (v) f(std::true_type{});
  else f(std::false_type{});
}

template <typename F>
void with_reset(int r, F f) {
  if (r == 0) f(std::integral_constant<int, 0>{});
  else if (r == 1) f(std::integral_constant<int, 1>{});
  else f(std::integral_constant<int, 2>{});
}

// v after the reset, written as the reference writes it (spikes as 0/1 numbers: no branches, same rounding).
template <int R, typename S>
inline S after_reset(S p, S th, S zf) {
  if (R == 0) return p - zf * th;
  if (R == 1) return p * (S(1) - zf);
  return p;
}

template <typename S>
inline S spike(S p, S th) {
  return (p - th) > S(0) ? S(1) : S(0);
}

// The backward of one step's spike and reset, shared by LIF and CuBa-LIF.
// g = dL/dv[t], gz = dL/dz[t] from the output, sgn = surrogate.grad(v_pre - v_th).
// Returns dL/dv_pre[t]; gth_local = this step's contribution to dL/dv_th.
// keep = 0 with detach_reset (the reset term carries no gradient to z), else 1 (exact either way).
template <int R, typename S>
inline S step_bwd(S p, S thn, S g, S gz, S sgn, S keep, S& gth_local) {
  S zf = spike(p, thn);
  S gp;
  S gt = S(0);
  if (R == 0) {
    gz -= keep * (thn * g);
    gp = g;
    gt = -zf * g;
  } else if (R == 1) {
    gz -= keep * (p * g);
    gp = g * (S(1) - zf);
  } else {
    gp = g;
  }
  S q = gz * sgn;
  gth_local = gt - q;
  return gp + q;
}

// ---------------------------------------------------------------- LIF
template <int R, typename S>
void lif_fwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS x, const S* RS v0, const S* RS be,
             const S* RS te, S* RS z, S* RS vpre, S* RS v) {
  for (int64_t n = a; n < b; ++n) v[n] = v0[n];
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) {
      S p = be[n] * v[n] + x[o + n];
      S zf = spike(p, te[n]);
      z[o + n] = zf;
      vpre[o + n] = p;
      v[n] = after_reset<R>(p, te[n], zf);
    }
  }
}

// gt (the per-element threshold gradient) is always accumulated: one add per element, cheaper than another
// instance of the loop. gb needs a second stream (v[t-1]) and is only computed when asked for.
template <int R, bool GB, typename S>
void lif_bwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS gz, const S* RS vpre, const S* RS sg,
             const S* RS v0, const S* RS be, const S* RS te, const S* RS gvT, S keep, S* RS gx, S* RS g,
             S* RS gb, S* RS gt) {
  for (int64_t n = a; n < b; ++n) {
    g[n] = gvT ? gvT[n] : S(0);
    if (GB) gb[n] = S(0);
    gt[n] = S(0);
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) {
      S gtl;
      S gp = step_bwd<R, S>(vpre[o + n], te[n], g[n], gz[o + n], sg[o + n], keep, gtl);
      gx[o + n] = gp;
      gt[n] += gtl;
      if (GB) {
        S q = t > 0 ? vpre[o - N + n] : S(0);
        gb[n] += gp * (t > 0 ? after_reset<R>(q, te[n], spike(q, te[n])) : v0[n]);
      }
      g[n] = gp * be[n];
    }
  }
}

// ---------------------------------------------------------------- CuBa-LIF
template <int R, bool SAVE_I, typename S>
void cuba_fwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS x, const S* RS i0, const S* RS v0,
              const S* RS al, const S* RS be, const S* RS te, S* RS z, S* RS vpre, S* RS isave, S* RS i,
              S* RS v) {
  for (int64_t n = a; n < b; ++n) {
    i[n] = i0[n];
    v[n] = v0[n];
  }
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) {
      S c = al[n] * i[n] + x[o + n];
      S p = be[n] * v[n] + c;
      S zf = spike(p, te[n]);
      z[o + n] = zf;
      vpre[o + n] = p;
      if (SAVE_I) isave[o + n] = c;
      i[n] = c;
      v[n] = after_reset<R>(p, te[n], zf);
    }
  }
}

// GD: the decay gradients (alpha and beta together: both are learnt or neither, in practice).
template <int R, bool GD, typename S>
void cuba_bwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS gz, const S* RS vpre, const S* RS sg,
              const S* RS isave, const S* RS i0, const S* RS v0, const S* RS al, const S* RS be, const S* RS te,
              const S* RS giT, const S* RS gvT, S keep, S* RS gx, S* RS hi, S* RS hv, S* RS ga, S* RS gb,
              S* RS gt) {
  for (int64_t n = a; n < b; ++n) {
    hi[n] = giT ? giT[n] : S(0);
    hv[n] = gvT ? gvT[n] : S(0);
    if (GD) ga[n] = S(0);
    if (GD) gb[n] = S(0);
    gt[n] = S(0);
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) {
      S gtl;
      S gp = step_bwd<R, S>(vpre[o + n], te[n], hv[n], gz[o + n], sg[o + n], keep, gtl);
      S gI = hi[n] + gp;
      gx[o + n] = gI;
      gt[n] += gtl;
      if (GD) {
        S q = t > 0 ? vpre[o - N + n] : S(0);
        gb[n] += gp * (t > 0 ? after_reset<R>(q, te[n], spike(q, te[n])) : v0[n]);
      }
      if (GD) ga[n] += gI * (t > 0 ? isave[o - N + n] : i0[n]);
      hi[n] = gI * al[n];
      hv[n] = gp * be[n];
    }
  }
}

// ---------------------------------------------------------------- LI
template <typename S>
void li_fwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS x, const S* RS v0, const S* RS be, S* RS y) {
  for (int64_t n = a; n < b; ++n) y[n] = be[n] * v0[n] + x[n];
  for (int64_t t = 1; t < T; ++t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) y[o + n] = be[n] * y[o - N + n] + x[o + n];
  }
}

template <bool GB, typename S>
void li_bwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS gy, const S* RS y, const S* RS v0,
            const S* RS be, S* RS gx, S* RS g, S* RS gb) {
  for (int64_t n = a; n < b; ++n) {
    g[n] = S(0);
    if (GB) gb[n] = S(0);
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) {
      S h = g[n] + gy[o + n];
      gx[o + n] = h;
      if (GB) gb[n] += h * (t > 0 ? y[o - N + n] : v0[n]);
      g[n] = h * be[n];
    }
  }
}

// ---------------------------------------------------------------- ALIF (adaptive threshold, spikeseq/functional/alif.py)
// theta = v_th + adapt * a[t-1]; v_pre = beta v + x; z = H(v_pre - theta); v = reset(v_pre, z, theta);
// a[t] = rho a[t-1] + z. Saved: v_pre and the trace a[t] (theta of every step is rebuilt from it).
template <int R, typename S>
void alif_fwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS x, const S* RS v0, const S* RS a0,
              const S* RS be, const S* RS rh, const S* RS te, const S* RS ad, S* RS z, S* RS vpre, S* RS asave,
              S* RS v, S* RS aa) {
  for (int64_t n = a; n < b; ++n) {
    v[n] = v0[n];
    aa[n] = a0[n];
  }
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) {
      S th = te[n] + ad[n] * aa[n];
      S p = be[n] * v[n] + x[o + n];
      S zf = spike(p, th);
      z[o + n] = zf;
      vpre[o + n] = p;
      v[n] = after_reset<R>(p, th, zf);
      aa[n] = rh[n] * aa[n] + zf;
      asave[o + n] = aa[n];
    }
  }
}

// GB: the beta gradient (needs v[t-1], rebuilt from v_pre[t-1] and theta[t-1]). The gradients of rho, v_th and
// adapt are always accumulated (their inputs are loaded anyway).
template <int R, bool GB, typename S>
void alif_bwd(int64_t a, int64_t b, int64_t T, int64_t N, const S* RS gz, const S* RS vpre, const S* RS sg,
              const S* RS asave, const S* RS v0, const S* RS a0, const S* RS be, const S* RS rh, const S* RS te,
              const S* RS ad, const S* RS gvT, const S* RS gaT, S keep, S* RS gx, S* RS gv, S* RS ga, S* RS gb,
              S* RS gr, S* RS gt, S* RS gd) {
  for (int64_t n = a; n < b; ++n) {
    gv[n] = gvT ? gvT[n] : S(0);
    ga[n] = gaT ? gaT[n] : S(0);
    if (GB) gb[n] = S(0);
    gr[n] = S(0);
    gt[n] = S(0);
    gd[n] = S(0);
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t o = t * N;
    for (int64_t n = a; n < b; ++n) {
      S aprev = t > 0 ? asave[o - N + n] : a0[n];
      S th = te[n] + ad[n] * aprev;
      S gA = ga[n];
      gr[n] += gA * aprev;
      S gth;  // the spike and reset at the adapted threshold th, as in LIF; z also feeds a[t] (never detached)
      S gp = step_bwd<R, S>(vpre[o + n], th, gv[n], gz[o + n] + gA, sg[o + n], keep, gth);
      gx[o + n] = gp;
      gt[n] += gth;
      gd[n] += gth * aprev;
      if (GB) {
        S vp = v0[n];
        if (t > 0) {
          S q2 = vpre[o - N + n];
          S th2 = te[n] + ad[n] * (t > 1 ? asave[o - 2 * N + n] : a0[n]);
          vp = after_reset<R>(q2, th2, spike(q2, th2));
        }
        gb[n] += gp * vp;
      }
      ga[n] = gA * rh[n] + gth * ad[n];
      gv[n] = gp * be[n];
    }
  }
}

}  // namespace

#define SPIKESEQ_EXPORT(S, SUF)                                                                                  \
  extern "C" void lif_fwd_##SUF(int reset, int64_t T, int64_t N, const S* x, const S* v0, const S* be,         \
                                const S* te, S* z, S* vpre, S* v, int nth) {                                   \
    with_reset(reset, [&](auto R) {                                                                             \
      parallel(N, nth, [&](int64_t a, int64_t b) {                                                              \
        lif_fwd<decltype(R)::value, S>(a, b, T, N, x, v0, be, te, z, vpre, v);                                  \
      });                                                                                                       \
    });                                                                                                         \
  }                                                                                                             \
  extern "C" void lif_bwd_##SUF(int reset, int det, int64_t T, int64_t N, const S* gz, const S* vpre,          \
                                const S* sg, const S* v0, const S* be, const S* te, const S* gvT, S* gx,        \
                                S* gv, S* gb, S* gt, int nth) {                                                \
    const S keep = det ? S(0) : S(1);                                                                           \
    with_reset(reset, [&](auto R) { with_bool(gb, [&](auto B) {                                                 \
      parallel(N, nth, [&](int64_t a, int64_t b) {                                                              \
        lif_bwd<decltype(R)::value, decltype(B)::value, S>(a, b, T, N, gz, vpre, sg, v0, be, te, gvT, keep, gx,  \
                                                           gv, gb, gt);                                         \
      });                                                                                                       \
    }); });                                                                                                     \
  }                                                                                                             \
  extern "C" void cuba_fwd_##SUF(int reset, int64_t T, int64_t N, const S* x, const S* i0, const S* v0,        \
                                 const S* al, const S* be, const S* te, S* z, S* vpre, S* isave, S* i, S* v,   \
                                 int nth) {                                                                    \
    with_reset(reset, [&](auto R) { with_bool(isave, [&](auto I) {                                              \
      parallel(N, nth, [&](int64_t a, int64_t b) {                                                              \
        cuba_fwd<decltype(R)::value, decltype(I)::value, S>(a, b, T, N, x, i0, v0, al, be, te, z, vpre, isave,  \
                                                            i, v);                                              \
      });                                                                                                       \
    }); });                                                                                                     \
  }                                                                                                             \
  extern "C" void cuba_bwd_##SUF(int reset, int det, int64_t T, int64_t N, const S* gz, const S* vpre,         \
                                 const S* sg, const S* isave, const S* i0, const S* v0, const S* al,           \
                                 const S* be, const S* te, const S* giT, const S* gvT, S* gx, S* gi, S* gv,     \
                                 S* ga, S* gb, S* gt, int nth) {                                               \
    const S keep = det ? S(0) : S(1);                                                                           \
    with_reset(reset, [&](auto R) { with_bool(ga, [&](auto D) {                                                 \
      parallel(N, nth, [&](int64_t a, int64_t b) {                                                              \
        cuba_bwd<decltype(R)::value, decltype(D)::value, S>(a, b, T, N, gz, vpre, sg, isave, i0, v0, al, be, te, \
                                                            giT, gvT, keep, gx, gi, gv, ga, gb, gt);            \
      });                                                                                                       \
    }); });                                                                                                     \
  }                                                                                                             \
  extern "C" void alif_fwd_##SUF(int reset, int64_t T, int64_t N, const S* x, const S* v0, const S* a0,        \
                                 const S* be, const S* rh, const S* te, const S* ad, S* z, S* vpre, S* asave,   \
                                 S* v, S* aa, int nth) {                                                       \
    with_reset(reset, [&](auto R) {                                                                             \
      parallel(N, nth, [&](int64_t a, int64_t b) {                                                              \
        alif_fwd<decltype(R)::value, S>(a, b, T, N, x, v0, a0, be, rh, te, ad, z, vpre, asave, v, aa);          \
      });                                                                                                       \
    });                                                                                                         \
  }                                                                                                             \
  extern "C" void alif_bwd_##SUF(int reset, int det, int64_t T, int64_t N, const S* gz, const S* vpre,         \
                                 const S* sg, const S* asave, const S* v0, const S* a0, const S* be,            \
                                 const S* rh, const S* te, const S* ad, const S* gvT, const S* gaT, S* gx,      \
                                 S* gv, S* ga, S* gb, S* gr, S* gt, S* gd, int nth) {                          \
    const S keep = det ? S(0) : S(1);                                                                           \
    with_reset(reset, [&](auto R) { with_bool(gb, [&](auto B) {                                                 \
      parallel(N, nth, [&](int64_t a, int64_t b) {                                                              \
        alif_bwd<decltype(R)::value, decltype(B)::value, S>(a, b, T, N, gz, vpre, sg, asave, v0, a0, be, rh, te, \
                                                            ad, gvT, gaT, keep, gx, gv, ga, gb, gr, gt, gd);    \
      });                                                                                                       \
    }); });                                                                                                     \
  }                                                                                                             \
  extern "C" void li_fwd_##SUF(int64_t T, int64_t N, const S* x, const S* v0, const S* be, S* y, int nth) {    \
    parallel(N, nth, [&](int64_t a, int64_t b) { li_fwd<S>(a, b, T, N, x, v0, be, y); });                       \
  }                                                                                                             \
  extern "C" void li_bwd_##SUF(int64_t T, int64_t N, const S* gy, const S* y, const S* v0, const S* be,        \
                               S* gx, S* gv, S* gb, int nth) {                                                 \
    with_bool(gb, [&](auto B) {                                                                                 \
      parallel(N, nth, [&](int64_t a, int64_t b) {                                                              \
        li_bwd<decltype(B)::value, S>(a, b, T, N, gy, y, v0, be, gx, gv, gb);                                   \
      });                                                                                                       \
    });                                                                                                         \
  }

SPIKESEQ_EXPORT(float, f32)
SPIKESEQ_EXPORT(double, f64)

extern "C" int spikeseq_abi_version() { return 11; }
