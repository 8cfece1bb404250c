// Plain value types of the public API. No dependency beyond the standard library.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace quorumq {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

struct TopicPartitionOffset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = -1;
};

using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;

// What the broker assigned to a produced record.
struct RecordMetadata {
  std::string topic;
  std::int32_t partition = -1;
  // -1 when unknown: acks=none, or the broker reported the batch as an already-written
  // duplicate (an idempotent retry of a batch whose first answer was lost).
  std::int64_t offset = -1;
  std::int64_t timestamp_ms = 0;  // the producer's create time of the record
};

// A consumed record. Owns its bytes.
struct Message {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string> key;
  std::string value;  // a null value arrives as empty
  Headers headers;
  std::int64_t timestamp_ms = 0;
};

struct BrokerInfo {
  std::int32_t node_id = -1;
  std::string host;
  std::uint16_t port = 0;
};

struct PartitionInfo {
  std::int32_t partition = 0;
  std::int32_t leader = -1;  // -1: no leader right now
  std::uint64_t leader_epoch = 0;
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
  std::int64_t high_watermark = -1;
  std::int64_t log_start_offset = -1;
};

struct TopicDescription {
  std::string name;
  bool internal = false;
  std::vector<PartitionInfo> partitions;
  // The topic's own settings (retention.ms, retention.bytes, max.message.bytes); a key not
  // here follows the broker's default.
  std::map<std::string, std::string> configs;
  // Tells this topic from an earlier one of the same name (0: the broker does not say).
  std::uint64_t topic_id = 0;
};

struct TopicListing {
  std::string name;
  std::int32_t partitions = 0;
  std::int16_t replication_factor = 0;
  bool internal = false;
};

struct ClusterInfo {
  std::string cluster_id;
  std::int32_t controller_id = -1;
  std::vector<BrokerInfo> brokers;
};

}  // namespace quorumq

template <>
struct std::hash<quorumq::TopicPartition> {
  std::size_t operator()(const quorumq::TopicPartition& tp) const noexcept {
    return std::hash<std::string>{}(tp.topic) * 31 + static_cast<std::size_t>(tp.partition);
  }
};
