// The SDK against one real broker process (issue 3): round trip with keys and headers across
// partitions, long-poll fetch waking on new data, and producer retries across a broker kill -9
// creating no duplicate (idempotence on by default).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "harness.h"
#include "quorumq/admin.h"
#include "quorumq/consumer.h"
#include "quorumq/partitioner.h"
#include "quorumq/producer.h"

namespace quorumq::test {
namespace {

std::unique_ptr<Admin> admin_for(const std::string& bootstrap) {
  AdminConfig c;
  c.bootstrap = bootstrap;
  auto a = Admin::create(c);
  EXPECT_TRUE(a.has_value());
  return std::move(*a);
}

std::unique_ptr<Consumer> consumer_for(const std::string& bootstrap, const std::string& group) {
  ConsumerConfig c;
  c.bootstrap = bootstrap;
  c.group_id = group;
  c.auto_offset_reset = OffsetReset::earliest;
  auto r = Consumer::create(c);
  EXPECT_TRUE(r.has_value());
  return std::move(*r);
}

// Polls until `n` messages arrived or `timeout` passed.
std::vector<Message> consume_n(Consumer& c, std::size_t n, std::chrono::milliseconds timeout) {
  std::vector<Message> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto batch = c.poll(200ms);
    if (!batch) continue;
    for (auto& m : *batch) out.push_back(std::move(m));
  }
  return out;
}

class Sdk : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<BrokerProcess>(0, dir_.path() / "b0", std::vector<std::string>{"--log-level=warn"});
    broker_->start();
    admin_ = admin_for(broker_->address());
  }
  ProducerConfig producer_config() const {
    ProducerConfig c;
    c.bootstrap = broker_->address();
    return c;
  }
  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<Admin> admin_;
};

TEST_F(Sdk, roundTrip_keysAndHeadersAcrossPartitions) {
  ASSERT_TRUE(admin_->create_topic("rt", 4, 1).has_value());
  auto p = Producer::create(producer_config());
  ASSERT_TRUE(p.has_value());
  std::vector<std::future<SendResult>> acks;
  for (int i = 0; i < 400; ++i) {
    const std::string key = "key-" + std::to_string(i % 20);
    acks.push_back((*p)->send("rt", key, "value-" + std::to_string(i), {{"seq", std::to_string(i)}, {"h2", ""}}));
  }
  ASSERT_TRUE((*p)->flush(30s));
  std::map<int, RecordMetadata> meta;
  for (int i = 0; i < 400; ++i) {
    auto r = acks[static_cast<std::size_t>(i)].get();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->partition, partition_for_key("key-" + std::to_string(i % 20), 4));
    meta[i] = *r;
  }
  auto c = consumer_for(broker_->address(), "rt-group");
  c->subscribe({"rt"});
  auto got = consume_n(*c, 400, 30s);
  ASSERT_EQ(got.size(), 400u);
  std::map<std::int32_t, std::int64_t> last_offset;
  std::map<std::string, int> last_seq_of_key;
  for (const auto& m : got) {
    ASSERT_TRUE(m.key.has_value());
    ASSERT_EQ(m.headers.size(), 2u);
    EXPECT_EQ(m.headers[0].first, "seq");
    EXPECT_EQ(m.headers[1], (Header{"h2", ""}));
    const int seq = std::stoi(m.headers[0].second);
    EXPECT_EQ(m.value, "value-" + std::to_string(seq));
    EXPECT_EQ(*m.key, "key-" + std::to_string(seq % 20));
    EXPECT_EQ(m.partition, meta[seq].partition);
    EXPECT_EQ(m.offset, meta[seq].offset);
    // Per partition: offsets increase; per key: send order is kept.
    if (last_offset.contains(m.partition)) {
      EXPECT_GT(m.offset, last_offset[m.partition]);
    }
    last_offset[m.partition] = m.offset;
    if (last_seq_of_key.contains(*m.key)) {
      EXPECT_GT(seq, last_seq_of_key[*m.key]);
    }
    last_seq_of_key[*m.key] = seq;
  }
}

