// Messages no correct peer can send (issue 13): misaddressed, from this node itself, from a
// non-member, malformed entries, acknowledgements beyond the leader's log, and log resets
// (install_snapshot) not from the leader this node follows in this term. Before, the first two
// tripped an assertion (SIGABRT on every broker from one frame) and a forged install_snapshot
// erased acknowledged entries on every replica. Now each is dropped, counted, and changes
// nothing: the committed log survives and the group keeps committing.
#include <gtest/gtest.h>

#include "harness.h"

namespace quorumq::raft::test {
namespace {

// A 3-node group with node 1 leading and `n` committed entries everywhere.
class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    h_.start();
    h_.elect(1);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(h_.r(1).propose(bytes("m" + std::to_string(i))).has_value());
    h_.stabilize();
    h_.tick_all(3);  // heartbeats: followers learn the commit index
    ASSERT_EQ(h_.r(1).role(), Role::leader);
    for (int id = 1; id <= 3; ++id) ASSERT_EQ(h_.r(id).commit_index(), log_index(6)) << "node " << id;
  }
  // Delivers `m` to node `to` directly (as the network would) and expects it dropped.
  void expect_dropped(int to, Message m) {
    const auto before = h_.r(to).messages_rejected();
    const auto term = h_.r(to).term();
    const auto last = h_.r(to).log().last_index();
    const auto role = h_.r(to).role();
    h_.r(to).step(m);
    h_.check(to);
    EXPECT_EQ(h_.r(to).messages_rejected(), before + 1) << to_string(m);
    EXPECT_EQ(h_.r(to).term(), term) << to_string(m);
    EXPECT_EQ(h_.r(to).log().last_index(), last) << to_string(m);
    EXPECT_EQ(h_.r(to).role(), role) << to_string(m);
    EXPECT_FALSE(h_.r(to).has_ready() && !h_.r(to).ready().messages.empty()) << "answered a dropped message";
  }
  // The group still commits and every node holds the same committed entries.
  void expect_group_healthy() {
    h_.heal();
    h_.filter = nullptr;
    h_.tick_all(30);
    int leader = 0;
    for (int id = 1; id <= 3; ++id)
      if (h_.r(id).role() == Role::leader) leader = id;
    ASSERT_NE(leader, 0);
    ASSERT_TRUE(h_.r(leader).propose(bytes("after")).has_value());
    h_.stabilize();
    h_.tick_all(3);
    const auto last = h_.r(leader).log().last_index();
    for (int id = 1; id <= 3; ++id) {
      EXPECT_EQ(h_.r(id).commit_index(), last) << "node " << id;
      EXPECT_EQ(h_.r(id).log().first_index(), log_index(1)) << "node " << id << " lost its log prefix";
      EXPECT_EQ(h_.log_terms(id), h_.log_terms(leader)) << "node " << id;
    }
  }
  Harness h_{3};
};

TEST_F(Hostile, misaddressedMessage_droppedNotAsserted) {
  // Was: assert(m.to == cfg_.id) -> SIGABRT.
  expect_dropped(2, Message{.type = MessageType::heartbeat, .from = node_id(1), .to = node_id(3),
                            .term = h_.r(2).term()});
  expect_group_healthy();
}

TEST_F(Hostile, messageClaimingToComeFromReceiver_dropped) {
  // Was: assert(m.from != cfg_.id) -> SIGABRT.
  expect_dropped(2, Message{.type = MessageType::vote, .from = node_id(2), .to = node_id(2),
                            .term = term_t(99), .index = log_index(100), .log_term = term_t(50)});
  expect_group_healthy();
}

TEST_F(Hostile, nonMember_cannotStartAnElectionOrLead) {
  expect_dropped(2, Message{.type = MessageType::vote, .from = node_id(7), .to = node_id(2),
                            .term = term_t(99), .index = log_index(100), .log_term = term_t(50)});
  expect_dropped(2, Message{.type = MessageType::append, .from = node_id(7), .to = node_id(2),
                            .term = term_t(99), .index = log_index(6), .log_term = h_.r(2).term()});
  expect_group_healthy();
}

TEST_F(Hostile, forgedInstallSnapshotAtHigherTerm_erasesNothing) {
  // The reported attack: an install_snapshot "from the leader" at a later term, addressed to
  // every replica, reset all three logs past the acknowledged entries.
  for (int to = 1; to <= 3; ++to) {
    const int from = to == 1 ? 2 : 1;
    expect_dropped(to, Message{.type = MessageType::install_snapshot, .from = node_id(from), .to = node_id(to),
                               .term = term_t(h_.r(to).term().value + 5), .index = log_index(1000),
                               .log_term = term_t(h_.r(to).term().value + 5), .commit = log_index(1000),
                               .leader_last = log_index(1000)});
  }
  expect_group_healthy();
}

