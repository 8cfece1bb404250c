// Kafka's group, offset and admin request decoders (issue 17): FindCoordinator, JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups,
// CreateTopics, DeleteTopics, DescribeConfigs; and the consumer protocol's Subscription and
// Assignment (the opaque bytes members exchange through JoinGroup and SyncGroup, which the
// coordinator reads to know who owns what). Pure functions over bytes like kafka_requests.h:
// every decoder reads the whole body and fails on anything short, malformed or left over, or on
// more than `max_items` partitions, members, topics or groups.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kafka_wire.h"

namespace quorumq::broker::kafka {

namespace api {
inline constexpr std::int16_t offset_commit = 8;
inline constexpr std::int16_t offset_fetch = 9;
inline constexpr std::int16_t find_coordinator = 10;
inline constexpr std::int16_t join_group = 11;
inline constexpr std::int16_t heartbeat = 12;
inline constexpr std::int16_t leave_group = 13;
inline constexpr std::int16_t sync_group = 14;
inline constexpr std::int16_t describe_groups = 15;
inline constexpr std::int16_t list_groups = 16;
inline constexpr std::int16_t create_topics = 19;
inline constexpr std::int16_t delete_topics = 20;
inline constexpr std::int16_t describe_configs = 32;
}  // namespace api

using Bytes = std::span<const std::uint8_t>;

struct FindCoordinatorRequest {
  std::string_view key;
  std::int8_t key_type = 0;  // 0 group, 1 transaction
};
bool parse_find_coordinator(Reader& r, std::int16_t version, FindCoordinatorRequest& out);

struct JoinGroupRequest {
  struct Protocol {
    std::string_view name;
    Bytes metadata;
  };
  std::string_view group_id;
  std::int32_t session_timeout_ms = 0;
  std::int32_t rebalance_timeout_ms = -1;  // v0: the session timeout
  std::string_view member_id;
  std::optional<std::string_view> group_instance_id;  // v5+
  std::string_view protocol_type;
  std::vector<Protocol> protocols;
};
bool parse_join_group(Reader& r, std::int16_t version, std::uint32_t max_items, JoinGroupRequest& out);

struct SyncGroupRequest {
  struct Assignment {
    std::string_view member_id;
    Bytes assignment;
  };
  std::string_view group_id;
  std::int32_t generation_id = -1;
  std::string_view member_id;
  std::optional<std::string_view> group_instance_id;  // v3+
  std::vector<Assignment> assignments;
};
bool parse_sync_group(Reader& r, std::int16_t version, std::uint32_t max_items, SyncGroupRequest& out);

struct HeartbeatRequest {
  std::string_view group_id;
  std::int32_t generation_id = -1;
  std::string_view member_id;
  std::optional<std::string_view> group_instance_id;  // v3+
};
bool parse_heartbeat(Reader& r, std::int16_t version, HeartbeatRequest& out);

struct LeaveGroupRequest {
  std::string_view group_id;
  std::vector<std::string_view> member_ids;  // one before v3
};
bool parse_leave_group(Reader& r, std::int16_t version, std::uint32_t max_items, LeaveGroupRequest& out);

struct OffsetCommitRequest {
  struct Partition {
    std::int32_t index = 0;
    std::int64_t offset = 0;
    std::optional<std::string_view> metadata;
  };
  struct Topic {
    std::string_view name;
    std::vector<Partition> partitions;
  };
  std::string_view group_id;
  std::int32_t generation_id = -1;
  std::string_view member_id;
  std::vector<Topic> topics;
};
bool parse_offset_commit(Reader& r, std::int16_t version, std::uint32_t max_items, OffsetCommitRequest& out);

struct OffsetFetchRequest {
  struct Topic {
    std::string_view name;
    std::vector<std::int32_t> partitions;
  };
  std::string_view group_id;
  std::optional<std::vector<Topic>> topics;  // nullopt (v2+): every partition the group committed
};
bool parse_offset_fetch(Reader& r, std::int16_t version, std::uint32_t max_items, OffsetFetchRequest& out);

bool parse_list_groups(Reader& r, std::int16_t version);

struct DescribeGroupsRequest {
  std::vector<std::string_view> groups;
};
bool parse_describe_groups(Reader& r, std::int16_t version, std::uint32_t max_items, DescribeGroupsRequest& out);

struct CreateTopicsRequest {
  struct Config {
    std::string_view name;
    std::optional<std::string_view> value;
  };
  struct Topic {
    std::string_view name;
    std::int32_t partitions = -1;          // -1: the broker's default
    std::int16_t replication_factor = -1;  // -1: the broker's default
    bool manual_assignment = false;        // replica assignments given (refused)
    std::vector<Config> configs;
  };
  std::vector<Topic> topics;
  std::int32_t timeout_ms = 0;
  bool validate_only = false;  // v1+
};
bool parse_create_topics(Reader& r, std::int16_t version, std::uint32_t max_items, CreateTopicsRequest& out);

struct DeleteTopicsRequest {
  std::vector<std::string_view> topics;
  std::int32_t timeout_ms = 0;
};
bool parse_delete_topics(Reader& r, std::int16_t version, std::uint32_t max_items, DeleteTopicsRequest& out);

struct DescribeConfigsRequest {
  struct Resource {
    std::int8_t type = 0;  // 2 topic, 4 broker
    std::string_view name;
    std::optional<std::vector<std::string_view>> keys;  // nullopt: all
  };
  std::vector<Resource> resources;
  bool include_synonyms = false;  // v1+
};
bool parse_describe_configs(Reader& r, std::int16_t version, std::uint32_t max_items, DescribeConfigsRequest& out);

// The consumer protocol ("consumer" protocol type): what a member subscribes to (JoinGroup
// metadata) and what the leader assigned it (SyncGroup). Fields after the ones read are
// ignored (newer versions append), as Kafka's own readers do.
struct TopicPartitions {
  std::string_view topic;
  std::vector<std::int32_t> partitions;
};
bool parse_subscription(Bytes b, std::uint32_t max_items, std::vector<std::string_view>& topics);
bool parse_assignment(Bytes b, std::uint32_t max_items, std::vector<TopicPartitions>& out);
// An assignment as the consumer protocol writes it (version 0, no user data).
void write_assignment(Writer& w, const std::vector<TopicPartitions>& parts);

}  // namespace quorumq::broker::kafka
