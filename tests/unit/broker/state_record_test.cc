// Persisted and replicated broker records (issue 15 §3): one flatbuffers schema
// (broker/schema/state.fbs), verified on read, and the encodings of earlier builds still read —
// a data directory or a controller log written before this change opens with the same state.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "context.h"
#include "controller.h"
#include "group_state.h"
#include "quorumq/protocol/record_batch.h"
#include "replica_meta.h"
#include "state_record.h"
#include "test_util.h"

namespace quorumq::broker {
namespace {

using storage::test::TempDir;

using storage::test::open_storage;

void put_meta(storage::Storage& st, const std::string& key, std::vector<std::uint8_t> v) {
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::PutMetaOp{key, std::move(v)});
  ASSERT_TRUE(st.write_sync(std::move(ops)).has_value());
}
void write(storage::Storage& st, storage::WriteOp op) {
  std::vector<storage::WriteOp> ops;
  ops.push_back(std::move(op));
  ASSERT_TRUE(st.write_sync(std::move(ops)).has_value());
}
std::vector<std::uint8_t> le64(std::uint64_t a) {
  std::vector<std::uint8_t> v(8);
  for (int i = 0; i < 8; ++i) v[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(a >> (8 * i));
  return v;
}

// ---- the record envelope ---------------------------------------------------------------------
TEST(StateRecord, verifiedOnReadAndRefusesWhatItCannotTrust) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto b = state::CreateAppliedIndex(fbb, 77);
  const auto bytes = finish_state_record(fbb, state::Body::AppliedIndex, b.Union());
  ASSERT_TRUE(is_state_record(bytes));
  auto r = read_state_record(bytes);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->type(), state::Body::AppliedIndex);
  EXPECT_EQ(r->as<state::AppliedIndex>()->index(), 77u);
  EXPECT_EQ(r->as<state::GroupState>(), nullptr) << "a record of another kind is not read as this one";

  // Unaligned bytes (as inside a batch payload) are read from an aligned copy.
  std::vector<std::uint8_t> shifted(bytes.size() + 3);
  std::memcpy(shifted.data() + 3, bytes.data(), bytes.size());
  EXPECT_TRUE(read_state_record(std::span(shifted).subspan(3)));

  // Cuts are refused, except of trailing padding (the verifier cannot tell; the value is the same).
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto cut = read_state_record(std::span(bytes.data(), n));
    if (n + 8 < bytes.size()) {
      EXPECT_FALSE(cut) << "a prefix of " << n << " bytes was accepted";
    } else if (cut) {
      EXPECT_EQ(cut->as<state::AppliedIndex>()->index(), 77u);
    }
  }
  // Every single-byte change: read or refused, never a crash (ASan/UBSan run this).
  for (std::size_t i = 0; i < bytes.size(); ++i)
    for (const std::uint8_t x : {0x01, 0x80, 0xff}) {
      auto bad = bytes;
      bad[i] ^= x;
      if (auto rr = read_state_record(bad); rr && rr->type() == state::Body::AppliedIndex) (void)rr->as<state::AppliedIndex>()->index();
    }
}

TEST(StateRecord, aNewerVersionIsRefusedNotMisread) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto body = state::CreateAppliedIndex(fbb, 5);
  state::RecordBuilder rb(fbb);
  rb.add_body(body.Union());
  rb.add_body_type(state::Body::AppliedIndex);
  rb.add_version(kStateRecordVersion + 1);
  state::FinishRecordBuffer(fbb, rb.Finish());
  const std::span<const std::uint8_t> bytes(fbb.GetBufferPointer(), fbb.GetSize());
  EXPECT_TRUE(is_state_record(bytes));
  EXPECT_FALSE(read_state_record(bytes));
}

