#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

namespace stockpile::bench {

// Runs work(i) for i in [0, n) on `threads` threads (blocking calls: one in flight per thread).
inline void RunParallel(int threads, size_t n, const std::function<void(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  int count = std::max(1, std::min<int>(threads, static_cast<int>(n)));
  for (int t = 0; t < count; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) work(i);
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace stockpile::bench
