// Portable vectors of the build's width (GCC/Clang vector extensions); shared by the C++ kernels of spikeseq (built
// by spikeseq/kernels/_native.py). kVecBytes follows the target flags: 64 with AVX-512, 32 with AVX, else 16.
// Also: broadcasts, and std::vector storage aligned to a cache line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

template <typename S>
inline Vec<S> splat(S s) {  // one broadcast instruction (``Vec{} + s`` would cost an add: 0 + s is not s for -0)
  using I = std::conditional_t<sizeof(S) == 8, int64_t, int32_t>;
  typedef I IV __attribute__((vector_size(kVecBytes)));
  Vec<S> v{};
  v[0] = s;
  return __builtin_shuffle(v, IV{});
}

// std::vector storage aligned to a cache line: packed panels and blocks held transposed are read a whole vector at a
// time, and malloc's 16-byte alignment split every 64-byte vector (AVX-512) over two cache lines (two loads each):
// aligning the pruned inference's buffers took the 2 x 512 language model's forward from 108 to 88 ms.
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::size_t kAlign = 64;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, bytes > 0 ? bytes : kAlign);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) { std::free(p); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};
template <typename S>
using LineVector = std::vector<S, CacheLineAllocator<S>>;

// splat(*p) as one broadcast load (GCC makes two instructions of splat's shuffle when the value comes from memory).
template <typename S>
inline Vec<S> splat_load(const S* p) {
#if defined(__AVX512F__)
  if constexpr (kVecBytes == 64 && std::is_same_v<S, float>) return reinterpret_cast<Vec<S>>(_mm512_set1_ps(*p));
  if constexpr (kVecBytes == 64 && std::is_same_v<S, double>) return reinterpret_cast<Vec<S>>(_mm512_set1_pd(*p));
#endif
  return splat<S>(*p);
}

}  // namespace spikeseq
