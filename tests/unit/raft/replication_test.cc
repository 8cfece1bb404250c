// Log replication (paper §5.3), the Ready contract (persist, send, apply), and the leader's
// parallel disk write (thesis §10.2.1).
#include <gtest/gtest.h>

#include "harness.h"

namespace quorumq::raft {
namespace {

using test::Harness;

TEST(Replication, proposalCommitsAndAppliesEverywhere) {
  Harness h(3);
  h.start();
  h.elect(1);
  auto idx = h.r(1).propose(test::bytes("hello"));
  ASSERT_TRUE(idx.has_value());
  EXPECT_EQ(*idx, log_index(2));  // after the no-op
  h.stabilize();
  h.tick_all(3);  // heartbeats carry the commit index to followers
  for (int id = 1; id <= 3; ++id) {
    EXPECT_EQ(h.r(id).commit_index(), log_index(2)) << id;
    ASSERT_EQ(h.applied(id).size(), 2u) << id;
    EXPECT_EQ(h.applied(id)[0].type, EntryType::noop);
    EXPECT_EQ(test::text(h.applied(id)[1]), "hello");
  }
}

TEST(Replication, proposeOnFollowerReturnsLeaderHint) {
  Harness h(3);
  h.start();
  h.elect(2);
  auto r = h.r(1).propose(test::bytes("x"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::not_leader);
  EXPECT_EQ(r.error().leader_hint, node_id(2));
}

// Thesis §10.2.1: the leader sends AppendEntries before its own write completes, but counts
// itself toward the commit quorum only for entries reported durable.
TEST(Replication, leaderSendsBeforePersistButCountsItselfOnlyWhenDurable) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(3);
  auto idx = h.r(1).propose(test::bytes("p"));
  ASSERT_TRUE(idx.has_value());
  Ready rd = h.r(1).ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  bool append_early = false;
  for (const Message& m : rd.messages_early) append_early |= m.type == MessageType::append;
  EXPECT_TRUE(append_early);
  // Deliver the AppendEntries and let node 2 persist and acknowledge; node 1 has not persisted.
  for (const Message& m : rd.messages_early) h.deliver(m);
  h.flush(2);
  while (!h.queue().empty()) {
    Message m = h.queue().front();
    h.queue().pop_front();
    h.deliver(m);
  }
  // Node 2 alone acked: 1 of 3 durable copies (node 1's own copy is not yet durable).
  EXPECT_LT(h.r(1).commit_index(), *idx);
  h.disk(1).apply_ready(rd);
  h.r(1).advance(rd);
  EXPECT_EQ(h.r(1).commit_index(), *idx);
}

// on_persisted(): a driver whose write completes before it can call advance() (e.g. a group
// commit callback) lets the leader count itself at once.
TEST(Replication, onPersistedCountsLeaderBeforeAdvance) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(3);
  auto idx = h.r(1).propose(test::bytes("p"));
  ASSERT_TRUE(idx.has_value());
  Ready rd = h.r(1).ready();
  for (const Message& m : rd.messages_early) h.deliver(m);
  h.flush(2);
  while (!h.queue().empty()) {
    Message m = h.queue().front();
    h.queue().pop_front();
    h.deliver(m);
  }
  ASSERT_LT(h.r(1).commit_index(), *idx);
  h.disk(1).apply_ready(rd);
  h.r(1).on_persisted(rd.entries.back().index, rd.entries.back().term);
  EXPECT_EQ(h.r(1).commit_index(), *idx);
  h.r(1).advance(rd);  // idempotent for the entries already reported
  EXPECT_EQ(h.r(1).log().unstable_count(), 0u);
}

// A follower's acknowledgement promises durability: it is only in the after-persist list.
TEST(Replication, followerAcksAreReleasedOnlyAfterPersist) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.r(1).propose(test::bytes("p"));
  h.stabilize();
  for (int id = 2; id <= 3; ++id) {
    for (const Ready& rd : h.node(id).readies) {
      for (const Message& m : rd.messages_early) {
        EXPECT_NE(m.type, MessageType::append_resp) << "follower " << id;
      }
    }
  }
}

// Crash of a follower loses what it had not persisted; the leader re-sends it.
TEST(Replication, followerCrashBeforePersistLosesNothingCommitted) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(3);
  auto idx = h.r(1).propose(test::bytes("p"));
  h.flush(1);
  while (!h.queue().empty()) {
    Message m = h.queue().front();
    h.queue().pop_front();
    h.deliver(m);  // node 2 steps the append but never persists it
  }
  h.crash(2);
  h.start(2);
  h.stabilize();
  EXPECT_LT(h.r(1).commit_index(), *idx);
  h.tick_all(3);
  EXPECT_EQ(h.r(1).commit_index(), *idx);
  EXPECT_EQ(h.disk(2).last_index(), *idx);
}

// Batching and pipelining: a far-behind follower is caught up in bounded batches, several in
// flight at once.
TEST(Replication, farBehindFollowerCatchesUpInBatches) {
  Harness h(3, 0, [](Config& c) {
    c.max_msg_bytes = 10 * (Entry::overhead_bytes + 8);
    c.max_inflight_msgs = 4;
  });
  h.start();
  h.elect(1);
  h.isolate(3);
  for (int k = 0; k < 200; ++k) ASSERT_TRUE(h.r(1).propose(test::bytes("payload" + std::to_string(k % 10))));
  h.stabilize();
  h.heal();
  std::size_t max_batch = 0, appends = 0;
  h.filter = [&](Message& m) {
    if (m.type == MessageType::append && m.to == node_id(3)) {
      max_batch = std::max(max_batch, m.entries.size());
      ++appends;
    }
    return true;
  };
  h.tick_all(3);
  EXPECT_EQ(h.disk(3).last_index(), h.r(1).log().last_index());
  EXPECT_LE(max_batch, 10u);
  EXPECT_GE(max_batch, 5u);
  EXPECT_LT(appends, 60u);
}

TEST(Replication, staleLeaderStepsDownWhenTermIsHigher) {
  Harness h(3);
  h.start();
  h.elect(1);
  h.isolate(1);
  h.tick_all(40);  // 2 or 3 elect a new leader; 1 steps down by check-quorum or stays stale
  h.heal();
  h.tick_all(5);
  int leaders = 0;
  for (int id = 1; id <= 3; ++id) leaders += h.r(id).role() == Role::leader;
  EXPECT_EQ(leaders, 1);
  EXPECT_NE(h.r(1).role(), Role::leader);
}

}  // namespace
}  // namespace quorumq::raft
