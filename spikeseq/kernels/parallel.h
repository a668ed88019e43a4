// Splitting a loop over [0, n) between threads; shared by the C++ kernels of spikeseq (built by
// spikeseq/kernels/_native.py). The calling thread takes the first share, so one thread costs no thread start.
//
// Every share runs with subnormal floats flushed to zero (x86 MXCSR FTZ and DAZ, restored afterwards), as
// TensorFlow's CPU thread pools run by default: an operation on a subnormal (|x| < 1.2e-38 in float32) takes a
// microcode assist of about a hundred cycles, and trained recurrent networks can make them in bulk (gates
// saturated near 0, gradients decaying through them): the EGRU backward of a trained language model ran 6x
// slower. Results differ from IEEE arithmetic only where a subnormal occurs, by less than 1.2e-38.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define SPIKESEQ_HAVE_MXCSR 1
#endif

namespace spikeseq {

// Flush-to-zero and denormals-are-zero on this thread while in scope (no-op where there is no MXCSR).
class FlushSubnormals {
 public:
#ifdef SPIKESEQ_HAVE_MXCSR
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtz | kDaz); }
  ~FlushSubnormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFtz = 0x8000, kDaz = 0x0040;
  unsigned saved_;
#endif
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;
};

// fn(a, b) for disjoint ranges covering [0, n); shares are whole multiples of `align` (cache lines of the
// innermost array) and only split when n >= min_n.
template <typename Fn>
void parallel(int64_t n, int nth, Fn fn, int64_t min_n = 8192, int64_t align = 64) {
  auto share = [&fn](int64_t a, int64_t b) {
    FlushSubnormals flush;
    fn(a, b);
  };
  if (nth <= 1 || n < min_n) {
    share(int64_t(0), n);
    return;
  }
  int64_t chunk = (n + nth - 1) / nth;
  chunk = (chunk + align - 1) / align * align;
  std::vector<std::thread> pool;
  for (int k = 1; k < nth; ++k) {
    int64_t a = k * chunk, b = std::min(n, a + chunk);
    if (a < b) pool.emplace_back(share, a, b);
  }
  share(int64_t(0), std::min(n, chunk));
  for (auto& t : pool) t.join();
}

}  // namespace spikeseq
