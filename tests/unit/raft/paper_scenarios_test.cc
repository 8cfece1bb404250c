// The Raft paper's figure 7 and figure 8 situations, replayed on the real core.
#include <gtest/gtest.h>

#include "harness.h"

namespace quorumq::raft {
namespace {

using test::Harness;

// Paper figure 7 (§5.3): the leader of term 8 has terms 1 1 1 4 4 5 5 6 6 6 at indexes 1..10.
// Each follower case (a)-(f) is missing entries, has extra uncommitted entries, or both; the
// consistency check plus backtracking must make each follower's log identical to the leader's,
// deleting the divergent suffix (§5.3: "the leader handles inconsistencies by forcing the
// followers' logs to duplicate its own").
const std::vector<std::uint64_t> fig7_leader{1, 1, 1, 4, 4, 5, 5, 6, 6, 6};

struct Fig7Case {
  const char* name;
  std::vector<std::uint64_t> follower;
};

class Figure7 : public ::testing::TestWithParam<Fig7Case> {};

TEST_P(Figure7, followerConvergesToLeaderLog) {
  // Node 1 is the leader, node 2 the figure's follower, node 3 a voter holding the leader's
  // log so that node 1 can win term 8 even when (c)/(d) refuse to vote for it.
  Harness h(3, 0, [](Config& c) {
    c.max_msg_bytes = 2 * (Entry::overhead_bytes + 8);  // small batches: exercise backtracking
  });
  h.set_log(1, fig7_leader);
  h.set_log(2, GetParam().follower);
  h.set_log(3, fig7_leader);
  h.set_term(1, 7);
  h.set_term(2, 7);
  h.set_term(3, 7);
  h.start();
  h.elect(1);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  ASSERT_EQ(h.r(1).term(), term_t(8));
  h.tick_all(5);
  std::vector<std::uint64_t> expected = fig7_leader;
  expected.push_back(8);  // the leader's no-op for term 8 (thesis §6.4)
  EXPECT_EQ(h.log_terms(2), expected) << GetParam().name;
  EXPECT_EQ(h.disk(2).last_index(), log_index(expected.size())) << "durable log truncated";
  for (std::size_t i = 1; i <= expected.size(); ++i) {
    EXPECT_EQ(test::text(h.disk(2).at(log_index(i))), test::text(h.disk(1).at(log_index(i))));
  }
  EXPECT_EQ(h.r(2).commit_index(), log_index(11));
}

INSTANTIATE_TEST_SUITE_P(
    PaperSection5_3, Figure7,
    ::testing::Values(Fig7Case{"a_missing_one", {1, 1, 1, 4, 4, 5, 5, 6, 6}},
                      Fig7Case{"b_missing_many", {1, 1, 1, 4}},
                      Fig7Case{"c_extra_uncommitted", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}},
                      Fig7Case{"d_extra_of_later_term", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}},
                      Fig7Case{"e_missing_and_extra", {1, 1, 1, 4, 4, 4, 4}},
                      Fig7Case{"f_divergent_terms_2_3", {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}}),
    [](const auto& info) { return std::string(info.param.name); });

// Paper figure 8 (§5.4.2): a leader must not commit an entry of an older term by counting
// replicas. S1 leads term 4 and has index 2 (term 2) on a majority (S1, S2, S3), but its own
// term-4 entry only on itself; if it committed index 2, S5 (whose index 2 has term 3) could
// still be elected by S2, S3, S4 and overwrite it.
TEST(Figure8, olderTermEntryOnMajorityIsNotCommitted) {
  auto paper_model = [](Config& c) {
    c.pre_vote = false;  // the paper's plain elections
    c.check_quorum = false;
    c.max_msg_bytes = 1;  // one entry per AppendEntries
  };
  Harness h(5, 0, paper_model);
  h.set_log(1, {1, 2});
  h.set_log(2, {1});
  h.set_log(3, {1});
  h.set_log(4, {1});
  h.set_log(5, {1, 3});
  for (int id = 1; id <= 4; ++id) h.set_term(id, 3);
  h.set_term(5, 4);
  h.start();
  // S1's term-4 entry (its no-op at index 3) reaches nobody; index 2 reaches S2 and S3.
  h.filter = [](Message& m) {
    if (m.from != node_id(1)) return true;
    if (m.to == node_id(4) || m.to == node_id(5)) return m.type == MessageType::vote;
    std::erase_if(m.entries, [](const Entry& e) { return e.term == term_t(4); });
    return true;
  };
  h.elect(1);
  ASSERT_EQ(h.r(1).role(), Role::leader);
  ASSERT_EQ(h.r(1).term(), term_t(4));
  h.tick_all(3);
  ASSERT_EQ(h.r(1).progress(node_id(2))->match, log_index(2));
  ASSERT_EQ(h.r(1).progress(node_id(3))->match, log_index(2));
  EXPECT_LT(h.r(1).commit_index(), log_index(2)) << "§5.4.2: never commit by counting old terms";

  // S1 crashes; S5 wins term 5 with S2, S3, S4 and overwrites index 2: allowed, since it was
  // never committed.
  h.crash(1);
  h.filter = nullptr;
  h.elect(5);
  ASSERT_EQ(h.r(5).role(), Role::leader);
  ASSERT_EQ(h.r(5).term(), term_t(5));
  h.tick_all(3);
  EXPECT_EQ(h.log_terms(2), (std::vector<std::uint64_t>{1, 3, 5}));
  EXPECT_EQ(h.r(2).commit_index(), log_index(3));
}

// Figure 8 (e): once the leader's current-term entry is on a majority, it and everything
// before it (the term-2 entry) are committed, and no later leader can lack them.
TEST(Figure8, currentTermEntryOnMajorityCommitsOlderEntriesIndirectly) {
  Harness h(5, 0, [](Config& c) {
    c.pre_vote = false;
    c.check_quorum = false;
  });
  h.set_log(1, {1, 2});
  h.set_log(2, {1});
  h.set_log(3, {1});
  h.set_log(4, {1});
  h.set_log(5, {1, 3});
  for (int id = 1; id <= 4; ++id) h.set_term(id, 3);
  h.set_term(5, 4);
  h.start();
  h.filter = [](Message& m) {
    return m.from != node_id(1) || !(m.to == node_id(4) || m.to == node_id(5)) ||
           m.type == MessageType::vote;
  };
  h.elect(1);
  h.tick_all(3);
  EXPECT_EQ(h.r(1).commit_index(), log_index(3));
  h.crash(1);
  h.filter = nullptr;
  h.elect(5);
  EXPECT_NE(h.r(5).role(), Role::leader) << "S5 lacks committed entries (§5.4.1)";
}

}  // namespace
}  // namespace quorumq::raft
