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

std::vector<std::uint8_t> batch(std::int32_t seq, std::int64_t base_offset) {
  BatchBuilder b;
  b.add(std::nullopt, "v" + std::to_string(seq), 1000);
  auto bytes = b.finish(ProducerInfo{kPid, 0, seq});
  stamp_batch(bytes, base_offset, 1);
  return bytes;
}

class PartitionProducerState : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StorageOptions o;
    o.dir = dir.path / "data";
    auto s = storage::Storage::open(o);
    ASSERT_TRUE(s) << s.error().message;
    st = std::move(*s);
    auto l = st->open_log("t/0");
    ASSERT_TRUE(l);
    log = *l;
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

}  // namespace
}  // namespace quorumq::broker
