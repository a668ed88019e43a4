// Splitting a loop over [0, n) between threads; shared by the C++ kernels of spikeseq (built by
// spikeseq/kernels/_native.py). The calling thread takes the first share, so one thread costs no thread start.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace spikeseq {

// fn(a, b) for disjoint ranges covering [0, n); shares are whole multiples of `align` (cache lines of the
// innermost array) and only split when n >= min_n.
template <typename Fn>
void parallel(int64_t n, int nth, Fn fn, int64_t min_n = 8192, int64_t align = 64) {
  if (nth <= 1 || n < min_n) {
    fn(int64_t(0), n);
    return;
  }
  int64_t chunk = (n + nth - 1) / nth;
  chunk = (chunk + align - 1) / align * align;
  std::vector<std::thread> pool;
  for (int k = 1; k < nth; ++k) {
    int64_t a = k * chunk, b = std::min(n, a + chunk);
    if (a < b) pool.emplace_back(fn, a, b);
  }
  fn(int64_t(0), std::min(n, chunk));
  for (auto& t : pool) t.join();
}

}  // namespace spikeseq
