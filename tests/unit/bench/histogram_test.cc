// The histogram against exact nearest-rank percentiles of known samples (<= 1% relative error).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "histogram.h"

namespace quorumq::bench {
namespace {

std::uint64_t exact_percentile(std::vector<std::uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

void expect_close(std::uint64_t got, std::uint64_t want, const char* what) {
  const double err = std::abs(static_cast<double>(got) - static_cast<double>(want));
  EXPECT_LE(err, 0.01 * static_cast<double>(want)) << what << ": got " << got << " want " << want;
}

void check_all(const std::vector<std::uint64_t>& samples) {
  Histogram h;
  for (auto v : samples) h.record(v);
  for (double q : {0.0, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    expect_close(h.percentile(q), exact_percentile(samples, q), "percentile");
  }
  EXPECT_EQ(h.count(), samples.size());
  EXPECT_EQ(h.max(), *std::max_element(samples.begin(), samples.end()));
  EXPECT_EQ(h.min(), *std::min_element(samples.begin(), samples.end()));
}

TEST(Histogram, record_smallValuesAreExact) {
  Histogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(90), 90u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(Histogram, percentile_uniformMicrosecondsWithinOnePercent) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> d(1'000, 10'000'000);
  std::vector<std::uint64_t> v(100'000);
  for (auto& x : v) x = d(rng);
  check_all(v);
}

TEST(Histogram, percentile_heavyTailWithinOnePercent) {
  // Lognormal-ish latencies with rare multi-second stalls, like a failover.
  std::mt19937_64 rng(2);
  std::lognormal_distribution<double> d(12.0, 1.5);
  std::vector<std::uint64_t> v(200'000);
  for (auto& x : v) x = static_cast<std::uint64_t>(d(rng)) + 1;
  for (int i = 0; i < 50; ++i) v.push_back(3'000'000'000ull + static_cast<std::uint64_t>(i) * 10'000'000);
  check_all(v);
}

TEST(Histogram, bucket_boundsCoverEveryValueAndStayNarrow) {
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 257ull, 511ull, 512ull, 1'000'000ull, 123'456'789'012ull}) {
    const auto b = Histogram::bucket_of(v);
    EXPECT_LE(Histogram::bucket_low(b), v);
    EXPECT_GE(Histogram::bucket_high(b), v);
    const double width = static_cast<double>(Histogram::bucket_high(b) - Histogram::bucket_low(b));
    EXPECT_LE(width / 2, 0.005 * static_cast<double>(std::max<std::uint64_t>(v, 1)) + 0.5) << v;
  }
  // Adjacent buckets touch: no value falls between them.
  for (std::size_t i = 1; i < 2000; ++i) EXPECT_EQ(Histogram::bucket_high(i - 1) + 1, Histogram::bucket_low(i));
}

TEST(Histogram, merge_equalsRecordingEverythingInOne) {
  Histogram a, b, all;
  for (std::uint64_t v = 1; v < 5000; v += 3) {
    (v % 2 ? a : b).record(v * 997);
    all.record(v * 997);
  }
  a.merge(b);
  for (double q : {50.0, 99.0, 99.9}) EXPECT_EQ(a.percentile(q), all.percentile(q));
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
}

TEST(Histogram, record_hugeValueIsClampedButMaxStaysExact) {
  Histogram h;
  h.record(~std::uint64_t{0} >> 2);
  EXPECT_EQ(h.max(), ~std::uint64_t{0} >> 2);
  EXPECT_EQ(h.percentile(50), h.max());  // clamped to [min, max]
  Histogram empty;
  EXPECT_EQ(empty.percentile(99), 0u);
}

}  // namespace
}  // namespace quorumq::bench
