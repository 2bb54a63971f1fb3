#pragma once

#include <array>
#include <cstdint>

namespace stockpile::bench {

// Log-linear latency histogram in microseconds: exact below 128 µs, then 64 sub-buckets per
// power of two (≤ 1.6 % relative error), up to ~2^40 µs. Not thread-safe: keep one per client
// and Merge at the end.
class Histogram {
 public:
  void Record(uint64_t micros);
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The upper edge of the bucket holding the q-quantile (0 < q <= 1); 0 when empty.
  uint64_t Quantile(double q) const;

  static int BucketOf(uint64_t micros);
  static uint64_t UpperEdge(int bucket);

 private:
  static constexpr int kSubBits = 6;
  static constexpr int kLinear = 2 << kSubBits;  // 128 exact buckets
  static constexpr int kBuckets = kLinear + 40 * (1 << kSubBits);
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace stockpile::bench
