// The GRU gates' adjoint, shared by the EGRU kernels (egru.cpp: float training; egru_fixed.cpp: the fixed-point cell
// of target mode). From gct = d loss / d c~ and one step's saved r, z, n, gh_n = R_n y[t-1] + b_hn and the previous
// state c (c~ = z c + (1 - z) n, n = tanh(a_n + r gh_n), r and z sigmoids), the pre-activation gradients
//   input products' gates      d a_r, d a_z, d a_n
//   recurrent products' gates  d a_r, d a_z, r d a_n
// in this order of operations (-ffp-contract=off: each product rounded on its own). V is a scalar type or a GCC
// vector of them (one lane per unit): the same operations lane by lane, so both round alike.
#pragma once

#include <cstdint>

namespace spikeseq {

template <typename V>
struct GateAdjoint {
  V a_r, a_z, a_n;  // d a_r, d a_z, d a_n (the recurrent gates' gradients are a_r, a_z and rh_n)
  V rh_n;           // r d a_n
};

template <typename V>
inline GateAdjoint<V> gate_adjoint(V gct, V r, V z, V n, V gh_n, V c_prev) {
  const V one = V{} + 1;
  const V gz = gct * (c_prev - n);
  const V gpn = gct * (one - z) * (one - n * n);
  const V gr = gpn * gh_n;
  return {gr * r * (one - r), gz * z * (one - z), gpn, gpn * r};
}

// The scalar form that writes a[0], a[H], a[2H] (input gates) and h[0], h[H], h[2H] (recurrent gates).
template <typename S>
inline void gate_adjoint(S gct, S r, S z, S n, S gh_n, S c_prev, int64_t H, S* __restrict__ a, S* __restrict__ h) {
  const GateAdjoint<S> g = gate_adjoint(gct, r, z, n, gh_n, c_prev);
  a[0] = g.a_r;
  a[H] = g.a_z;
  a[2 * H] = g.a_n;
  h[0] = g.a_r;
  h[H] = g.a_z;
  h[2 * H] = g.rh_n;
}

}  // namespace spikeseq
