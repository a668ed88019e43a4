// Portable vectors of the build's width (GCC/Clang vector extensions); shared by the C++ kernels of spikeseq (built
// by spikeseq/kernels/_native.py). kVecBytes follows the target flags: 64 with AVX-512, 32 with AVX, else 16.
#pragma once

namespace spikeseq {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <typename S>
struct VecOf {
  typedef S type __attribute__((vector_size(kVecBytes), aligned(alignof(S))));  // unaligned loads allowed
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

}  // namespace spikeseq
