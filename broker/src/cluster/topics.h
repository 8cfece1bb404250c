// TopicManager: the applied view of the controller's log — which topics exist, their partition
// → replicas assignment — plus the Partition objects this broker hosts.
//
// Changes come only from the controller's committed entries (apply_create / apply_delete), on
// every broker in the same order, so every broker has the same view. Lookups (find, list) are
// thread-safe (shared lock) and return snapshots that stay valid after a delete.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "metrics.h"
#include "partition.h"
#include "quorumq/protocol/errors.h"
#include "quorumq/storage/storage.h"

namespace quorumq::broker {

struct TopicConfig {
  std::int32_t partitions = 1;
  std::int16_t replication_factor = 1;
  std::map<std::string, std::string> configs;
};

struct Topic {
  std::string name;
  // The controller log index of the command that created it: tells a topic from an earlier one
  // of the same name (deleted and created again), also across controller checkpoints.
  std::uint64_t id = 0;
  TopicConfig config;
  std::vector<std::vector<node_id>> assignment;          // per partition: its replicas, preferred leader first
  std::vector<std::shared_ptr<Partition>> partitions;    // per partition: hosted here, or nullptr
  Partition* local(std::int32_t p) const {
    if (p < 0 || p >= static_cast<std::int32_t>(partitions.size())) return nullptr;
    return partitions[static_cast<std::size_t>(p)].get();
  }
  bool has_partition(std::int32_t p) const { return p >= 0 && p < config.partitions; }
};


// A topic's own settings (Kafka's names), each overriding the broker's default:
//   retention.ms       age of records kept (-1: forever)        broker: --retention-ms
//   retention.bytes    bytes kept per partition (-1: unlimited)  broker: --retention-bytes
//   max.message.bytes  largest record batch accepted             broker: --max-message-bytes
struct TopicSettings {
  std::optional<std::int64_t> retention_ms;       // -1: forever
  std::optional<std::int64_t> retention_bytes;    // -1: unlimited
  std::optional<std::uint32_t> max_message_bytes;
};
// Unknown keys and out-of-range values are invalid_config, naming the allowed keys.
std::optional<Status> validate_topic_configs(const std::map<std::string, std::string>& configs);
TopicSettings topic_settings(const TopicConfig& cfg);

class TopicManager {
 public:
  // Starts a hosted partition's Raft group; `fresh`: created just now (not reloaded).
  using PartitionStarter = std::function<void(Partition&, bool fresh)>;
  using PartitionStopper = std::function<void(Partition&)>;

  TopicManager(storage::Storage& storage, Metrics& metrics, node_id self, std::uint32_t max_partitions);
  // Stops every local partition: their pending proposals are answered (not_leader), which also
  // releases the callbacks that keep a partition alive.
  ~TopicManager();
  TopicManager(const TopicManager&) = delete;
  TopicManager& operator=(const TopicManager&) = delete;
  void set_hooks(PartitionStarter start, PartitionStopper stop) {
    start_ = std::move(start);
    stop_ = std::move(stop);
  }

  std::shared_ptr<const Topic> find(const std::string& name) const;
  std::vector<std::shared_ptr<const Topic>> list() const;
  std::size_t hosted_partitions() const;

  // Checks a create request against the current view (the controller leader calls it before
  // proposing; apply_create checks again, since the view may have changed meanwhile).
  std::optional<Status> validate_create(const std::string& name, const TopicConfig& cfg, std::int32_t cluster_size) const;

  // From the controller's committed log (under the controller group's lock).
  void apply_create(const std::string& name, const TopicConfig& cfg, std::vector<std::vector<node_id>> assignment,
                    bool fresh, std::uint64_t id = 0);
  void apply_delete(const std::string& name);
  // Replaces a topic's configs (AlterTopicConfig).
  void apply_alter(const std::string& name, std::map<std::string, std::string> configs);

  static bool valid_name(const std::string& name, std::string* why);
  static std::string log_name(const std::string& topic, std::int32_t partition);

 private:
  storage::Storage& storage_;
  Metrics& metrics_;
  const node_id self_;
  const std::uint32_t max_partitions_;
  PartitionStarter start_;
  PartitionStopper stop_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<Topic>> topics_;
};

}  // namespace quorumq::broker
