// The verifier fed with deliberate losses, duplicates and reorderings finds each.
#include <gtest/gtest.h>

#include "verifier.h"

namespace quorumq::bench {
namespace {

TEST(Verifier, result_cleanRunIsOk) {
  Verifier v(2);
  for (std::uint64_t s = 0; s < 100; ++s) {
    v.on_acked(0, s, static_cast<std::int32_t>(s % 3));
    v.on_acked(1, s, static_cast<std::int32_t>(s % 3));
  }
  for (std::uint64_t s = 0; s < 100; ++s) {
    v.on_consumed(static_cast<std::int32_t>(s % 3), 0, s);
    v.on_consumed(static_cast<std::int32_t>(s % 3), 1, s);
  }
  const auto r = v.result();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.acked, 200u);
  EXPECT_EQ(r.consumed, 200u);
  EXPECT_EQ(v.outstanding(), 0u);
}

TEST(Verifier, result_findsEachLoss) {
  Verifier v(1);
  for (std::uint64_t s = 0; s < 10; ++s) v.on_acked(0, s, 0);
  for (std::uint64_t s = 0; s < 10; ++s)
    if (s != 3 && s != 7) v.on_consumed(0, 0, s);
  const auto r = v.result();
  EXPECT_EQ(r.lost, 2u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.reordered, 0u);
  EXPECT_FALSE(r.ok());
}

TEST(Verifier, result_findsEachDuplicate) {
  Verifier v(1);
  for (std::uint64_t s = 0; s < 5; ++s) v.on_acked(0, s, 0);
  for (std::uint64_t s : {0, 1, 1, 2, 3, 3, 3, 4}) v.on_consumed(0, 0, s);
  const auto r = v.result();
  EXPECT_EQ(r.duplicated, 3u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.reordered, 0u);  // a redelivered copy is a duplicate, not also a reordering
}

TEST(Verifier, result_findsEachReordering) {
  Verifier v(1);
  for (std::uint64_t s = 0; s < 6; ++s) v.on_acked(0, s, 0);
  for (std::uint64_t s : {0, 2, 1, 3, 5, 4}) v.on_consumed(0, 0, s);
  const auto r = v.result();
  EXPECT_EQ(r.reordered, 2u);  // 1 after 2, 4 after 5
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.duplicated, 0u);
}

TEST(Verifier, result_orderIsPerPartitionAndPerProducer) {
  // Interleaving producers and partitions is not a reordering.
  Verifier v(2);
  v.on_acked(0, 0, 0);
  v.on_acked(0, 1, 1);
  v.on_acked(1, 0, 0);
  v.on_acked(1, 1, 0);
  v.on_consumed(1, 0, 1);
  v.on_consumed(0, 1, 0);
  v.on_consumed(0, 0, 0);
  v.on_consumed(0, 1, 1);
  EXPECT_TRUE(v.result().ok());
}

TEST(Verifier, result_messageOnAnotherPartitionThanAckedIsReordered) {
  Verifier v(1);
  v.on_acked(0, 0, 1);
  v.on_consumed(2, 0, 0);
  EXPECT_EQ(v.result().reordered, 1u);
}

TEST(Verifier, result_consumedBeforeAckCountsOnceAckArrives) {
  Verifier v(1);
  v.on_consumed(0, 0, 0);
  EXPECT_EQ(v.result().unacked_consumed, 1u);
  v.on_acked(0, 0, 0);
  const auto r = v.result();
  EXPECT_EQ(r.unacked_consumed, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_TRUE(r.ok());
}

TEST(Verifier, result_unackedButWrittenIsNotAnError) {
  // A send that failed after the broker wrote it shows up in the log: allowed.
  Verifier v(1);
  v.on_acked(0, 0, 0);
  v.on_consumed(0, 0, 0);
  v.on_consumed(0, 0, 1);
  const auto r = v.result();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.unacked_consumed, 1u);
}

}  // namespace
}  // namespace quorumq::bench
