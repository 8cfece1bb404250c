#include <gtest/gtest.h>

#include "availability.h"
#include "chaos_spec.h"

namespace quorumq::bench {
namespace {

constexpr std::int64_t kMs = 1'000'000;

TEST(AvailabilityTracker, window_endsAtFirstAckOfMessageSentAfterFault) {
  AvailabilityTracker t(0, 10.0, 2);
  t.open_fault("kill-leader", 1, 1000 * kMs, {0});
  t.on_ack(0, 999 * kMs, 1001 * kMs);   // sent before the fault: no proof of recovery
  t.on_ack(1, 1000 * kMs, 1002 * kMs);  // another partition
  t.on_ack(0, 1100 * kMs, 1500 * kMs);  // this one closes the window: 500 ms
  t.on_ack(0, 1200 * kMs, 1600 * kMs);  // later acks change nothing
  const auto s = t.finish(5000 * kMs);
  ASSERT_EQ(s.windows, 1u);
  EXPECT_NEAR(s.mttr_mean_s, 0.5, 1e-9);
  EXPECT_NEAR(s.mttr_max_s, 0.5, 1e-9);
  EXPECT_NEAR(s.availability, 10.0 / 10.5, 1e-9);
  EXPECT_EQ(s.partitions.at(0).faults, 1u);
  EXPECT_EQ(s.partitions.at(1).faults, 0u);
  EXPECT_DOUBLE_EQ(s.partitions.at(1).availability, 1.0);
  EXPECT_EQ(t.faults().at(0).window_ns.at(0), 500 * kMs);
}

TEST(AvailabilityTracker, finish_openWindowsRunToTheEndAndCountUnrecovered) {
  AvailabilityTracker t(0, 5.0, 1);
  t.open_fault("pause-leader", 2, 1000 * kMs, {0});
  const auto s = t.finish(3000 * kMs);
  EXPECT_EQ(s.unrecovered, 1u);
  EXPECT_NEAR(s.mttr_max_s, 2.0, 1e-9);
}

TEST(AvailabilityTracker, finish_mttrStatsOverAllWindows) {
  AvailabilityTracker t(0, 4.0, 2);
  t.open_fault("kill-leader", 1, 0, {0, 1});
  t.on_ack(0, 0, 100 * kMs);
  t.on_ack(1, 0, 300 * kMs);
  const auto s = t.finish(1000 * kMs);
  EXPECT_EQ(s.windows, 2u);
  EXPECT_NEAR(s.mttr_mean_s, 0.2, 1e-9);
  EXPECT_NEAR(s.mttr_p99_s, 0.3, 1e-9);
  EXPECT_NEAR(s.partitions.at(0).availability, 4.0 / 4.1, 1e-9);
}

TEST(ChaosSpec, parse_acceptsTheThreeFormsAndRejectsOthers) {
  auto k = ChaosSpec::parse("kill-leader:5");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->kind, ChaosSpec::Kind::kill_leader);
  EXPECT_DOUBLE_EQ(k->every_s, 5);
  auto p = ChaosSpec::parse("pause-leader:10:2.5");
  ASSERT_TRUE(p);
  EXPECT_DOUBLE_EQ(p->for_s, 2.5);
  EXPECT_TRUE(ChaosSpec::parse("restart-follower:3"));
  for (const char* bad : {"", "kill-leader", "kill-leader:0", "kill-leader:x", "pause-leader:5", "pause-leader:2:3",
                          "nuke:1", "kill-leader:5:1"})
    EXPECT_FALSE(ChaosSpec::parse(bad)) << bad;
}

}  // namespace
}  // namespace quorumq::bench