TEST_F(Sdk, longPollFetch_wakesOnNewData) {
  ASSERT_TRUE(admin_->create_topic("lp", 1, 1).has_value());
  auto c = consumer_for(broker_->address(), "lp-group");
  c->subscribe({"lp"});
  EXPECT_TRUE(c->poll(300ms).value_or(std::vector<Message>{}).empty());  // nothing yet; positions set
  std::atomic<bool> done{false};
  std::vector<Message> got;
  std::chrono::milliseconds waited{};
  std::thread poller([&] {
    const auto t0 = std::chrono::steady_clock::now();
    while (got.empty() && std::chrono::steady_clock::now() - t0 < 20s) {
      auto r = c->poll(20s);
      if (r) got = std::move(*r);
    }
    waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    done = true;
  });
  // The poller is parked in a long poll once the broker has fetch requests waiting.
  ASSERT_TRUE(wait_until(
      [&] {
        auto m = http_get(broker_->admin_port(), "/metrics");
        return m && m->body.find("quorumq_fetch_requests_total 0\n") == std::string::npos;
      },
      10s));
  auto p = Producer::create(producer_config());
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE((*p)->send("lp", std::nullopt, "wake-up").get().has_value());
  poller.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "wake-up");
  EXPECT_LT(waited, 15s) << "poll returned by its timeout, not because data arrived";
}

TEST_F(Sdk, brokerKill9MidProduce_everyAckedMessageOnceInOrder) {
  ASSERT_TRUE(admin_->create_topic("crash", 3, 1).has_value());
  auto cfg = producer_config();
  cfg.delivery_timeout_ms = 90000;
  cfg.linger_ms = 1;
  auto p = Producer::create(cfg);
  ASSERT_TRUE(p.has_value());
  constexpr int kMessages = 20000;
  std::atomic<int> acked{0};
  std::mutex mu;
  std::map<int, RecordMetadata> ok;
  std::vector<std::string> failures;
  for (int i = 0; i < kMessages; ++i) {
    (*p)->send("crash", "k" + std::to_string(i % 7), "m-" + std::to_string(i), {},
               [&, i](const SendResult& r) {
                 std::lock_guard lk(mu);
                 if (r) ok[i] = *r;
                 else failures.push_back(r.error().message);
                 ++acked;
               });
    if (i == kMessages / 4) {
      ASSERT_TRUE(wait_until([&] { return acked.load() > kMessages / 8; }, 30s));
      broker_->kill9();     // mid-stream: requests in flight, batches queued
      broker_->start();     // same data dir and ports; LMDB needs no replay
    }
  }
  ASSERT_TRUE((*p)->flush(120s));
  ASSERT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
  ASSERT_EQ(ok.size(), static_cast<std::size_t>(kMessages));

  auto c = consumer_for(broker_->address(), "crash-check");
  c->subscribe({"crash"});
  auto got = consume_n(*c, kMessages, 60s);
  // Anything beyond the acknowledged count would be a duplicate: the partitions' high
  // watermarks must equal what was acknowledged.
  auto extra = consume_n(*c, 1, 1s);
  EXPECT_TRUE(extra.empty()) << "a message beyond the acknowledged ones: " << extra.front().value;
  std::map<std::string, int> seen;
  std::map<std::int32_t, int> last_i;
  for (const auto& m : got) {
    ++seen[m.value];
    const int i = std::stoi(m.value.substr(2));
    // Per partition the log order equals the send order (idempotence keeps it across retries).
    if (last_i.contains(m.partition)) {
      EXPECT_GT(i, last_i[m.partition]) << "reordered in partition " << m.partition;
    }
    last_i[m.partition] = i;
    EXPECT_EQ(m.offset, ok[i].offset);
  }
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kMessages)) << "duplicates or losses";
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(seen["m-" + std::to_string(i)], 1) << "message " << i;
}

TEST_F(Sdk, brokerRestart_committedOffsetsSurvive) {
  ASSERT_TRUE(admin_->create_topic("oc", 2, 1).has_value());
  {
    auto c = consumer_for(broker_->address(), "g1");
    c->assign({{"oc", 0}, {"oc", 1}});
    ASSERT_TRUE(c->commit({{"oc", 0, 0}, {"oc", 1, 0}}).has_value());  // positions exist
  }
  auto p = Producer::create(producer_config());
  std::vector<std::future<SendResult>> sent;
  for (int i = 0; i < 100; ++i) sent.push_back((*p)->send("oc", std::nullopt, "x", {}, i % 2));
  ASSERT_TRUE((*p)->flush(30s));
  for (auto& f : sent) ASSERT_TRUE(f.get().has_value());
  {
    auto c = consumer_for(broker_->address(), "g1");
    ASSERT_TRUE(c->commit({{"oc", 0, 17}, {"oc", 1, 33}}).has_value());
  }
  broker_->kill9();
  broker_->start();
  auto c = consumer_for(broker_->address(), "g1");
  auto c0 = c->committed({"oc", 0});
  auto c1 = c->committed({"oc", 1});
  ASSERT_TRUE(c0.has_value()) << c0.error().message;
  ASSERT_TRUE(c1.has_value()) << c1.error().message;
  EXPECT_EQ(*c0, 17);
  EXPECT_EQ(*c1, 33);
}

}  // namespace
}  // namespace quorumq::test
