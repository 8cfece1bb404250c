// Consumer-group state (broker/src/consumer_groups/group_state.h): assignors, cooperative hand-over, the state
// codec and the commit fence partition leaders apply.
#include "group_state.h"

#include <gtest/gtest.h>

#include <random>

namespace quorumq::broker {
namespace {

GroupState group(const std::string& assignor, const std::vector<std::string>& members,
                 std::vector<std::string> topics) {
  std::sort(topics.begin(), topics.end());  // as the coordinator stores them
  GroupState s;
  s.name = "g";
  s.assignor = assignor;
  for (const auto& m : members) s.members[m] = GroupMember{m, "client", topics, 10000, 30000};
  return s;
}

std::map<std::string, int> counts_by_member(const Assignment& a) {
  std::map<std::string, int> c;
  for (const auto& [tp, m] : a) ++c[m];
  return c;
}

// Every partition of every subscribed, existing topic exactly once, to a member subscribed to it.
void expect_complete(const GroupState& s, const PartitionCounts& counts, const Assignment& a) {
  std::set<std::string> topics;
  for (const auto& [id, m] : s.members) topics.insert(m.topics.begin(), m.topics.end());
  std::size_t want = 0;
  for (const auto& t : topics)
    if (auto c = counts.find(t); c != counts.end()) {
      want += static_cast<std::size_t>(c->second);
      for (std::int32_t p = 0; p < c->second; ++p) {
        auto it = a.find({t, p});
        ASSERT_NE(it, a.end()) << t << "/" << p << " unassigned";
        const auto& subs = s.members.at(it->second).topics;
        EXPECT_TRUE(std::find(subs.begin(), subs.end(), t) != subs.end()) << it->second << " not subscribed to " << t;
      }
    }
  EXPECT_EQ(a.size(), want);
}

TEST(Assignors, RangeGivesContiguousRangesFirstMembersTakeTheRemainder) {
  auto s = group("range", {"a", "b", "c"}, {"t"});
  const auto a = compute_target(s, {{"t", 7}});
  expect_complete(s, {{"t", 7}}, a);
  EXPECT_EQ(a.at({"t", 0}), "a");
  EXPECT_EQ(a.at({"t", 2}), "a");
  EXPECT_EQ(a.at({"t", 3}), "b");
  EXPECT_EQ(a.at({"t", 4}), "b");
  EXPECT_EQ(a.at({"t", 5}), "c");
  EXPECT_EQ(a.at({"t", 6}), "c");
}

TEST(Assignors, RoundRobinDealsAllPartitionsInTurn) {
  auto s = group("roundrobin", {"a", "b"}, {"t", "u"});
  const PartitionCounts counts{{"t", 3}, {"u", 2}};
  const auto a = compute_target(s, counts);
  expect_complete(s, counts, a);
  EXPECT_EQ(a.at({"t", 0}), "a");
  EXPECT_EQ(a.at({"t", 1}), "b");
  EXPECT_EQ(a.at({"t", 2}), "a");
  EXPECT_EQ(a.at({"u", 0}), "b");
  EXPECT_EQ(a.at({"u", 1}), "a");
}

TEST(Assignors, OnlySubscribedMembersGetATopicsPartitions) {
  for (std::string name : {"range", "roundrobin", "sticky"}) {
    auto s = group(name, {"a", "b"}, {"t"});
    s.members["c"] = GroupMember{"c", "x", {"t", "u"}, 10000, 30000};
    const PartitionCounts counts{{"t", 4}, {"u", 3}, {"unrelated", 5}};
    const auto a = compute_target(s, counts);
    expect_complete(s, counts, a);
    for (std::int32_t p = 0; p < 3; ++p) EXPECT_EQ(a.at({"u", p}), "c") << name;
  }
}

TEST(Assignors, MissingTopicsAreSkipped) {
  auto s = group("sticky", {"a"}, {"t", "not-created-yet"});
  const auto a = compute_target(s, {{"t", 2}});
  EXPECT_EQ(a.size(), 2u);
}

// The promise of the sticky assignor: a member joining a 3 x 2 group takes one partition from
// one member; nobody else moves.
TEST(StickyAssignor, AJoiningMemberMovesOnlyWhatMustMove) {
  auto s = group("sticky", {"a", "b", "c"}, {"t"});
  const PartitionCounts counts{{"t", 6}};
  const auto before = compute_target(s, counts);
  EXPECT_EQ(counts_by_member(before), (std::map<std::string, int>{{"a", 2}, {"b", 2}, {"c", 2}}));
  ASSERT_TRUE(grant_free_partitions(s, before, counts));
  s.members["d"] = GroupMember{"d", "x", {"t"}, 10000, 30000};
  const auto after = compute_target(s, counts);
  expect_complete(s, counts, after);
  int moved = 0;
  for (const auto& [tp, m] : after) moved += before.at(tp) != m;
  EXPECT_EQ(moved, 1);
  EXPECT_EQ(counts_by_member(after).at("d"), 1);
}

TEST(StickyAssignor, ALeavingMembersPartitionsAreSharedAndTheRestStays) {
  auto s = group("sticky", {"a", "b", "c"}, {"t"});
  const PartitionCounts counts{{"t", 6}};
  const auto before = compute_target(s, counts);
  grant_free_partitions(s, before, counts);
  ASSERT_TRUE(remove_member(s, "b"));
  for (const auto& [tp, o] : s.owners) EXPECT_NE(o.member, "b");
  const auto after = compute_target(s, counts);
  expect_complete(s, counts, after);
  for (const auto& [tp, m] : before)
    if (m != "b") {
      EXPECT_EQ(after.at(tp), m) << "partition " << tp.second << " moved needlessly";
    }
  EXPECT_EQ(counts_by_member(after), (std::map<std::string, int>{{"a", 3}, {"c", 3}}));
}

// Random groups: every strategy assigns completely; with one subscription for all, sticky and
// roundrobin are balanced within one, and sticky never takes a partition from a member that
// holds no more than its fair share.
TEST(Assignors, RandomGroupsAreCompleteAndBalanced) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 300; ++round) {
    const int n_members = 1 + static_cast<int>(rng() % 12);
    const int n_parts = static_cast<int>(rng() % 40);
    std::vector<std::string> ms;
    for (int i = 0; i < n_members; ++i) ms.push_back("m" + std::to_string(i));
    for (std::string name : {"range", "roundrobin", "sticky"}) {
      auto s = group(name, ms, {"t"});
      const PartitionCounts counts{{"t", n_parts}};
      // Random current owners (some gone, some over their share).
      for (int p = 0; p < n_parts; ++p)
        if (rng() % 3 != 0) s.owners[{"t", p}] = PartitionOwner{ms[rng() % ms.size()], 1};
      const auto a = compute_target(s, counts);
      expect_complete(s, counts, a);
      if (name == "range") continue;
      auto c = counts_by_member(a);
      int lo = n_parts, hi = 0;
      for (const auto& m : ms) lo = std::min(lo, c[m]), hi = std::max(hi, c[m]);
      EXPECT_LE(hi - lo, 1) << name << " round " << round;
      if (name != "sticky") continue;
      const int fair = n_parts / n_members;
      std::map<std::string, int> had;
      for (const auto& [tp, o] : s.owners) ++had[o.member];
      for (const auto& [tp, o] : s.owners)
        if (had[o.member] <= fair) {
          EXPECT_EQ(a.at(tp), o.member) << "round " << round;
        }
    }
  }
}

