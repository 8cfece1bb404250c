// Quorum arithmetic and per-follower flow control.
#include <gtest/gtest.h>

#include "quorumq/raft/progress.h"
#include "quorumq/raft/quorum.h"

namespace quorumq::raft {
namespace {

TEST(Quorum, majorityIndex) {
  EXPECT_EQ(majority_index({log_index(5)}), log_index(5));
  EXPECT_EQ(majority_index({log_index(5), log_index(3), log_index(1)}), log_index(3));
  EXPECT_EQ(majority_index({log_index(1), log_index(9), log_index(9), log_index(2), log_index(4)}),
            log_index(4));
  EXPECT_EQ(majority_index({log_index(7), log_index(2), log_index(3), log_index(0)}),
            log_index(2));  // 4 voters need 3
}

TEST(Quorum, tallyIgnoresNonVotersAndDecidesEarly) {
  const std::vector<node_id> voters{node_id(1), node_id(2), node_id(3)};
  std::unordered_map<node_id, bool> votes{{node_id(1), true}};
  EXPECT_EQ(tally_votes(voters, votes), VoteResult::pending);
  votes[node_id(4)] = true;  // a learner's vote counts for nothing
  EXPECT_EQ(tally_votes(voters, votes), VoteResult::pending);
  votes[node_id(2)] = false;
  EXPECT_EQ(tally_votes(voters, votes), VoteResult::pending);
  votes[node_id(3)] = false;
  EXPECT_EQ(tally_votes(voters, votes), VoteResult::lost);
  votes[node_id(3)] = true;
  EXPECT_EQ(tally_votes(voters, votes), VoteResult::won);
}

TEST(Progress, probeSendsOneMessageAtATime) {
  Progress pr(log_index(5), 4, false);
  EXPECT_FALSE(pr.is_paused());
  pr.sent_entries(log_index(6), true);
  EXPECT_TRUE(pr.is_paused());
  EXPECT_EQ(pr.next, log_index(5));  // probe does not advance next optimistically
}

TEST(Progress, replicatePipelinesUpToMaxInflight) {
  Progress pr(log_index(1), 2, false);
  EXPECT_TRUE(pr.maybe_update(log_index(3)));
  pr.become_replicate();
  pr.sent_entries(log_index(5), true);
  pr.sent_entries(log_index(7), true);
  EXPECT_TRUE(pr.is_paused());
  EXPECT_EQ(pr.next, log_index(8));
  EXPECT_TRUE(pr.maybe_update(log_index(5)));
  pr.inflights.free_le(log_index(5));
  EXPECT_FALSE(pr.is_paused());
}

TEST(Progress, staleRejectsAreIgnored) {
  Progress pr(log_index(10), 4, false);
  pr.maybe_update(log_index(6));
  pr.become_replicate();
  pr.sent_entries(log_index(9), true);
  EXPECT_FALSE(pr.maybe_decr_to(log_index(5), log_index(5)));  // below match: stale
  EXPECT_TRUE(pr.maybe_decr_to(log_index(7), log_index(7)));
  EXPECT_EQ(pr.next, log_index(7));
  pr.become_probe();
  EXPECT_FALSE(pr.maybe_decr_to(log_index(3), log_index(2)));  // not the latest probe
  EXPECT_TRUE(pr.maybe_decr_to(log_index(6), log_index(2)));   // next-1 == 6 is this probe
  EXPECT_EQ(pr.next, log_index(7));  // never below match + 1
}

}  // namespace
}  // namespace quorumq::raft
