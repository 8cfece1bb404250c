// Partition's idempotent-producer state counts only COMMITTED entries (regression: the chaos
// suite's power-loss fault, seed 1319363866, lost two acknowledged writes). A replica restarted
// with an uncommitted tail rebuilt its producer table from the whole log; the next leader
// truncated that tail; when the replica later led, a producer's retry of a truncated batch was
// answered "duplicate, already at offset N" — acknowledged, but not in the log.
#include "partition.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "quorumq/protocol/record_batch.h"
#include "test_util.h"

namespace quorumq::broker {
namespace {

namespace fs = std::filesystem;

using storage::test::TempDir;  // tests/unit/storage/test_util.h

constexpr std::int64_t kPid = 4242;

std::vector<std::uint8_t> batch(std::int32_t seq, std::int64_t base_offset, std::int64_t pid = kPid) {
  BatchBuilder b;
  b.add(std::nullopt, "v" + std::to_string(seq), 1000);
  auto bytes = b.finish(ProducerInfo{pid, 0, seq});
  stamp_batch(bytes, base_offset, 1);
  return bytes;
}

class PartitionProducerState : public ::testing::Test {
 protected:
  void SetUp() override {
    st = storage::test::open_storage(dir.path / "data");
    ASSERT_TRUE(st);
    log = storage::test::open_log(*st, "t/0");
    ASSERT_TRUE(log);
    // Entries 1 and 2 (sequences 0 and 1) are in the log; only entry 1 is committed/applied.
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::AppendAtOp{log, log_index{1}, {batch(0, 0), batch(1, 1)}});
    ASSERT_TRUE(st->write_sync(std::move(ops)));
  }
  SeqCheck check(Partition& p, std::int32_t seq) { return p.producer_check(kPid, 0, seq, 1).check; }

  TempDir dir;
  std::unique_ptr<storage::Storage> st;
  storage::PartitionLog* log = nullptr;
  Metrics metrics;
};

TEST_F(PartitionProducerState, startUpCountsOnlyTheAppliedPrefix) {
  Partition p("t", 0, {node_id{1}}, *st, log, metrics);
  p.on_start(log_index{1}, 1);
  EXPECT_EQ(check(p, 0), SeqCheck::duplicate) << "the committed batch is recognised";
  EXPECT_EQ(check(p, 1), SeqCheck::accept) << "the uncommitted tail must not make a retry look written";
}

TEST_F(PartitionProducerState, aLeadersTailIsForgottenWhenItStopsLeading) {
  Partition p("t", 0, {node_id{1}}, *st, log, metrics);
  p.on_start(log_index{1}, 1);
  auto e2 = st->open_log("t/0");
  auto entries = (*e2)->entries(log_index{2}, log_index{2}, 1 << 20);
  ASSERT_TRUE(entries && entries->size() == 1);
  raft::Entry tail;
  tail.index = log_index{2};
  tail.payload = std::make_shared<const std::vector<std::uint8_t>>(entries->front().batch);
  p.on_leader({tail});
  p.on_role(raft::Role::leader);
  EXPECT_EQ(check(p, 1), SeqCheck::duplicate) << "a new leader's tail commits under it: a retry is a duplicate";
  p.on_role(raft::Role::follower);  // lost the leadership before the tail committed
  EXPECT_EQ(check(p, 1), SeqCheck::accept) << "the next leader may truncate that tail";
  EXPECT_EQ(check(p, 0), SeqCheck::duplicate);
}

// The producer table is stored every few thousand applied entries, so a restart reads the
// entries after the snapshot instead of the headers of the last 20,000 (issue 16: a broker
// with a large log serves again at once).
class PartitionProducerSnapshot : public ::testing::Test {
 protected:
  static constexpr std::int64_t kEarly = 7;   // writes entries 1..10, then falls silent
  static constexpr std::int64_t kLate = 8;    // writes every entry after that
  static constexpr std::uint64_t kEntries = 2500;

