// The key -> partition mapping is a promise to users: these values must never change.
#include <gtest/gtest.h>

#include "quorumq/partitioner.h"

namespace quorumq {
namespace {

TEST(Murmur2, matches_kafka_reference_vectors) {
  // Apache Kafka's UtilsTest.testMurmur2 vectors: the same hash, bit for bit.
  EXPECT_EQ(murmur2("21"), -973932308);
  EXPECT_EQ(murmur2("foobar"), -790332482);
  EXPECT_EQ(murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(murmur2("abc"), 479470107);
}

TEST(PartitionForKey, fixed_partitions_for_fixed_keys) {
  // Pinned: a change here moves users' keys to other partitions.
  struct Case {
    const char* key;
    std::int32_t partitions;
    std::int32_t expected;
  };
  const Case cases[] = {
      {"21", 3, static_cast<std::int32_t>((static_cast<std::uint32_t>(-973932308) & 0x7fffffffu) % 3)},
      {"foobar", 10, static_cast<std::int32_t>((static_cast<std::uint32_t>(-790332482) & 0x7fffffffu) % 10)},
      {"abc", 7, 479470107 % 7},
  };
  for (const auto& c : cases) EXPECT_EQ(partition_for_key(c.key, c.partitions), c.expected) << c.key;
  EXPECT_EQ(partition_for_key("user-42", 12), 4);
  EXPECT_EQ(partition_for_key("", 5), 1);
}

TEST(PartitionForKey, always_in_range_and_deterministic) {
  for (int n = 1; n <= 64; ++n)
    for (int k = 0; k < 200; ++k) {
      const std::string key = "key-" + std::to_string(k);
      const auto p = partition_for_key(key, n);
      ASSERT_GE(p, 0);
      ASSERT_LT(p, n);
      ASSERT_EQ(p, partition_for_key(key, n));
    }
}

TEST(PartitionForKey, spreads_keys) {
  int counts[8] = {};
  for (int k = 0; k < 8000; ++k) ++counts[partition_for_key("k" + std::to_string(k), 8)];
  for (int c : counts) EXPECT_GT(c, 800);
}

}  // namespace
}  // namespace quorumq
