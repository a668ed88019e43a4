// The GRU gates' adjoint, shared by the EGRU kernels (egru.cpp: float training; egru_fixed.cpp: the fixed-point cell
// of target mode). From gct = d loss / d c~ and one step's saved r, z, n, gh_n = R_n y[t-1] + b_hn and the previous
// state c (c~ = z c + (1 - z) n, n = tanh(a_n + r gh_n), r and z sigmoids), it writes the pre-activation gradients
//   a[0], a[H], a[2H] = d a_r, d a_z, d a_n          (the input products' gates)
//   h[0], h[H], h[2H] = d a_r, d a_z, r d a_n        (the recurrent products' gates)
// in this order of operations (-ffp-contract=off: each product rounded on its own).
#pragma once

#include <cstdint>

namespace spikeseq {

template <typename S>
inline void gate_adjoint(S gct, S r, S z, S n, S gh_n, S c_prev, int64_t H, S* __restrict__ a, S* __restrict__ h) {
  const S gz = gct * (c_prev - n);
  const S gpn = gct * (S(1) - z) * (S(1) - n * n);
  const S gr = gpn * gh_n;
  const S gpr = gr * r * (S(1) - r);
  const S gpz = gz * z * (S(1) - z);
  a[0] = gpr;
  a[H] = gpz;
  a[2 * H] = gpn;
  h[0] = gpr;
  h[H] = gpz;
  h[2 * H] = gpn * r;
}

}  // namespace spikeseq
