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
#include "executor.h"
#include "metrics.h"
#include "topics.h"
#include "controller.h"
#include "group_coordinator.h"
#include "group_state.h"
#include "kafka_groups.h"
#include "quorumq/protocol/frame.h"
#include "replication.h"
#include "security.h"
#include "quorumq/storage/storage.h"

namespace quorumq::broker {

// Producer ids for idempotent producers: unique for the life of the data directory. Blocks of
// ids are reserved durably so a restart never hands out an id twice.
class ProducerIdAllocator {
 public:
  // Ids are counter << 32 | node id, so brokers never hand out the same id.
  ProducerIdAllocator(storage::Storage& s, std::int32_t node) : storage_(s), node_(node) {}
  std::expected<std::int64_t, storage::Error> next();

 private:
  static constexpr std::int64_t kBlock = 1000;
  storage::Storage& storage_;
  std::int32_t node_;
  std::mutex mu_;
  std::int64_t next_ = -1;
  std::int64_t limit_ = -1;
};

// Sends one native request to another broker's client listener and hands back its answer: how
// the Kafka group coordinator reaches the partition leaders that keep a group's offsets
// (server/peer_requests.cc implements it over Asio).
class PeerRequests {
 public:
  virtual ~PeerRequests() = default;
  struct Reply {
    bool ok = false;      // false: no answer (unknown address, refused, timed out); `why` says
    std::string why;
    bool error_payload = false;  // the payload is a wire::ErrorResponse
    std::vector<std::uint8_t> payload;
  };
  // `payload` is a finished flatbuffer of the api's request. `done` runs once, on any thread.
  virtual void send(node_id to, protocol::ApiId api, std::vector<std::uint8_t> payload,
                    std::chrono::milliseconds timeout, std::function<void(Reply)> done) = 0;
};

struct BrokerContext {
  const BrokerConfig& config;
  storage::Storage& storage;
  TopicManager& topics;
  Metrics& metrics;
  Executor& exec;
  ReplicaManager& replication;
  Controller& controller;
  GroupRegistry& groups;
  GroupCoordinator& coordinator;
  KafkaGroupCoordinator& kafka_groups;
  PeerRequests& peers;
  Security& security;
  ProducerIdAllocator producer_ids;
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> ready{false};

  BrokerContext(const BrokerConfig& c, storage::Storage& s, TopicManager& t, Metrics& m, Executor& e,
                ReplicaManager& r, Controller& ctl, GroupRegistry& g, GroupCoordinator& gc, KafkaGroupCoordinator& kg,
                PeerRequests& pr, Security& sec)
      : config(c), storage(s), topics(t), metrics(m), exec(e), replication(r), controller(ctl), groups(g),
        coordinator(gc), kafka_groups(kg), peers(pr), security(sec), producer_ids(s, c.node_id) {}
  std::int32_t cluster_size() const { return static_cast<std::int32_t>(replication.brokers().size()); }
};

}  // namespace quorumq::broker
