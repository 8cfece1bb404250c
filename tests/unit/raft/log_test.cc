// RaftLog (unstable entries over a durable MemoryLog) and MemoryLog.
#include <gtest/gtest.h>

#include "harness.h"
#include "quorumq/raft/memory_log.h"
#include "quorumq/raft/raft_log.h"

namespace quorumq::raft {
namespace {

std::vector<Entry> make(std::uint64_t first, const std::vector<std::uint64_t>& terms) {
  std::vector<Entry> out;
  for (std::size_t k = 0; k < terms.size(); ++k) {
    out.push_back(Entry{log_index(first + k), term_t(terms[k]), EntryType::normal,
                        test::bytes("x")});
  }
  return out;
}

TEST(MemoryLog, emptyLogKnowsTermZeroAtIndexZero) {
  MemoryLog m;
  EXPECT_EQ(m.first_index(), log_index(1));
  EXPECT_EQ(m.last_index(), log_index(0));
  EXPECT_EQ(m.term(log_index(0)), term_t(0));
  EXPECT_FALSE(m.term(log_index(1)).has_value());
}

TEST(MemoryLog, compactKeepsPrevTerm) {
  MemoryLog m;
  m.append(make(1, {1, 1, 2, 3}));
  m.compact(log_index(2));
  EXPECT_EQ(m.first_index(), log_index(3));
  EXPECT_EQ(m.term(log_index(2)), term_t(1));
  EXPECT_FALSE(m.term(log_index(1)).has_value());
  EXPECT_EQ(m.term(log_index(4)), term_t(3));
}

TEST(RaftLog, appendThenReadyThenStable) {
  MemoryLog disk;
  RaftLog log(disk);
  log.append(make(1, {1, 1}));
  EXPECT_EQ(log.last_index(), log_index(2));
  EXPECT_EQ(log.stable_last_index(), log_index(0));
  std::optional<log_index> trunc;
  auto es = log.take_unhanded(&trunc);
  ASSERT_EQ(es.size(), 2u);
  EXPECT_FALSE(trunc.has_value());
  disk.append(es);
  EXPECT_TRUE(log.stable_to(log_index(2), term_t(1)));
  EXPECT_EQ(log.unstable_count(), 0u);
  EXPECT_EQ(log.stable_last_index(), log_index(2));
  EXPECT_TRUE(log.check().empty()) << log.check();
}

// Paper §5.3: a conflicting entry and everything after it is deleted. When the conflict is in
// durable storage the Ready says where the driver must truncate.
TEST(RaftLog, overwritingDurableSuffixReportsTruncateFrom) {
  MemoryLog disk;
  disk.append(make(1, {1, 1, 2, 2}));
  RaftLog log(disk);
  log.append(make(3, {3}));
  EXPECT_EQ(log.last_index(), log_index(3));
  EXPECT_EQ(log.term(log_index(3)), term_t(3));
  EXPECT_EQ(log.term(log_index(2)), term_t(1));
  EXPECT_FALSE(log.term(log_index(4)).has_value());
  EXPECT_EQ(log.stable_last_index(), log_index(2));
  std::optional<log_index> trunc;
  auto es = log.take_unhanded(&trunc);
  ASSERT_EQ(trunc, log_index(3));
  disk.truncate_from(*trunc);
  disk.append(es);
  EXPECT_TRUE(log.stable_to(log_index(3), term_t(3)));
  EXPECT_EQ(disk.last_index(), log_index(3));
}

// Entries handed out in a Ready and overridden before advance(): only the still-valid prefix
// becomes stable, the rest is handed out again with an explicit truncation.
TEST(RaftLog, overrideWhileHandedOut) {
  MemoryLog disk;
  RaftLog log(disk);
  log.append(make(1, {1, 1, 1, 1}));
  std::optional<log_index> trunc;
  auto first = log.take_unhanded(&trunc);
  log.append(make(3, {2}));  // overrides 3..4 while the driver persists 1..4
  disk.append(first);
  EXPECT_FALSE(log.stable_to(log_index(4), term_t(1)));
  EXPECT_FALSE(log.stable_to(log_index(3), term_t(1)));
  EXPECT_TRUE(log.stable_to(log_index(2), term_t(1)));
  auto second = log.take_unhanded(&trunc);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(trunc, log_index(3));
}

TEST(RaftLog, resetHidesStorageUntilPersisted) {
  MemoryLog disk;
  disk.append(make(1, {1, 1, 1}));
  RaftLog log(disk);
  log.reset(log_index(10), term_t(4));
  EXPECT_EQ(log.first_index(), log_index(10));
  EXPECT_EQ(log.last_index(), log_index(9));
  EXPECT_EQ(log.term(log_index(9)), term_t(4));
  EXPECT_FALSE(log.term(log_index(2)).has_value());
  auto r = log.take_reset();
  ASSERT_TRUE(r.has_value());
  disk.reset(r->first_index, r->prev_term);
  log.reset_persisted(*r);
  EXPECT_EQ(log.first_index(), log_index(10));
  EXPECT_EQ(log.term(log_index(9)), term_t(4));
  EXPECT_TRUE(log.check().empty()) << log.check();
}

// on_persisted() before advance(): durable entries that follow a reset in the same Ready imply
// the reset is durable too (found by the simulator, seed 469).
TEST(RaftLog, stableEntriesAfterHandedOutResetCompleteTheReset) {
  MemoryLog disk;
  disk.append(make(1, {1, 1, 1}));
  RaftLog log(disk);
  log.reset(log_index(10), term_t(2));
  log.append(make(10, {3, 3}));
  auto r = log.take_reset();
  std::optional<log_index> trunc;
  auto es = log.take_unhanded(&trunc);
  EXPECT_FALSE(trunc.has_value()) << "a reset replaces the whole log; nothing to truncate";
  disk.reset(r->first_index, r->prev_term);
  disk.append(es);
  EXPECT_TRUE(log.stable_to(log_index(11), term_t(3)));
  log.reset_persisted(*r);  // advance() afterwards is harmless
  EXPECT_EQ(log.first_index(), log_index(10));
  EXPECT_EQ(log.stable_last_index(), log_index(11));
  EXPECT_TRUE(log.check().empty()) << log.check();
}

// Entries persisted under an older log start do not become stable once a newer reset waits.
TEST(RaftLog, entriesFromBeforeAPendingResetStayUnstable) {
  MemoryLog disk;
  RaftLog log(disk);
  log.append(make(1, {1, 1}));
  std::optional<log_index> trunc;
  auto es = log.take_unhanded(&trunc);
  log.reset(log_index(5), term_t(1));
  disk.append(es);
  EXPECT_FALSE(log.stable_to(log_index(2), term_t(1)));
  EXPECT_EQ(log.first_index(), log_index(5));
  EXPECT_TRUE(log.take_reset().has_value());
}

// Fast backtracking: the largest index whose term could match.
TEST(RaftLog, findConflictByTerm) {
  MemoryLog disk;
  disk.append(make(1, {1, 1, 4, 4, 5, 5}));
  RaftLog log(disk);
  EXPECT_EQ(log.find_conflict_by_term(log_index(6), term_t(4)), log_index(4));
  EXPECT_EQ(log.find_conflict_by_term(log_index(6), term_t(3)), log_index(2));
  EXPECT_EQ(log.find_conflict_by_term(log_index(6), term_t(0)), log_index(0));
  EXPECT_EQ(log.find_conflict_by_term(log_index(3), term_t(9)), log_index(3));
}

TEST(RaftLog, sliceSpansStorageAndUnstableWithinMaxBytes) {
  MemoryLog disk;
  disk.append(make(1, {1, 1}));
  RaftLog log(disk);
  log.append(make(3, {2, 2}));
  EXPECT_EQ(log.slice(log_index(1), log_index(5), 1 << 20).size(), 4u);
  // At least one entry even if it alone exceeds the limit.
  EXPECT_EQ(log.slice(log_index(2), log_index(5), 1).size(), 1u);
  EXPECT_EQ(log.slice(log_index(2), log_index(5), 2 * (Entry::overhead_bytes + 1)).size(), 2u);
}

TEST(RaftLog, upToDateComparesLastTermThenIndex) {  // paper §5.4.1
  MemoryLog disk;
  disk.append(make(1, {1, 2, 2}));
  RaftLog log(disk);
  EXPECT_TRUE(log.is_up_to_date(log_index(1), term_t(3)));
  EXPECT_TRUE(log.is_up_to_date(log_index(3), term_t(2)));
  EXPECT_FALSE(log.is_up_to_date(log_index(2), term_t(2)));
  EXPECT_FALSE(log.is_up_to_date(log_index(9), term_t(1)));
}

}  // namespace
}  // namespace quorumq::raft