TEST_F(Hostile, installSnapshotFromAFollowerInTheSameTerm_dropped) {
  // Node 3 follows node 1 in this term: a reset "from" node 2 is not from its leader.
  expect_dropped(3, Message{.type = MessageType::install_snapshot, .from = node_id(2), .to = node_id(3),
                            .term = h_.r(3).term(), .index = log_index(50), .log_term = h_.r(3).term(),
                            .commit = log_index(50), .leader_last = log_index(50)});
  expect_group_healthy();
}

TEST_F(Hostile, installSnapshotBeyondWhatTheLeaderCommitted_dropped) {
  // Even "from the leader": a log start above the commit index it sends is impossible
  // (retention removes only committed entries).
  expect_dropped(3, Message{.type = MessageType::install_snapshot, .from = node_id(1), .to = node_id(3),
                            .term = h_.r(3).term(), .index = log_index(50), .log_term = h_.r(3).term(),
                            .commit = log_index(6), .leader_last = log_index(60)});
  expect_group_healthy();
}

TEST_F(Hostile, appendWithNonContiguousOrFutureTermEntries_dropped) {
  const term_t t = h_.r(2).term();
  Message gap{.type = MessageType::append, .from = node_id(1), .to = node_id(2), .term = t,
              .index = log_index(6), .log_term = t};
  gap.entries = {Entry{log_index(8), t, EntryType::normal, bytes("x")}};
  expect_dropped(2, gap);
  Message future{.type = MessageType::append, .from = node_id(1), .to = node_id(2), .term = t,
                 .index = log_index(6), .log_term = t};
  future.entries = {Entry{log_index(7), term_t(t.value + 3), EntryType::normal, bytes("x")}};
  expect_dropped(2, future);
  Message overflow{.type = MessageType::append, .from = node_id(1), .to = node_id(2), .term = t,
                   .index = log_index(~std::uint64_t{0}), .log_term = t};
  overflow.entries = {Entry{log_index(0), t, EntryType::normal, bytes("x")}};
  expect_dropped(2, overflow);
  expect_group_healthy();
}

TEST_F(Hostile, appendRewritingACommittedEntry_changesNothing) {
  // A later term (so the entry may carry a new term) rewriting committed entry 3: answered
  // with our commit index (everything up to it matches any real leader), never applied.
  const term_t t{h_.r(2).term().value + 1};
  Message m{.type = MessageType::append, .from = node_id(1), .to = node_id(2), .term = t,
            .index = log_index(2), .log_term = h_.r(2).log().term(log_index(2)).value()};
  m.entries = {Entry{log_index(3), t, EntryType::normal, bytes("forged")}};
  const auto before = h_.log_terms(2);
  const auto rejected = h_.r(2).messages_rejected();
  h_.r(2).step(m);
  h_.check(2);
  EXPECT_EQ(h_.log_terms(2), before) << "a committed entry was rewritten";
  EXPECT_EQ(h_.r(2).messages_rejected(), rejected);
  expect_group_healthy();
}

TEST_F(Hostile, ackBeyondTheLeadersLog_dropped) {
  // A forged append_resp acknowledging index 10^6 would move match past the log and let the
  // leader "commit" entries it does not have.
  expect_dropped(1, Message{.type = MessageType::append_resp, .from = node_id(2), .to = node_id(1),
                            .term = h_.r(1).term(), .index = log_index(1000000)});
  EXPECT_EQ(h_.r(1).commit_index(), log_index(6));
  expect_group_healthy();
}

TEST_F(Hostile, heartbeatCommittingBeyondTheNamedEntry_dropped) {
  expect_dropped(2, Message{.type = MessageType::heartbeat, .from = node_id(1), .to = node_id(2),
                            .term = h_.r(2).term(), .index = log_index(3), .log_term = h_.r(2).term(),
                            .commit = log_index(900)});
  expect_group_healthy();
}

TEST_F(Hostile, duplicatedAndReplayedMessages_changeNothing) {
  // Replays of every message of a round (duplicates are normal on a network) are harmless.
  std::vector<Message> seen;
  h_.filter = [&](Message& m) {
    seen.push_back(m);
    return true;
  };
  ASSERT_TRUE(h_.r(1).propose(bytes("dup")).has_value());
  h_.stabilize();
  h_.filter = nullptr;
  for (int k = 0; k < 3; ++k)
    for (const auto& m : seen) h_.deliver(m);
  h_.stabilize();
  EXPECT_EQ(h_.log_terms(1), h_.log_terms(2));
  EXPECT_EQ(h_.log_terms(1), h_.log_terms(3));
  expect_group_healthy();
}

}  // namespace
}  // namespace quorumq::raft::test
