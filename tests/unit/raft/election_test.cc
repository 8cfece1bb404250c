// Leader election (paper §5.2), pre-vote (thesis §9.6), check-quorum (thesis §6.2), learners
// (thesis §4.2.1).
#include <gtest/gtest.h>

#include "harness.h"

namespace quorumq::raft {
namespace {

using test::Harness;

int count_leaders(Harness& h) {
  int n = 0;
  for (int id = 1; id <= h.size(); ++id) {
    if (h.node(id).raft && h.r(id).role() == Role::leader) ++n;
  }
  return n;
}

int leader_of(Harness& h) {
  for (int id = 1; id <= h.size(); ++id) {
    if (h.node(id).raft && h.r(id).role() == Role::leader) return id;
  }
  return 0;
}

TEST(Election, singleVoterElectsItselfOnTimeout) {
  Harness h(1);
  h.start();
  h.tick_all(2 * h.r(1).config().election_timeout_ticks);
  EXPECT_EQ(h.r(1).role(), Role::leader);
  EXPECT_EQ(h.r(1).term(), term_t(1));
  // The no-op commits once it is durable.
  EXPECT_EQ(h.r(1).commit_index(), log_index(1));
}

TEST(Election, threeNodesElectExactlyOneLeaderByTimeout) {  // paper §5.2
  Harness h(3);
  h.start();
  h.tick_all(30);
  ASSERT_EQ(count_leaders(h), 1);
  const int l = leader_of(h);
  for (int id = 1; id <= 3; ++id) {
    EXPECT_EQ(h.r(id).leader(), node_id(l)) << id;
    EXPECT_EQ(h.r(id).term(), h.r(l).term()) << id;
    EXPECT_EQ(h.r(id).commit_index(), log_index(1)) << "no-op of the new term committed";
  }
}

TEST(Election, voteIsPersistedBeforeResponseIsSent) {  // paper figure 2: persist before reply
  Harness h(3);
  h.start();
  h.r(1).campaign_now();  // pre-vote round
  h.stabilize();
  ASSERT_EQ(h.r(1).role(), Role::leader);
  for (int id = 2; id <= 3; ++id) {
    bool seen = false;
    for (const Ready& rd : h.node(id).readies) {
      for (const Message& m : rd.messages) {
        if (m.type == MessageType::vote_resp && !m.reject) {
          seen = true;
          ASSERT_TRUE(rd.hard_state.has_value());
          EXPECT_EQ(rd.hard_state->vote, node_id(1));
        }
      }
      for (const Message& m : rd.messages_early) {
        EXPECT_NE(m.type, MessageType::vote_resp) << "a vote must not precede its persistence";
      }
    }
    EXPECT_TRUE(seen) << id;
  }
}

TEST(Election, candidateWithStaleLogIsRejected) {  // paper §5.4.1 election restriction
  Harness h(3, 0, [](Config& c) { c.pre_vote = false; });
  h.set_log(1, {1});
  h.set_log(2, {1, 2});
  h.set_log(3, {1, 2});
  h.start();
  h.elect(1);
  EXPECT_NE(h.r(1).role(), Role::leader);
  h.elect(2);
  EXPECT_EQ(h.r(2).role(), Role::leader);
}

// Thesis §9.6: a node cut off from the others keeps failing its pre-vote and so never raises
// its term; when it comes back it does not force the healthy leader to step down.
TEST(PreVote, partitionedNodeDoesNotDisruptHealthyLeader) {
  Harness h(3);
  h.start();
  h.elect(1);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  const term_t term = h.r(1).term();
  h.isolate(3);
  h.tick(3, 200);  // many election timeouts: many pre-vote rounds, all unanswered
  h.stabilize();
  EXPECT_EQ(h.r(3).term(), term) << "pre-vote must not bump the term";
  EXPECT_EQ(h.r(3).role(), Role::pre_candidate);
  h.heal();
  h.tick_all(5);
  EXPECT_EQ(h.r(1).role(), Role::leader);
  EXPECT_EQ(h.r(1).term(), term);
  EXPECT_EQ(h.r(3).leader(), node_id(1));
}

// Without pre-vote the same partition raises the isolated node's term, and its return deposes
// the leader: the disruption pre-vote exists to prevent.
TEST(PreVote, withoutPreVoteReturningNodeForcesNewTerm) {
  Harness h(3, 0, [](Config& c) {
    c.pre_vote = false;
    c.check_quorum = false;
  });
  h.start();
  h.elect(1);
  const term_t term = h.r(1).term();
  h.isolate(3);
  h.tick(3, 100);
  EXPECT_GT(h.r(3).term(), term);
  h.heal();
  h.tick_all(40);
  EXPECT_GT(h.r(1).term(), term);
}

// Thesis §4.2.3: with check-quorum, a node that hears from its leader ignores a vote request
// of a higher term (the lease), so the leader is not deposed by a flaky peer.
TEST(CheckQuorum, followerInLeaseIgnoresHigherTermVote) {
  Harness h(3);
  h.start();
  h.elect(1);
  const term_t term = h.r(1).term();
  h.r(2).step(Message{.type = MessageType::vote, .from = node_id(3), .to = node_id(2),
                      .term = term_t(term.value + 5), .index = log_index(100),
                      .log_term = term_t(term.value + 4)});
  EXPECT_EQ(h.r(2).term(), term);
  EXPECT_EQ(h.r(2).leader(), node_id(1));
}

TEST(CheckQuorum, leaderWithoutMajorityStepsDown) {  // thesis §6.2
  Harness h(3);
  h.start();
  h.elect(1);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  h.isolate(1);
  h.tick(1, 2 * h.r(1).config().election_timeout_ticks);
  EXPECT_EQ(h.r(1).role(), Role::follower);
  EXPECT_FALSE(h.r(1).leader().has_value());
  auto p = h.r(1).propose(test::bytes("x"));
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, errc::not_leader);
}

TEST(CheckQuorum, leaderHearingMajorityStaysLeader) {
  Harness h(5);
  h.start();
  h.elect(1);
  h.isolate(4);
  h.isolate(5);
  h.tick_all(50);
  EXPECT_EQ(h.r(1).role(), Role::leader);
}

// Thesis §4.2.1: a learner receives the log but never votes, never campaigns and never counts
// toward a quorum.
// Raft::peer_unreachable: a leader whose process is gone (its peer port refuses connections)
// is replaced within a few ticks instead of an election timeout; the lowest surviving id goes
// first so the survivors do not split the vote.
TEST(FastElection, survivorsReplaceAGoneLeaderWithinAFewTicks) {
  Harness h(3);
  h.start();
  h.elect(3);
  const term_t term = h.r(3).term();
  h.crash(3);
  h.r(1).peer_unreachable(node_id(3));
  h.r(2).peer_unreachable(node_id(3));
  EXPECT_FALSE(h.r(1).leader().has_value());
  h.tick_all(Raft::kFastElectionFirstTicks);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  EXPECT_EQ(h.r(1).term(), term_t(term.value + 1)) << "one election, no split vote";
  EXPECT_EQ(h.r(2).leader(), node_id(1));
  EXPECT_LT(Raft::kFastElectionFirstTicks + Raft::kFastElectionStepTicks, h.r(1).config().election_timeout_ticks);
}

TEST(FastElection, withoutTheSignalTheSurvivorsWaitForTheTimeout) {
  Harness h(3);
  h.start();
  h.elect(3);
  h.crash(3);
  h.tick_all(Raft::kFastElectionFirstTicks + Raft::kFastElectionStepTicks);
  EXPECT_NE(h.r(1).role(), Role::leader);
  EXPECT_NE(h.r(2).role(), Role::leader);
  EXPECT_EQ(h.r(1).leader(), node_id(3));
}

TEST(FastElection, signalAboutAnotherNodeChangesNothing) {
  Harness h(3);
  h.start();
  h.elect(1);
  const term_t term = h.r(1).term();
  h.r(2).peer_unreachable(node_id(3));  // a follower, not the leader
  h.tick_all(2 * h.r(1).config().election_timeout_ticks);
  EXPECT_EQ(h.r(1).role(), Role::leader);
  EXPECT_EQ(h.r(2).leader(), node_id(1));
  EXPECT_EQ(h.r(2).term(), term);
}

// A wrong signal (the leader is alive) reaches one follower only: its pre-votes meet the other
// follower's lease and the leader's heartbeats, and the term does not move.
TEST(FastElection, wrongSignalDoesNotDeposeALiveLeader) {
  Harness h(3);
  h.start();
  h.elect(1);
  const term_t term = h.r(1).term();
  h.r(2).peer_unreachable(node_id(1));
  h.tick_all(3 * h.r(1).config().election_timeout_ticks);
  EXPECT_EQ(h.r(1).role(), Role::leader);
  EXPECT_EQ(h.r(1).term(), term);
  EXPECT_EQ(h.r(2).leader(), node_id(1));
  EXPECT_EQ(h.r(3).leader(), node_id(1));
}

TEST(Learner, doesNotVoteCampaignOrCountForQuorum) {
  Harness h(3, 1);
  h.start();
  h.tick(4, 100);
  h.stabilize();
  EXPECT_EQ(h.r(4).role(), Role::follower);
  EXPECT_EQ(h.r(4).term(), term_t(0));

  h.r(4).step(Message{.type = MessageType::vote, .from = node_id(1), .to = node_id(4),
                      .term = term_t(1), .index = log_index(0), .log_term = term_t(0)});
  auto rd = h.r(4).ready();
  bool rejected = false;
  for (const Message& m : rd.messages) {
    if (m.type == MessageType::vote_resp) rejected = m.reject;
  }
  EXPECT_TRUE(rejected);
  EXPECT_FALSE(h.r(4).vote().has_value());
  h.r(4).advance(rd);

  h.elect(1);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  auto idx = h.r(1).propose(test::bytes("a"));
  ASSERT_TRUE(idx.has_value());
  h.stabilize();
  EXPECT_EQ(h.r(4).commit_index(), *idx) << "a learner receives the log";
  // Leader + learner are not a quorum of 3 voters.
  h.isolate(2);
  h.isolate(3);
  auto idx2 = h.r(1).propose(test::bytes("b"));
  ASSERT_TRUE(idx2.has_value());
  h.stabilize();
  EXPECT_EQ(h.disk(4).last_index(), *idx2);
  EXPECT_LT(h.r(1).commit_index(), *idx2);
  EXPECT_FALSE(h.r(1).transfer_leadership(node_id(4)).has_value());
}

}  // namespace
}  // namespace quorumq::raft
