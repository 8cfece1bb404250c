#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace quorumq::bench {

std::size_t Histogram::bucket_of(std::uint64_t value) {
  value = std::min(value, kMaxTrackable);
  if (value < kExact) return static_cast<std::size_t>(value);
  // shift >= 1 puts the top kSubBucketBits bits of value in [kHalf, kExact).
  const int shift = std::bit_width(value) - kSubBucketBits;
  const std::uint64_t mantissa = value >> shift;
  return kExact + static_cast<std::size_t>(shift - 1) * kHalf + static_cast<std::size_t>(mantissa - kHalf);
}

std::uint64_t Histogram::bucket_low(std::size_t index) {
  if (index < kExact) return index;
  const std::size_t rel = index - kExact;
  const int shift = static_cast<int>(rel / kHalf) + 1;
  const std::uint64_t mantissa = kHalf + rel % kHalf;
  return mantissa << shift;
}

std::uint64_t Histogram::bucket_high(std::size_t index) {
  if (index < kExact) return index;
  const int shift = static_cast<int>((index - kExact) / kHalf) + 1;
  return bucket_low(index) + (std::uint64_t{1} << shift) - 1;
}

void Histogram::record(std::uint64_t value, std::uint64_t times) {
  if (times == 0) return;
  counts_[bucket_of(value)] += times;
  count_ += times;
  sum_ += value * times;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 100.0);
  // Nearest rank: the ceil(q% * n)-th smallest value, at least the first.
  auto rank = static_cast<std::uint64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t mid = bucket_low(i) + (bucket_high(i) - bucket_low(i)) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

}  // namespace quorumq::bench