// ---- meta records -----------------------------------------------------------------------------
TEST(ReplicaMeta, roundTripsAndReadsTheRawRecordsOfEarlierBuilds) {
  TempDir d;
  auto st = open_storage(d.path / "b");
  ReplicaMeta m(*st, "t/0");
  EXPECT_FALSE(m.recovering());
  EXPECT_FALSE(m.lost());
  EXPECT_FALSE(m.applied());

  write(*st, m.put_recovering({log_index{41}, term_t{7}}));
  write(*st, m.put_lost());
  write(*st, m.put_applied(log_index{39}));
  ASSERT_TRUE(m.recovering());
  EXPECT_EQ(m.recovering()->until, log_index{41});
  EXPECT_EQ(m.recovering()->term, term_t{7});
  EXPECT_TRUE(m.lost());
  EXPECT_EQ(m.applied(), log_index{39});
  EXPECT_TRUE(is_state_record(*st->meta("recovering:t/0"))) << "written in the new shape";

  write(*st, m.put_recovering({log_index{9}, std::nullopt}));
  EXPECT_FALSE(m.recovering()->term) << "a mark without a term stays without one";
  write(*st, m.delete_recovering());
  write(*st, m.delete_lost());
  EXPECT_FALSE(m.recovering());
  EXPECT_FALSE(m.lost());

  // Earlier builds: raw little-endian integers (8 or 16 bytes), and {1} for "lost".
  ReplicaMeta old(*st, "u/1");
  put_meta(*st, "recovering:u/1", le64(1234));
  EXPECT_EQ(old.recovering()->until, log_index{1234});
  EXPECT_FALSE(old.recovering()->term);
  auto v = le64(1234);
  const auto t = le64(3);
  v.insert(v.end(), t.begin(), t.end());
  put_meta(*st, "recovering:u/1", v);
  EXPECT_EQ(old.recovering()->term, term_t{3});
  put_meta(*st, "lost:u/1", {1});
  EXPECT_TRUE(old.lost());
  put_meta(*st, "applied:u/1", le64(99));
  EXPECT_EQ(old.applied(), log_index{99});
  put_meta(*st, "applied:u/1", {1, 2, 3});
  EXPECT_FALSE(old.applied()) << "neither shape: unreadable, not a guess";
}

TEST(ProducerIds, continuesAboveTheRawCounterOfEarlierBuilds) {
  TempDir d;
  auto st = open_storage(d.path / "b");
  put_meta(*st, "next_producer_id", le64(5000));
  ProducerIdAllocator ids(*st, 1);
  auto id = ids.next();
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id >> 32, 5000) << "ids below the stored counter may be in use";
  EXPECT_TRUE(is_state_record(*st->meta("next_producer_id"))) << "the next reservation is written in the new shape";

  ProducerIdAllocator again(*st, 1);  // a restart reads the new shape
  auto id2 = again.next();
  ASSERT_TRUE(id2.has_value());
  EXPECT_GT(*id2 >> 32, *id >> 32);
}

TEST(ProducerIds, anUnreadableCounterIsAnErrorNotAFreshStart) {
  TempDir d;
  auto st = open_storage(d.path / "b");
  flatbuffers::FlatBufferBuilder fbb;
  const auto b = state::CreateAppliedIndex(fbb, 1);  // a state record, but not a counter
  put_meta(*st, "next_producer_id", finish_state_record(fbb, state::Body::AppliedIndex, b.Union()));
  ProducerIdAllocator ids(*st, 1);
  EXPECT_FALSE(ids.next().has_value()) << "handing out ids from 0 again could reuse a live producer's id";
}

// ---- consumer-group state -----------------------------------------------------------------------
std::vector<std::uint8_t> legacy_group_state(const GroupState& s) {  // what earlier builds wrote
  std::vector<std::uint8_t> o;
  auto u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) o.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto str = [&](const std::string& x) {
    u32(static_cast<std::uint32_t>(x.size()));
    o.insert(o.end(), x.begin(), x.end());
  };
  o.push_back(1);
  str(s.name);
  u32(static_cast<std::uint32_t>(s.generation));
  str(s.assignor);
  u32(static_cast<std::uint32_t>(s.members.size()));
  for (const auto& [id, m] : s.members) {
    str(m.id);
    str(m.client_id);
    u32(static_cast<std::uint32_t>(m.session_timeout_ms));
    u32(static_cast<std::uint32_t>(m.rebalance_timeout_ms));
    u32(static_cast<std::uint32_t>(m.topics.size()));
    for (const auto& t : m.topics) str(t);
  }
  u32(static_cast<std::uint32_t>(s.owners.size()));
  for (const auto& [tp, ow] : s.owners) {
    str(tp.first);
    u32(static_cast<std::uint32_t>(tp.second));
    str(ow.member);
    u32(static_cast<std::uint32_t>(ow.since));
  }
  return o;
}

GroupState sample_group() {
  GroupState s;
  s.name = "g";
  s.generation = 12;
  s.assignor = "sticky";
  s.members["m1"] = GroupMember{"m1", std::string("client\0one", 10), {"a", "b"}, 6000, 20000};
  s.members["m2"] = GroupMember{"m2", "c2", {"a"}, 10000, 30000};
  s.owners[{"a", 0}] = PartitionOwner{"m1", 11};
  s.owners[{"a", 1}] = PartitionOwner{"m2", 12};
  return s;
}

