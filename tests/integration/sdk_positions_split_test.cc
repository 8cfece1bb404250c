// The SDK against a real broker process, issue 14:
//  §1 a group member commits the position it got from the reset policy before it consumes
//     anything (so a member that dies before its first commit leaves the group a place to
//     resume), and the group, when it comes back, reads everything produced after it first saw
//     each partition.
//     A seek while a (long-poll) fetch of the partition is in flight does not stall it (the CLI
//     seeks right after assign(); the fetch's answer used to leave the partition marked "fetch
//     in flight" forever, and `consume --partition --offset` hung).
//  §4 the producer splits batches the broker refuses as too large; a record over the limit
//     fails alone (naming the limit) and the records around it are written once, in order.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <set>

#include "harness.h"
#include "quorumq/admin.h"
#include "quorumq/consumer.h"
#include "quorumq/producer.h"

namespace quorumq::test {
namespace {

class SdkIssue14 : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(
        1, dir_.path() / "b1", std::vector<std::string>{"--log-level=warn", "--max-message-bytes=102400"});
    broker_->start();
    AdminConfig a;
    a.bootstrap = broker_->address();
    admin_ = std::move(*Admin::create(a));
  }
  std::unique_ptr<Producer> producer() {
    ProducerConfig c;
    c.bootstrap = broker_->address();
    return std::move(*Producer::create(c));
  }
  std::unique_ptr<Consumer> consumer(const std::string& group, bool auto_commit) {
    ConsumerConfig c;
    c.bootstrap = broker_->address();
    c.group_id = group;
    c.auto_offset_reset = OffsetReset::latest;
    c.enable_auto_commit = auto_commit;
    c.auto_commit_interval_ms = 600000;  // the periodic commit never comes in this test
    return std::move(*Consumer::create(c));
  }
  std::map<int, std::int64_t> committed(const std::string& group) {
    std::map<int, std::int64_t> out;
    auto offs = admin_->group_offsets(group);
    EXPECT_TRUE(offs.has_value());
    if (offs)
      for (const auto& o : *offs) out[o.partition] = o.committed;
    return out;
  }

  TempDir dir_{"quorumq-sdk14"};
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<Admin> admin_;
};

TEST_F(SdkIssue14, member_commits_its_start_positions_before_consuming) {
  ASSERT_TRUE(admin_->create_topic("pos", 3, 1));
  auto p = producer();
  std::vector<std::future<SendResult>> sent;
  for (int part = 0; part < 3; ++part)
    for (int i = 0; i < 4; ++i) sent.push_back(p->send("pos", std::nullopt, "old", {}, part));
  ASSERT_TRUE(p->flush(30s));
  for (auto& f : sent) ASSERT_TRUE(f.get().has_value());

  for (const bool auto_commit : {true, false}) {
    const std::string group = auto_commit ? "auto" : "manual";
    auto c = consumer(group, auto_commit);
    c->subscribe({"pos"});
    ASSERT_TRUE(wait_until(
        [&] {
          auto m = c->poll(50ms);
          EXPECT_TRUE(m.has_value());
          if (m) {
            EXPECT_TRUE(m->empty()) << "nothing new was produced";
          }
          return c->assignment().size() == 3;
        },
        30s));
    for (int part = 0; part < 3; ++part) {
      auto pos = c->position({"pos", part});
      ASSERT_TRUE(pos.has_value()) << pos.error().to_string();
      EXPECT_EQ(*pos, 4);
    }
    // Nothing consumed, no commit asked for: the start positions are committed already.
    EXPECT_EQ(committed(group), (std::map<int, std::int64_t>{{0, 4}, {1, 4}, {2, 4}})) << group;
    c->close();  // leaves; a member killed here instead leaves the same committed positions
  }
  // Produced after the group first saw each partition: the group reads all of it.
  sent.clear();
  for (int part = 0; part < 3; ++part)
    sent.push_back(p->send("pos", std::nullopt, "new-" + std::to_string(part), {}, part));
  ASSERT_TRUE(p->flush(30s));
  for (auto& f : sent) ASSERT_TRUE(f.get().has_value());
  auto back = consumer("auto", true);
  back->subscribe({"pos"});
  std::set<std::string> got;
  wait_until(
      [&] {
        if (auto m = back->poll(100ms))
          for (auto& msg : *m) got.insert(msg.value);
        return got.size() >= 3;
      },
      30s);
  EXPECT_EQ(got, (std::set<std::string>{"new-0", "new-1", "new-2"}));
  back->close();
  EXPECT_EQ(committed("auto"), (std::map<int, std::int64_t>{{0, 5}, {1, 5}, {2, 5}})) << "auto-commit on close";
}

