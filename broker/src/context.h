// What request handlers share: configuration, storage, topics, metrics, and an executor to run
// work later. Deliberately free of Asio so handlers compile fast and test without sockets;
// server.cc implements Executor over asio.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "config.h"
#include "metrics.h"
#include "topics.h"
#include "quorumq/storage/storage.h"

namespace quorumq::broker {

class TimerHandle {
 public:
  virtual ~TimerHandle() = default;
  // The callback runs soon with cancelled = true (unless it already ran).
  virtual void cancel() = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void post(std::function<void()> fn) = 0;
  // fn(false) after `delay`, or fn(true) once cancel() is called first. Runs exactly once.
  virtual std::shared_ptr<TimerHandle> run_after(std::chrono::milliseconds delay, std::function<void(bool)> fn) = 0;
};

// Producer ids for idempotent producers: unique for the life of the data directory. Blocks of
// ids are reserved durably so a restart never hands out an id twice.
class ProducerIdAllocator {
 public:
  explicit ProducerIdAllocator(storage::Storage& s) : storage_(s) {}
  std::expected<std::int64_t, storage::Error> next();

 private:
  static constexpr std::int64_t kBlock = 1000;
  storage::Storage& storage_;
  std::mutex mu_;
  std::int64_t next_ = -1;
  std::int64_t limit_ = -1;
};

struct BrokerContext {
  const BrokerConfig& config;
  storage::Storage& storage;
  TopicManager& topics;
  Metrics& metrics;
  Executor& exec;
  ProducerIdAllocator producer_ids;
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> ready{false};

  BrokerContext(const BrokerConfig& c, storage::Storage& s, TopicManager& t, Metrics& m, Executor& e)
      : config(c), storage(s), topics(t), metrics(m), exec(e), producer_ids(s) {}
  std::int32_t cluster_size() const { return config.peers.empty() ? 1 : static_cast<std::int32_t>(config.peers.size()); }
};

}  // namespace quorumq::broker
