// Install-from-first-index: a follower that needs entries the leader already removed by
// retention restarts its log at the leader's first index (the message log's "snapshot",
// compare paper §7). Also the learner that rejoins with a wiped data directory.
#include <gtest/gtest.h>

#include "harness.h"

namespace quorumq::raft {
namespace {

using test::Harness;

bool had_reset(Harness& h, int id, LogReset* out) {
  for (const Ready& rd : h.node(id).readies) {
    if (rd.reset_log) {
      *out = *rd.reset_log;
      return true;
    }
  }
  return false;
}

TEST(Install, followerBehindRetentionRestartsAtLeaderFirstIndex) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(3);
  for (int k = 0; k < 30; ++k) ASSERT_TRUE(h.r(1).propose(test::bytes("m" + std::to_string(k))));
  h.stabilize();
  h.tick_all(2);
  ASSERT_EQ(h.r(1).commit_index(), log_index(31));
  // Retention on the two up-to-date replicas removes the prefix node 3 still needs.
  h.disk(1).compact(log_index(20));
  h.disk(2).compact(log_index(20));
  h.heal();
  h.tick_all(5);
  LogReset reset;
  ASSERT_TRUE(had_reset(h, 3, &reset));
  EXPECT_EQ(reset.first_index, log_index(21));
  EXPECT_EQ(reset.prev_term, h.disk(1).term(log_index(20)));
  EXPECT_EQ(h.disk(3).first_index(), log_index(21));
  EXPECT_EQ(h.disk(3).last_index(), log_index(31));
  for (auto i = 21u; i <= 31u; ++i) {
    EXPECT_EQ(test::text(h.disk(3).at(log_index(i))), test::text(h.disk(1).at(log_index(i))));
  }
  EXPECT_EQ(h.r(3).commit_index(), log_index(31));
  // New entries keep flowing normally after the reset.
  auto idx = h.r(1).propose(test::bytes("after"));
  ASSERT_TRUE(idx.has_value());
  h.tick_all(2);
  EXPECT_EQ(h.disk(3).last_index(), *idx);
  EXPECT_EQ(h.r(3).commit_index(), *idx);
}

// A broker whose data directory was wiped rejoins as a learner (GUIDE: "a broker that lost
// its disk is not the broker it was"): it has an empty log and no votes, receives the log from
// the leader's first index, and never takes part in elections or commit.
TEST(Install, wipedLearnerCatchesUpFromLeaderFirstIndex) {
  Harness h(3, 1);
  h.start();
  h.elect(1);
  for (int k = 0; k < 10; ++k) ASSERT_TRUE(h.r(1).propose(test::bytes("m")));
  h.tick_all(2);
  h.disk(1).compact(log_index(8));
  h.crash(4);
  h.disk(4) = MemoryLog{};
  h.node(4).hs = HardState{};
  h.start(4);
  h.tick_all(4);
  EXPECT_EQ(h.disk(4).first_index(), log_index(9));
  EXPECT_EQ(h.disk(4).last_index(), h.r(1).log().last_index());
  EXPECT_EQ(h.r(4).role(), Role::follower);
}

// A wiped learner first reached by a deposed leader holds divergent entries at indexes the
// current leader believes it acknowledged. The current leader's heartbeat must not make it
// commit them: the heartbeat's (index, term) does not match, the learner refuses, and the
// leader forgets the old acknowledgements and repairs the log (found by sim seed 83778).
TEST(Install, wipedLearnerNeverCommitsStaleLeadersEntries) {
  Harness h(3, 1);
  for (int id = 1; id <= 4; ++id) h.set_term(id, 1);
  h.start();
  h.elect(1);
  ASSERT_EQ(h.r(1).term(), term_t(2));
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(h.r(1).propose(test::bytes("good")));
  h.tick_all(2);
  ASSERT_EQ(h.r(1).progress(node_id(4))->match, log_index(6));
  h.crash(4);
  h.disk(4) = MemoryLog{};
  h.node(4).hs = HardState{};
  h.start(4);
  Message stale{.type = MessageType::append, .from = node_id(3), .to = node_id(4),
                .term = term_t(1), .index = log_index(0), .log_term = term_t(0)};
  for (std::uint64_t i = 1; i <= 6; ++i) {
    stale.entries.push_back(Entry{log_index(i), term_t(1), EntryType::normal, test::bytes("stale")});
  }
  h.deliver(stale);
  h.stabilize();
  h.tick_all(4);
  for (const Entry& e : h.applied(4)) EXPECT_NE(test::text(e), "stale") << e.index.value;
  ASSERT_EQ(h.disk(4).last_index(), h.r(1).log().last_index());
  for (auto i = 1u; i <= h.disk(4).last_index().value; ++i) {
    EXPECT_EQ(h.disk(4).at(log_index(i)).term, h.disk(1).at(log_index(i)).term) << i;
  }
  EXPECT_EQ(h.r(4).commit_index(), h.r(1).commit_index());
}

// A stale install (the follower already committed past it) only gets an acknowledgement.
TEST(Install, staleInstallIsIgnored) {
  Harness h(3);
  h.start();
  h.elect(1);
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(h.r(1).propose(test::bytes("m")));
  h.tick_all(2);
  const log_index last = h.disk(2).last_index();
  h.r(2).step(Message{.type = MessageType::install_snapshot, .from = node_id(1),
                      .to = node_id(2), .term = h.r(1).term(), .index = log_index(3),
                      .log_term = h.r(1).term()});
  h.stabilize();
  EXPECT_EQ(h.disk(2).first_index(), log_index(1));
  EXPECT_EQ(h.disk(2).last_index(), last);
}

}  // namespace
}  // namespace quorumq::raft
