// Config::lost_state: a voter that restarted with an empty data directory must not help elect a
// leader that lacks entries committed with its help before it lost them. It neither votes nor
// stands until it has caught up with a leader, or the driver learns nothing was lost.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "harness.h"

namespace quorumq::raft {
namespace {

using test::Harness;

// Entries from..to (inclusive) of one term, each holding `text`.
std::vector<Entry> entries(std::uint64_t from, std::uint64_t to, std::uint64_t term, const std::string& text) {
  std::vector<Entry> es;
  for (std::uint64_t i = from; i <= to; ++i) es.push_back(Entry{log_index(i), term_t(term), EntryType::normal, test::bytes(text)});
  return es;
}

// 3 voters; entries committed by 1 and 2 while 3 was cut off; then 1 and 2 crash and 2 comes
// back with an empty disk (a replaced drive), 3 comes back with its short log.
void commit_without_3_then_wipe_2(Harness& h, bool lost_state) {
  h.start();
  h.elect(1);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  h.isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(h.r(1).propose(test::bytes("acked-" + std::to_string(i))));
  h.stabilize();
  ASSERT_EQ(h.r(1).commit_index(), log_index(6));  // no-op + 5, on 1 and 2 only
  ASSERT_EQ(h.r(3).log().last_index(), log_index(1));
  h.crash(1);
  h.crash(2);
  h.disk(2) = MemoryLog{};
  h.node(2).hs = HardState{};
  h.node(2).cfg.lost_state = lost_state;
  h.heal();
  h.start(2);
  h.start(3);
}

// The control: without the rule the empty voter elects the stale candidate, and entries that
// were committed (acknowledged to a client) are gone from the new leader's log.
TEST(LostState, withoutTheRuleAWipedVoterElectsAStaleLeader) {
  Harness h(3);
  commit_without_3_then_wipe_2(h, /*lost_state=*/false);
  h.elect(3);
  ASSERT_EQ(h.r(3).role(), Role::leader);
  EXPECT_LT(h.r(3).log().last_index(), log_index(6)) << "the committed entries are not in the new leader's log";
}

TEST(LostState, wipedVoterRefusesACandidateWithEntries) {
  Harness h(3);
  commit_without_3_then_wipe_2(h, /*lost_state=*/true);
  h.elect(3);
  EXPECT_NE(h.r(3).role(), Role::leader);
  EXPECT_GE(h.r(2).votes_withheld(), 1u);
  EXPECT_TRUE(h.r(2).lost_state());
  h.elect(2);  // it does not stand
  EXPECT_EQ(h.r(2).role(), Role::follower);

  // The member that holds the committed entries comes back: 3 votes for it, 2 still abstains
  // and catches up from it.
  h.start(1);
  h.elect(1);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  h.stabilize();
  EXPECT_FALSE(h.r(2).lost_state()) << "caught up with the leader: votes as usual again";
  EXPECT_EQ(h.r(2).log().last_index(), h.r(1).log().last_index());
  for (int id = 1; id <= 3; ++id) {
    std::set<std::string> acked;  // (a restarted node applies its log again)
    for (const Entry& e : h.applied(id))
      if (test::text(e).rfind("acked-", 0) == 0) acked.insert(test::text(e));
    EXPECT_EQ(acked.size(), 5u) << "node " << id << " applied every committed entry";
  }

  // Caught up, it is an ordinary voter: with 1 gone, 2 and 3 elect a leader (either may win:
  // their logs are equal now).
  h.crash(1);
  h.tick_all(60);
  int leader = 0;
  for (int id = 2; id <= 3; ++id)
    if (h.r(id).role() == Role::leader) leader = id;
  ASSERT_NE(leader, 0) << "the caught-up member did not vote";
  EXPECT_GE(h.r(leader).log().last_index(), log_index(7));
}

// A new cluster: every member starts not knowing; none stands until the driver learns that
// nothing was lost (the broker: a peer that never heard of it), then they elect as usual.
TEST(LostState, newGroupWaitsForTheVerdictThenElects) {
  Harness h(3, 0, [](Config& c) { c.lost_state = true; });
  h.start();
  h.tick_all(40);
  for (int id = 1; id <= 3; ++id) EXPECT_EQ(h.r(id).role(), Role::follower) << id;
  for (int id = 1; id <= 3; ++id) h.r(id).set_lost_state(false);
  h.tick_all(40);
  int leaders = 0;
  for (int id = 1; id <= 3; ++id) leaders += h.r(id).role() == Role::leader;
  ASSERT_EQ(leaders, 1);
  for (int id = 1; id <= 3; ++id) {
    EXPECT_FALSE(h.r(id).lost_state()) << id;
    EXPECT_EQ(h.r(id).commit_index(), log_index(1)) << id;
  }
}

// Until its log and commit index reach the leader's last index at first contact, the member
// neither stands nor votes, even for a candidate whose log looks as good as its own.
TEST(LostState, partlyCaughtUpMemberNeitherStandsNorVotes) {
  Harness h(3, 0, [](Config& c) { c.lost_state = true; });
  h.start(2);
  h.r(2).step(Message{.type = MessageType::append, .from = node_id(1), .to = node_id(2), .term = term_t(3),
                      .index = log_index(0), .log_term = term_t(0), .entries = entries(1, 4, 3, "x"), .commit = log_index(4),
                      .leader_last = log_index(10)});
  EXPECT_EQ(h.r(2).commit_index(), log_index(4));
  EXPECT_TRUE(h.r(2).lost_state());
  h.r(2).campaign_now();
  EXPECT_EQ(h.r(2).role(), Role::follower);
  // The rule can also be turned on by the driver mid-way: a candidate steps down.
  h.node(3).cfg.lost_state = false;
  h.start(3);
  h.r(3).campaign_now();
  ASSERT_NE(h.r(3).role(), Role::follower);
  h.r(3).set_lost_state(true);
  EXPECT_EQ(h.r(3).role(), Role::follower);
  EXPECT_TRUE(h.r(3).lost_state());
  h.queue().clear();
  // A candidate of a later term with the same log, once the leader's lease has run out:
  // refused, the vote counted as withheld.
  for (int k = 0; k < 3 * h.r(2).config().election_timeout_ticks; ++k) h.r(2).tick();
  EXPECT_EQ(h.r(2).role(), Role::follower);
  h.r(2).step(Message{.type = MessageType::vote, .from = node_id(3), .to = node_id(2), .term = term_t(5),
                      .index = log_index(4), .log_term = term_t(3)});
  ASSERT_TRUE(h.flush(2));
  bool refused = false;
  for (const Message& m : h.queue()) refused |= m.type == MessageType::vote_resp && m.reject;
  h.queue().clear();
  EXPECT_TRUE(refused);
  EXPECT_EQ(h.r(2).votes_withheld(), 1u);

  // The rest arrives and commits: the restriction ends.
  h.r(2).step(Message{.type = MessageType::append, .from = node_id(3), .to = node_id(2), .term = term_t(5),
                      .index = log_index(4), .log_term = term_t(3), .entries = entries(5, 10, 5, "y"), .commit = log_index(10),
                      .leader_last = log_index(10)});
  EXPECT_FALSE(h.r(2).lost_state());
}

// The bound comes from the CURRENT leader: a first leader's last index may include entries that
// were never committed and that the next leader dropped; an idle group would never reach it.
TEST(LostState, aNewLeadersBoundReplacesTheOldOne) {
  Harness h(3, 0, [](Config& c) { c.lost_state = true; });
  h.start(2);
  h.r(2).step(Message{.type = MessageType::append, .from = node_id(1), .to = node_id(2), .term = term_t(3),
                      .index = log_index(0), .log_term = term_t(0), .entries = entries(1, 2, 3, "x"), .commit = log_index(2),
                      .leader_last = log_index(100)});
  EXPECT_TRUE(h.r(2).lost_state());
  // Leader 3 of term 4 holds 1..2 and its no-op at 3: its bound is 3.
  h.r(2).step(Message{.type = MessageType::append, .from = node_id(3), .to = node_id(2), .term = term_t(4),
                      .index = log_index(2), .log_term = term_t(3),
                      .entries = {Entry{log_index(3), term_t(4), EntryType::noop, nullptr}}, .commit = log_index(3),
                      .leader_last = log_index(3)});
  EXPECT_FALSE(h.r(2).lost_state());
}

// Config::held_before: a replica that cut its log at a damaged entry votes as if it still held
// what it held, and never stands. Two damaged replicas of three then still elect the whole one
// (as learners they left the group without a leader for good: chaos seed 100875108).
TEST(HeldBefore, twoDamagedReplicasStillElectTheWholeOne) {
  Harness h(3);
  h.set_log(1, {1, 1, 2, 2});
  for (int id : {2, 3}) {
    h.set_log(id, {1});
    h.set_term(id, 2);
    h.node(id).cfg.held_before = std::pair{log_index(4), term_t(2)};
  }
  h.start();
  h.tick_all(60);
  EXPECT_EQ(h.r(1).role(), Role::leader);
  EXPECT_EQ(h.r(2).role(), Role::follower);
  EXPECT_EQ(h.r(3).role(), Role::follower);
  EXPECT_EQ(h.log_terms(2), h.log_terms(1)) << "caught up from the whole replica";
}

TEST(HeldBefore, votesOnlyForACandidateAtLeastAsUpToDateAsTheOldLog) {
  Harness h(3, 0, [](Config& c) { c.pre_vote = false; });
  h.set_log(1, {1, 1, 1});  // behind what 2 held before its cut
  h.set_log(3, {1, 1, 2, 2});
  h.set_log(2, {1});
  h.set_term(2, 2);
  h.node(2).cfg.held_before = std::pair{log_index(4), term_t(2)};
  h.start();
  h.isolate(3);
  h.elect(1);
  EXPECT_NE(h.r(1).role(), Role::leader) << "2 held (4, 2) before its cut: 1's (3, 1) is behind it";
  h.r(2).campaign_now();
  EXPECT_EQ(h.r(2).role(), Role::follower) << "a damaged replica never stands";
  h.heal();
  h.isolate(1);
  h.elect(3);
  EXPECT_EQ(h.r(3).role(), Role::leader);
}

}  // namespace
}  // namespace quorumq::raft