TEST(Assignors, LargeGroupIsAssigned) {
  std::vector<std::string> ms;
  for (int i = 0; i < 100; ++i) ms.push_back("member-" + std::to_string(i));
  auto s = group("sticky", ms, {"t"});
  const PartitionCounts counts{{"t", 1000}};
  auto a = compute_target(s, counts);
  grant_free_partitions(s, a, counts);
  s.members["late"] = GroupMember{"late", "x", {"t"}, 10000, 30000};
  a = compute_target(s, counts);
  expect_complete(s, counts, a);
  EXPECT_EQ(counts_by_member(a).at("late"), 9);
}

// ---- cooperative hand-over ------------------------------------------------------------------
TEST(HandOver, APartitionMovesOnlyAfterItsOwnerReleasedIt) {
  auto s = group("sticky", {"a"}, {"t"});
  const PartitionCounts counts{{"t", 2}};
  grant_free_partitions(s, compute_target(s, counts), counts);
  for (auto& [tp, o] : s.owners) o.since = 1;
  s.generation = 1;
  const GroupState applied = s;
  s.members["b"] = GroupMember{"b", "x", {"t"}, 10000, 30000};
  const auto target = compute_target(s, counts);
  EXPECT_FALSE(grant_free_partitions(s, target, counts)) << "nothing is free: b must wait for a";
  const auto rev = revoking(s, target, "a");
  ASSERT_EQ(rev.size(), 1u);
  // a is told to give it up: its view no longer contains it, b's view is still empty.
  EXPECT_EQ(member_view(applied, s, target, "a").size(), 1u);
  EXPECT_TRUE(member_view(applied, s, target, "b").empty());
  // a released it: now it is granted to b (unstamped until proposed).
  s.owners.erase(*rev.begin());
  EXPECT_TRUE(grant_free_partitions(s, target, counts));
  EXPECT_EQ(s.owners.at(*rev.begin()).member, "b");
  EXPECT_EQ(s.owners.at(*rev.begin()).since, 0);
  // b sees it only once a state containing the grant is applied.
  EXPECT_TRUE(member_view(applied, s, target, "b").empty());
  EXPECT_EQ(member_view(s, s, target, "b"), rev);
}