TEST(GroupStateRecord, newShapeRoundTripsAndTheOldOneIsStillRead) {
  const auto s = sample_group();
  const auto bytes = encode_group_state(s);
  EXPECT_TRUE(is_state_record(bytes));
  EXPECT_EQ(decode_group_state(bytes), s);
  EXPECT_EQ(decode_group_state(legacy_group_state(s)), s);
}

// ---- the controller's log: commands of earlier builds replay to the same topics and groups -----
struct ControllerFixture : ::testing::Test {
  TempDir d;
  std::unique_ptr<storage::Storage> st = open_storage(d.path / "b");
  Metrics metrics;
  TopicManager topics{*st, metrics, node_id{99}, 1000};  // hosts nothing: node 99 is in no replica set
  Controller ctl{*st, topics, {node_id{1}, node_id{2}, node_id{3}}, node_id{99}};
  GroupRegistry groups;
  void SetUp() override { ctl.add_extension(&groups); }
  void apply(std::uint64_t index, const std::string& text) {
    apply(index, std::vector<std::uint8_t>(text.begin(), text.end()));
  }
  void apply(std::uint64_t index, const std::vector<std::uint8_t>& payload) {
    raft::Entry e;
    e.index = log_index{index};
    e.term = term_t{1};
    ctl.apply(e, make_payload_batch(BatchType::control, payload));
  }
};

TEST_F(ControllerFixture, textCommandsOfEarlierBuildsStillReplay) {
  apply(1, "create\nt\n2\n3\n1,2,3;2,3,1\nretention.ms=1000;cleanup.policy=delete");
  auto t = topics.find("t");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->config.partitions, 2);
  EXPECT_EQ(t->config.replication_factor, 3);
  EXPECT_EQ(t->assignment[1], (std::vector<node_id>{node_id{2}, node_id{3}, node_id{1}}));
  EXPECT_EQ(t->config.configs.at("retention.ms"), "1000");
  EXPECT_EQ(t->id, 1u);

  apply(2, "alter\nt\nretention.ms=5");
  EXPECT_EQ(topics.find("t")->config.configs, (std::map<std::string, std::string>{{"retention.ms", "5"}}));

  const auto g = sample_group();
  std::string cmd = "group\ng\n";
  const auto gb = legacy_group_state(g);
  cmd.append(gb.begin(), gb.end());
  apply(3, cmd);
  EXPECT_EQ(groups.get("g"), g);

  apply(4, "delete\nt");
  EXPECT_FALSE(topics.find("t"));
}

TEST_F(ControllerFixture, aCheckpointOfAnEarlierBuildReplacesTheState) {
  apply(1, "create\nold\n1\n1\n1\n");
  // version 1, covers 4, one topic (id 2, as its create text), one group item.
  std::vector<std::uint8_t> cp;
  const std::string head = "checkpoint\n";
  cp.insert(cp.end(), head.begin(), head.end());
  auto u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) cp.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto u64 = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) cp.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto bytes = [&](const std::vector<std::uint8_t>& b) {
    u32(static_cast<std::uint32_t>(b.size()));
    cp.insert(cp.end(), b.begin(), b.end());
  };
  u32(1);
  u64(4);
  u32(1);
  u64(2);
  const std::string create = "create\nkept\n1\n3\n3,1,2\nretention.ms=7";
  bytes({create.begin(), create.end()});
  u32(1);
  bytes(legacy_group_state(sample_group()));
  apply(5, cp);
  EXPECT_FALSE(topics.find("old")) << "a topic not in the checkpoint is gone";
  auto kept = topics.find("kept");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->id, 2u);
  EXPECT_EQ(kept->config.configs.at("retention.ms"), "7");
  EXPECT_EQ(groups.get("g"), sample_group());
  EXPECT_EQ(ctl.checkpoints_applied(), 1u);
}

TEST_F(ControllerFixture, aDamagedRecordIsSkippedNotApplied) {
  flatbuffers::FlatBufferBuilder fbb;
  const auto b = state::CreateDeleteTopicDirect(fbb, "t");
  auto rec = finish_state_record(fbb, state::Body::DeleteTopic, b.Union());
  apply(1, "create\nt\n1\n1\n1\n");
  auto truncated = rec;
  truncated.resize(truncated.size() - 6);
  apply(2, truncated);
  EXPECT_TRUE(topics.find("t")) << "an unreadable delete must not delete";
  apply(3, rec);
  EXPECT_FALSE(topics.find("t"));
}

}  // namespace
}  // namespace quorumq::broker
