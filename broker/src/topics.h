// TopicManager: the topics this broker serves and their partitions.
//
// One node: the topic list is a small record in the storage meta store, written durably before
// CreateTopic is answered. With replication the controller's replicated log takes this role and
// this class becomes its applied view; lookups (find) stay the same.
// Threads: find/list from any thread (shared lock); create/remove serialise on an exclusive lock
// and block on one durable write (rare, admin-path operations).
#pragma once

#include <cstdint>
#include <expected>
#include <map>
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
  TopicConfig config;
  std::vector<std::shared_ptr<Partition>> partitions;
};

struct AdminError {
  wire::ErrorCode code = wire::ErrorCode::none;
  std::string message;
};

class TopicManager {
 public:
  TopicManager(storage::Storage& storage, Metrics& metrics, std::uint32_t max_partitions);
  // Reads the topic list and opens every partition log.
  std::expected<void, std::string> load();

  std::shared_ptr<const Topic> find(const std::string& name) const;
  std::vector<std::shared_ptr<const Topic>> list() const;
  std::size_t partition_count() const;

  std::expected<std::shared_ptr<const Topic>, AdminError> create(const std::string& name, const TopicConfig& cfg,
                                                                 std::int32_t cluster_size, bool validate_only);
  std::expected<void, AdminError> remove(const std::string& name);

  // Valid names: 1..200 of [A-Za-z0-9._-], not starting with "__" (reserved for internal topics).
  static bool valid_name(const std::string& name, std::string* why);
  static std::string log_name(const std::string& topic, std::int32_t partition);

 private:
  std::vector<std::uint8_t> encode_locked() const;
  std::size_t partition_count_locked() const;
  std::expected<std::shared_ptr<Topic>, std::string> open_topic(const std::string& name, const TopicConfig& cfg);

  storage::Storage& storage_;
  Metrics& metrics_;
  const std::uint32_t max_partitions_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<Topic>> topics_;
};

}  // namespace quorumq::broker