TEST(HandOver, PartitionsOfDeletedTopicsLoseTheirOwner) {
  auto s = group("sticky", {"a"}, {"t"});
  grant_free_partitions(s, compute_target(s, {{"t", 3}}), {{"t", 3}});
  EXPECT_TRUE(grant_free_partitions(s, compute_target(s, {{"t", 1}}), {{"t", 1}}));
  EXPECT_EQ(s.owners.size(), 1u);
}

// ---- codec -----------------------------------------------------------------------------------
TEST(GroupCodec, RoundTripsAndRejectsEveryTruncation) {
  auto s = group("range", {"a", "b"}, {"t", "u"});
  grant_free_partitions(s, compute_target(s, {{"t", 3}, {"u", 1}}), {{"t", 3}, {"u", 1}});
  s.generation = 42;
  for (auto& [tp, o] : s.owners) o.since = 41;
  const auto bytes = encode_group_state(s);
  auto back = decode_group_state(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
  // A cut is refused, except one that only drops the flatbuffer's trailing padding (the
  // verifier cannot tell): then it reads the very same state, never a different one.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto d = decode_group_state(std::span(bytes.data(), n));
    EXPECT_TRUE(!d || *d == s) << "prefix of " << n << " bytes read as another state";
    if (n + 8 < bytes.size()) {
      EXPECT_FALSE(d) << "prefix of " << n << " bytes accepted";
    }
  }
  // A flatbuffer may be followed by padding: bytes after it change nothing.
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(decode_group_state(longer), s);
}

// A Kafka-protocol group's kind travels with its state (the native coordinator leaves such
// groups alone after a restart or a failover); a native group's encodes no kind.
TEST(GroupCodec, TheKafkaProtocolTypeRoundTrips) {
  auto s = group("range", {"a"}, {"t"});
  s.protocol_type = "consumer";
  s.owners[{"t", 0}] = PartitionOwner{"a", 3};
  auto back = decode_group_state(encode_group_state(s));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->is_kafka());
  EXPECT_EQ(*back, s);
  s.protocol_type.clear();
  back = decode_group_state(encode_group_state(s));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->is_kafka());
}

TEST(GroupCodec, HugeCountsDoNotAllocate) {
  std::vector<std::uint8_t> b = {1, 1, 0, 0, 0, 'g', 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(decode_group_state(b));
}

TEST(GroupCodec, AnOwnerMustBeAMember) {
  auto s = group("sticky", {"a"}, {"t"});
  s.owners[{"t", 0}] = PartitionOwner{"ghost", 1};
  EXPECT_FALSE(decode_group_state(encode_group_state(s)));
}

// ---- the commit fence ----------------------------------------------------------------------
TEST(CommitFence, OnlyTheOwnerInAKnownGenerationMayCommit) {
  GroupRegistry r;
  EXPECT_FALSE(r.check_commit("g", "", -1, "t", 0)) << "simple commits to unknown groups are fine";
  auto s = group("sticky", {"a", "b"}, {"t"});
  grant_free_partitions(s, compute_target(s, {{"t", 2}}), {{"t", 2}});
  s.generation = 5;
  const std::string owner0 = s.owners.at({"t", 0}).member;
  const std::string other = owner0 == "a" ? "b" : "a";
  r.apply(s);
  EXPECT_FALSE(r.check_commit("g", owner0, 5, "t", 0));
  EXPECT_FALSE(r.check_commit("g", owner0, 3, "t", 0)) << "an older generation of the same owner is fine";
  auto not_owner = r.check_commit("g", other, 5, "t", 0);
  ASSERT_TRUE(not_owner);
  EXPECT_EQ(not_owner->code, wire::ErrorCode::illegal_generation);
  auto stranger = r.check_commit("g", "zombie", 5, "t", 0);
  ASSERT_TRUE(stranger);
  EXPECT_EQ(stranger->code, wire::ErrorCode::unknown_member_id);
  auto ahead = r.check_commit("g", owner0, 6, "t", 0);
  ASSERT_TRUE(ahead);
  EXPECT_EQ(ahead->code, wire::ErrorCode::coordinator_not_available) << "this broker lags: retriable";
  auto simple = r.check_commit("g", "", -1, "t", 0);
  ASSERT_TRUE(simple);
  EXPECT_EQ(simple->code, wire::ErrorCode::unknown_member_id);
  remove_member(s, "a");
  remove_member(s, "b");
  s.generation = 6;
  r.apply(s);
  EXPECT_FALSE(r.check_commit("g", "", -1, "t", 0)) << "an empty group takes simple commits again";
}

TEST(GroupIds, Validation) {
  EXPECT_TRUE(valid_group_id("orders-consumers.v2"));
  EXPECT_FALSE(valid_group_id(""));
  EXPECT_FALSE(valid_group_id("has space"));
  EXPECT_FALSE(valid_group_id("new\nline"));
  EXPECT_FALSE(valid_group_id(std::string(256, 'x')));
  EXPECT_TRUE(valid_assignor("sticky"));
  EXPECT_FALSE(valid_assignor("cooperative"));
}

}  // namespace
}  // namespace quorumq::broker
