#include "tools/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace stockpile::bench {

int Histogram::BucketOf(uint64_t micros) {
  if (micros < static_cast<uint64_t>(kLinear)) return static_cast<int>(micros);
  int shift = std::bit_width(micros) - (kSubBits + 1);
  int bucket = kLinear + (shift - 1) * (1 << kSubBits) +
               static_cast<int>((micros >> shift) - (1 << kSubBits));
  return std::min(bucket, kBuckets - 1);
}

uint64_t Histogram::UpperEdge(int bucket) {
  if (bucket < kLinear) return static_cast<uint64_t>(bucket);
  int shift = (bucket - kLinear) / (1 << kSubBits) + 1;
  uint64_t mantissa = (bucket - kLinear) % (1 << kSubBits) + (1 << kSubBits);
  return ((mantissa + 1) << shift) - 1;
}

void Histogram::Record(uint64_t micros) {
  ++counts_[BucketOf(micros)];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(UpperEdge(i), max_);
  }
  return max_;
}

}  // namespace stockpile::bench
