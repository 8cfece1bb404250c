// Leadership transfer (thesis §3.10): the leader brings the target up to date, then sends
// TimeoutNow; the target campaigns at once, bypassing pre-vote and the leader lease.
#include <gtest/gtest.h>

#include "harness.h"

namespace quorumq::raft {
namespace {

using test::Harness;

TEST(Transfer, upToDateTargetBecomesLeaderInNextTerm) {
  Harness h(3);
  h.start();
  h.elect(1);
  const term_t term = h.r(1).term();
  ASSERT_TRUE(h.r(1).transfer_leadership(node_id(2)).has_value());
  h.stabilize();
  EXPECT_EQ(h.r(2).role(), Role::leader);
  EXPECT_EQ(h.r(2).term(), term_t(term.value + 1));
  EXPECT_EQ(h.r(1).role(), Role::follower);
  EXPECT_EQ(h.r(1).leader(), node_id(2));
}

TEST(Transfer, laggingTargetIsCaughtUpFirst) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(3);
  for (int k = 0; k < 20; ++k) ASSERT_TRUE(h.r(1).propose(test::bytes("m")));
  h.stabilize();
  const log_index last = h.r(1).log().last_index();
  h.heal();
  ASSERT_TRUE(h.r(1).transfer_leadership(node_id(3)).has_value());
  h.stabilize();
  h.tick_all(3);
  ASSERT_EQ(h.r(3).role(), Role::leader);
  // The new leader holds everything the old one had (plus its own no-op).
  EXPECT_EQ(h.r(3).log().last_index(), log_index(last.value + 1));
  EXPECT_EQ(h.r(3).commit_index(), log_index(last.value + 1));
}

TEST(Transfer, proposalsAreRefusedWhileTransferring) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(2);
  ASSERT_TRUE(h.r(1).transfer_leadership(node_id(2)).has_value());
  auto p = h.r(1).propose(test::bytes("x"));
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, errc::leadership_transfer_pending);
}

TEST(Transfer, abandonedAfterElectionTimeoutIfTargetUnreachable) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(2);
  ASSERT_TRUE(h.r(1).transfer_leadership(node_id(2)).has_value());
  h.tick(1, h.r(1).config().election_timeout_ticks);
  h.stabilize();
  EXPECT_EQ(h.r(1).role(), Role::leader);
  EXPECT_FALSE(h.r(1).transfer_target().has_value());
  EXPECT_TRUE(h.r(1).propose(test::bytes("x")).has_value());
}

TEST(Transfer, invalidTargetsAreRejected) {
  Harness h(3, 1);
  h.start();
  h.elect(1);
  EXPECT_EQ(h.r(1).transfer_leadership(node_id(1)).error(), errc::invalid_transfer_target);
  EXPECT_EQ(h.r(1).transfer_leadership(node_id(4)).error(), errc::invalid_transfer_target);
  EXPECT_EQ(h.r(1).transfer_leadership(node_id(9)).error(), errc::invalid_transfer_target);
  EXPECT_EQ(h.r(2).transfer_leadership(node_id(3)).error(), errc::not_leader);
}

// TimeoutNow overrides the lease: followers that hear from the (old) leader still vote.
TEST(Transfer, worksWithCheckQuorumLease) {
  Harness h(5);
  h.start();
  h.elect(1);
  h.tick_all(2);  // followers are inside their lease
  ASSERT_TRUE(h.r(1).transfer_leadership(node_id(4)).has_value());
  h.stabilize();
  EXPECT_EQ(h.r(4).role(), Role::leader);
}

}  // namespace
}  // namespace quorumq::raft