  void SetUp() override {
    st = storage::test::open_storage(dir.path / "data");
    ASSERT_TRUE(st);
    log = storage::test::open_log(*st, "t/0");
    ASSERT_TRUE(log);
    std::vector<std::vector<std::uint8_t>> batches;
    for (std::uint64_t i = 1; i <= kEntries; ++i)
      batches.push_back(i <= 10 ? batch(static_cast<std::int32_t>(i - 1), static_cast<std::int64_t>(i - 1), kEarly)
                                : batch(static_cast<std::int32_t>(i - 11), static_cast<std::int64_t>(i - 1), kLate));
    std::vector<storage::WriteOp> ops;
    ops.emplace_back(storage::AppendAtOp{log, log_index{1}, batches});
    ASSERT_TRUE(st->write_sync(std::move(ops)));
    // A replica applies all of it: snapshots are stored at entries 1000 and 2000.
    Partition p("t", 0, {node_id{1}}, *st, log, metrics);
    p.on_start(log_index{0}, 0);
    for (std::uint64_t i = 1; i <= kEntries; ++i) {
      raft::Entry e;
      e.index = log_index{i};
      e.term = term_t{1};
      p.apply(e, batches[i - 1]);
    }
    // The snapshot writes were submitted; a synchronous write behind them means they are stored.
    ASSERT_TRUE(st->write_sync({}));
  }
  SeqCheck check(Partition& p, std::int64_t pid, std::int32_t seq) { return p.producer_check(pid, 0, seq, 1).check; }

  TempDir dir;
  std::unique_ptr<storage::Storage> st;
  storage::PartitionLog* log = nullptr;
  Metrics metrics;
};

TEST_F(PartitionProducerSnapshot, restartRemembersAProducerWhoseEntriesRetentionRemoved) {
  // Retention removes entries 1..1499 (the early producer's only ones) after the snapshot at 2000.
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::TrimPrefixOp{log, log_index{1500}});
  ASSERT_TRUE(st->write_sync(std::move(ops)));
  Partition q("t", 0, {node_id{1}}, *st, log, metrics);
  q.on_start(log_index{kEntries}, static_cast<std::int64_t>(kEntries));
  EXPECT_EQ(check(q, kEarly, 9), SeqCheck::duplicate) << "the snapshot kept the early producer's last batches";
  EXPECT_EQ(check(q, kEarly, 10), SeqCheck::accept);
  EXPECT_EQ(check(q, kLate, static_cast<std::int32_t>(kEntries - 11)), SeqCheck::duplicate)
      << "entries after the snapshot are read from the log";
  EXPECT_EQ(check(q, kLate, static_cast<std::int32_t>(kEntries - 10)), SeqCheck::accept);
}

TEST_F(PartitionProducerSnapshot, aSnapshotAheadOfTheAppliedIndexIsNotUsed) {
  // A crash after the snapshot at 2000 was stored but before the applied index passed 1500:
  // entries 1501.. are applied again, so the table must stop at 1500.
  Partition q("t", 0, {node_id{1}}, *st, log, metrics);
  q.on_start(log_index{1500}, 1500);
  EXPECT_EQ(check(q, kLate, 1500 - 11), SeqCheck::duplicate);
  EXPECT_EQ(check(q, kLate, 1500 - 10), SeqCheck::accept) << "entry 1501 is not applied yet";
}

TEST_F(PartitionProducerSnapshot, aSnapshotOfAnotherLogUnderTheSameNameIsNotUsed) {
  // The topic is deleted and created again: its new log has other terms at the same indexes.
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::ResetLogOp{log, log_index{1}, term_t{0}, offset_t{0}});
  ASSERT_TRUE(st->write_sync(std::move(ops)));
  std::vector<std::vector<std::uint8_t>> fresh;
  for (std::int32_t i = 0; i < 2100; ++i) {
    auto b = batch(i, i, 99);
    stamp_batch(b, i, 5);
    fresh.push_back(std::move(b));
  }
  ops.clear();
  ops.emplace_back(storage::AppendAtOp{log, log_index{1}, fresh});
  ASSERT_TRUE(st->write_sync(std::move(ops)));
  Partition q("t", 0, {node_id{1}}, *st, log, metrics);
  q.on_start(log_index{2100}, 2100);
  EXPECT_EQ(check(q, kLate, 100), SeqCheck::accept) << "a producer of the old log is unknown here";
  EXPECT_EQ(check(q, 99, 2099), SeqCheck::duplicate);
}

}  // namespace
}  // namespace quorumq::broker
