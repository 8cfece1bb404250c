// Shared by the multi-broker integration tests: a continuous acks=quorum load that records
// every acknowledgement (and when it came), topic creation that waits for leaders, and a
// consumer that reads a topic from the beginning.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "quorumq/admin.h"
#include "quorumq/consumer.h"
#include "quorumq/producer.h"

namespace quorumq::test {

using Clock = std::chrono::steady_clock;

// Produces unique values continuously with acks=quorum and records each acknowledgement.
class Load {
 public:
  // max_rate: messages per second (0: as fast as the pacing below allows).
  Load(const std::string& bootstrap, std::string topic, int partitions, int max_rate = 0)
      : topic_(std::move(topic)), partitions_(partitions), max_rate_(max_rate) {
    ProducerConfig c;
    c.bootstrap = bootstrap;
    c.acks = Acks::quorum;
    c.linger_ms = 2;
    c.delivery_timeout_ms = 120000;
    c.max_block_ms = 120000;
    // A paused (SIGSTOP) leader keeps its connections open and answers nothing: the client
    // notices by its request timeout, then finds the new leader.
    c.request_timeout_ms = 2000;
    auto p = Producer::create(c);
    if (!p) throw std::runtime_error(p.error().message);
    producer_ = std::move(*p);
    thread_ = std::thread([this] { run(); });
  }
  ~Load() { stop(); }
  void stop() {
    if (stopped_.exchange(true)) return;
    thread_.join();
    (void)producer_->flush(std::chrono::milliseconds(120000));  // each record's callback tells
  }
  struct Ack {
    std::int32_t partition;
    std::int64_t offset;
    Clock::time_point at;
  };
  std::map<std::int64_t, Ack> acks() {
    std::lock_guard lk(mu_);
    return acks_;
  }
  std::vector<std::string> failures() {
    std::lock_guard lk(mu_);
    return failures_;
  }
  std::int64_t sent() const { return next_.load(); }
  std::size_t ack_count() {
    std::lock_guard lk(mu_);
    return acks_.size();
  }
  // Longest time between consecutive acknowledgements on `partition` within [from, to].
  std::chrono::milliseconds longest_gap(int partition, Clock::time_point from, Clock::time_point to) {
    std::vector<Clock::time_point> ts;
    {
      std::lock_guard lk(mu_);
      for (const auto& [_, a] : acks_)
        if (a.partition == partition && a.at >= from && a.at <= to) ts.push_back(a.at);
    }
    std::sort(ts.begin(), ts.end());
    Clock::duration worst{};
    for (std::size_t i = 1; i < ts.size(); ++i) worst = std::max(worst, ts[i] - ts[i - 1]);
    return std::chrono::duration_cast<std::chrono::milliseconds>(worst);
  }
  // First acknowledgement on `partition` that happened after `t`.
  std::optional<Clock::time_point> first_ack_after(int partition, Clock::time_point t) {
    std::lock_guard lk(mu_);
    std::optional<Clock::time_point> best;
    for (const auto& [_, a] : acks_)
      if (a.partition == partition && a.at > t && (!best || a.at < *best)) best = a.at;
    return best;
  }

 private:
  void run() {
    const auto start = Clock::now();
    while (!stopped_) {
      const std::int64_t i = next_++;
      if (max_rate_ > 0) std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1000000 / max_rate_));
      const int part = static_cast<int>(i % partitions_);
      producer_->send(topic_, std::nullopt, "v" + std::to_string(i), {},
                      [this, i](const SendResult& r) {
                        std::lock_guard lk(mu_);
                        if (r) acks_[i] = {r->partition, r->offset, Clock::now()};
                        else failures_.push_back("v" + std::to_string(i) + ": " + r.error().message);
                      },
                      part);
      if (i % 64 == 63) std::this_thread::sleep_for(1ms);  // paces the load: ~60k msg/s at most
    }
  }
  std::string topic_;
  int partitions_;
  int max_rate_;
  std::unique_ptr<Producer> producer_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
  std::atomic<std::int64_t> next_{0};
  std::mutex mu_;
  std::map<std::int64_t, Ack> acks_;
  std::vector<std::string> failures_;
};

inline std::vector<Message> consume_all(const std::string& bootstrap, const std::string& topic, const std::string& group,
                                 std::size_t expect, std::chrono::milliseconds timeout) {
  ConsumerConfig c;
  c.bootstrap = bootstrap;
  c.group_id = group;
  c.auto_offset_reset = OffsetReset::earliest;
  auto cons = Consumer::create(c);
  EXPECT_TRUE(cons.has_value());
  (*cons)->subscribe({topic});
  std::vector<Message> out;
  const auto deadline = Clock::now() + timeout;
  while (out.size() < expect && Clock::now() < deadline) {
    auto b = (*cons)->poll(200ms);
    if (b) out.insert(out.end(), std::make_move_iterator(b->begin()), std::make_move_iterator(b->end()));
  }
  return out;
}

inline void create_topic(const std::string& bootstrap, const std::string& name, int partitions, int replicas) {
  AdminConfig ac;
  ac.bootstrap = bootstrap;
  ac.api_timeout_ms = 60000;
  auto admin = Admin::create(ac);
  ASSERT_TRUE(admin.has_value());
  auto r = (*admin)->create_topic(name, partitions, static_cast<std::int16_t>(replicas));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // Topic creation is committed by the controller; wait until every partition has a leader.
  ASSERT_TRUE(wait_until(
      [&] {
        auto d = (*admin)->describe_topic(name);
        if (!d) return false;
        for (const auto& p : d->partitions)
          if (p.leader < 0) return false;
        return static_cast<int>(d->partitions.size()) == partitions;
      },
      30s));
}

}  // namespace quorumq::test