TEST_F(SdkIssue14, seek_while_a_fetch_is_in_flight_does_not_stall_the_partition) {
  ASSERT_TRUE(admin_->create_topic("seek", 1, 1));
  auto p = producer();
  auto zero = p->send("seek", std::nullopt, "zero", {}, 0);
  ASSERT_TRUE(p->flush(30s));
  ASSERT_TRUE(zero.get().has_value());
  ConsumerConfig cc;
  cc.bootstrap = broker_->address();
  cc.auto_offset_reset = OffsetReset::latest;
  cc.fetch_max_wait_ms = 2000;  // an empty partition keeps a long poll in flight
  auto c = std::move(*Consumer::create(cc));
  c->assign({{"seek", 0}});
  auto pos = c->position({"seek", 0});
  ASSERT_TRUE(pos.has_value());
  EXPECT_EQ(*pos, 1);
  auto none = c->poll(300ms);  // the long poll is in flight now
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(c->seek({"seek", 0}, 0));
  std::vector<std::string> got;
  wait_until(
      [&] {
        if (auto m = c->poll(100ms))
          for (auto& msg : *m) got.push_back(msg.value);
        return !got.empty();
      },
      15s);
  EXPECT_EQ(got, std::vector<std::string>{"zero"});
}

TEST_F(SdkIssue14, producer_splits_too_large_batches_and_fails_only_the_oversized_record) {
  ASSERT_TRUE(admin_->create_topic("split", 1, 1));
  auto p = producer();
  // Many small records: 256 KiB batches are refused (100 KiB limit) and split until they fit.
  std::vector<std::future<SendResult>> small;
  for (int i = 0; i < 20000; ++i) small.push_back(p->send("split", std::nullopt, "s" + std::to_string(i), {}, 0));
  ASSERT_TRUE(p->flush(60s));
  for (std::size_t i = 0; i < small.size(); ++i) {
    auto r = small[i].get();
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().to_string();
    EXPECT_EQ(r->offset, static_cast<std::int64_t>(i));
  }
  EXPECT_GT(p->stats().batches_retried, 0u);
  // One record over the limit between small ones, all in flight together.
  std::vector<std::future<SendResult>> around;
  for (int i = 0; i < 300; ++i) around.push_back(p->send("split", std::nullopt, "a" + std::to_string(i), {}, 0));
  auto huge = p->send("split", std::nullopt, std::string(150000, 'h'), {}, 0);
  for (int i = 300; i < 600; ++i) around.push_back(p->send("split", std::nullopt, "a" + std::to_string(i), {}, 0));
  ASSERT_TRUE(p->flush(60s));
  auto h = huge.get();
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, BrokerError::message_too_large);
  EXPECT_NE(h.error().message.find("102400"), std::string::npos) << h.error().message;
  EXPECT_NE(h.error().message.find("max.message.bytes"), std::string::npos) << h.error().message;
  for (std::size_t i = 0; i < around.size(); ++i) {
    auto r = around[i].get();
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().to_string();
    EXPECT_EQ(r->offset, 20000 + static_cast<std::int64_t>(i)) << "written once, in send order";
  }
  // The log holds exactly what was acknowledged, in order.
  ConsumerConfig cc;
  cc.bootstrap = broker_->address();
  auto c = std::move(*Consumer::create(cc));
  c->assign({{"split", 0}});
  ASSERT_TRUE(c->seek({"split", 0}, 20000));
  std::vector<std::string> read;
  wait_until(
      [&] {
        if (auto m = c->poll(100ms))
          for (auto& msg : *m) read.push_back(msg.value);
        return read.size() >= 600;
      },
      30s);
  ASSERT_EQ(read.size(), 600u);
  for (int i = 0; i < 600; ++i) EXPECT_EQ(read[static_cast<std::size_t>(i)], "a" + std::to_string(i));
}

}  // namespace
}  // namespace quorumq::test
