// The Producer and Admin against an in-process fake broker: retries after not_leader and after
// a lost answer keep order and write nothing twice; a missing broker is reported quickly.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "fake_broker.h"
#include "quorumq/quorumq.h"

namespace quorumq {
namespace {

using namespace std::chrono_literals;

ProducerConfig config_for(const testing::FakeBroker& b) {
  ProducerConfig c;
  c.bootstrap = b.address();
  c.linger_ms = 1;
  c.batch_bytes = 4096;  // many small batches: several in flight per partition
  c.retry_backoff_ms = 10;
  return c;
}

void send_numbered(Producer& p, int n, std::vector<std::future<SendResult>>& out) {
  for (int i = 0; i < n; ++i) {
    const std::string key = "k" + std::to_string(i % 7);
    out.push_back(p.send("t", key, std::to_string(i)));
  }
}

// Every partition's values must be increasing (send order) with no value twice.
void expect_in_order_once(const std::map<int, testing::FakeBroker::Stored>& parts, int n) {
  std::set<int> seen;
  for (const auto& [p, s] : parts) {
    int last = -1;
    for (const auto& v : s.values) {
      const int x = std::stoi(v);
      EXPECT_GT(x, last) << "partition " << p;
      last = x;
      EXPECT_TRUE(seen.insert(x).second) << "duplicate " << x;
    }
  }
  EXPECT_EQ(static_cast<int>(seen.size()), n);
}

TEST(ProducerFakeBroker, sends_and_reports_offsets) {
  testing::FakeBroker broker;
  auto p = Producer::create(config_for(broker)).value();
  std::vector<std::future<SendResult>> f;
  send_numbered(*p, 500, f);
  ASSERT_TRUE(p->flush(10s));
  std::map<int, std::int64_t> last;
  for (auto& x : f) {
    auto r = x.get();
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->topic, "t");
    if (last.count(r->partition)) {
      EXPECT_EQ(r->offset, last[r->partition] + 1);
    }
    last[r->partition] = r->offset;
  }
  expect_in_order_once(broker.partitions(), 500);
}

TEST(ProducerFakeBroker, not_leader_with_hint_is_retried_in_order) {
  testing::FakeBroker broker;
  broker.not_leader_answers = 5;
  auto p = Producer::create(config_for(broker)).value();
  std::vector<std::future<SendResult>> f;
  send_numbered(*p, 2000, f);
  ASSERT_TRUE(p->flush(20s));
  for (auto& x : f) ASSERT_TRUE(x.get());
  expect_in_order_once(broker.partitions(), 2000);
  EXPECT_GT(p->stats().batches_retried, 0u);
}

TEST(ProducerFakeBroker, lost_answers_are_retried_without_duplicates) {
  testing::FakeBroker broker;
  broker.drop_after_append = 3;  // the 3rd append's answer dies with its connection
  auto p = Producer::create(config_for(broker)).value();
  std::vector<std::future<SendResult>> f;
  send_numbered(*p, 3000, f);
  ASSERT_TRUE(p->flush(20s));
  for (auto& x : f) {
    auto r = x.get();
    ASSERT_TRUE(r) << r.error().to_string();
  }
  expect_in_order_once(broker.partitions(), 3000);
}

TEST(ProducerFakeBroker, unknown_topic_fails_with_advice) {
  testing::FakeBroker broker;
  auto p = Producer::create(config_for(broker)).value();
  auto r = p->send("nope", std::nullopt, "x").get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, BrokerError::unknown_topic_or_partition);
  EXPECT_NE(r.error().message.find("topic create"), std::string::npos);
}

TEST(ProducerFakeBroker, missing_broker_is_reported_not_waited_for) {
  std::uint16_t port;
  {
    testing::FakeBroker gone;  // take a free port, then close it
    port = gone.port();
  }
  ProducerConfig c;
  c.bootstrap = "127.0.0.1:" + std::to_string(port);
  c.connect_timeout_ms = 500;
  auto p = Producer::create(c).value();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = p->send("t", std::nullopt, "x").get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ClientError::broker_unreachable);
  EXPECT_NE(r.error().message.find(c.bootstrap), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(AdminFakeBroker, lists_and_describes) {
  testing::FakeBroker broker(3);
  AdminConfig c;
  c.bootstrap = broker.address();
  auto a = Admin::create(c).value();
  auto topics = a->list_topics();
  ASSERT_TRUE(topics);
  ASSERT_EQ(topics->size(), 1u);
  EXPECT_EQ((*topics)[0].partitions, 3);
  auto d = a->describe_topic("t");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->partitions.size(), 3u);
  EXPECT_EQ(d->partitions[2].leader, 1);
  auto missing = a->describe_topic("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, BrokerError::unknown_topic_or_partition);
  auto cl = a->cluster();
  ASSERT_TRUE(cl);
  EXPECT_EQ(cl->brokers.size(), 1u);
  EXPECT_EQ(cl->cluster_id, "");
}

}  // namespace
}  // namespace quorumq

namespace quorumq {
namespace {

TEST(ProducerFakeBroker, lost_producer_state_fails_only_the_affected_batches) {
  testing::FakeBroker broker(1);
  broker.forget_after_append = 2;
  const std::string pad(100, 'x');
  auto c = config_for(broker);
  c.max_in_flight = 1;
  auto p = Producer::create(c).value();
  std::vector<std::future<SendResult>> first;
  for (int i = 0; i < 300; ++i) first.push_back(p->send("t", std::nullopt, std::to_string(i) + pad));
  ASSERT_TRUE(p->flush(10s));
  int failed = 0;
  for (auto& f : first) {
    auto r = f.get();
    if (!r) {
      ++failed;
      EXPECT_EQ(r.error().code, BrokerError::out_of_order_sequence);
    }
  }
  EXPECT_GT(failed, 0);
  // A new producer id: what is sent afterwards is written again.
  std::vector<std::future<SendResult>> later;
  for (int i = 300; i < 400; ++i) later.push_back(p->send("t", std::nullopt, std::to_string(i) + pad));
  ASSERT_TRUE(p->flush(10s));
  for (auto& f : later) {
    auto r = f.get();
    EXPECT_TRUE(r) << r.error().to_string();
  }
  auto parts = broker.partitions();
  EXPECT_EQ(parts[0].values.back(), "399" + pad);
}

}  // namespace
}  // namespace quorumq
