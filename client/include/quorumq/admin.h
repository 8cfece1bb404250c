// quorumq::Admin: topics and cluster metadata. Every call is synchronous, retries transient
// errors (no leader yet, connection lost) and gives up after api_timeout_ms.
// Thread-safe; one background I/O thread per Admin.
#pragma once

#include "quorumq/export.h"

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quorumq/config.h"
#include "quorumq/error.h"
#include "quorumq/types.h"

namespace quorumq {

enum class OffsetSpec : std::uint8_t { latest = 0, earliest = 1, timestamp = 2 };

struct GroupPartitionOffset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t committed = -1;  // -1: nothing committed
  std::string metadata;
};

struct GroupMemberInfo {
  std::string member_id;
  std::string client_id;
  std::vector<std::string> topics;         // subscription
  std::vector<TopicPartition> assignment;  // owned now
  std::vector<TopicPartition> revoking;    // owned, being moved to another member
  std::vector<TopicPartition> target;      // what the assignor gives it
};

struct GroupInfo {
  std::string group_id;
  std::string state;  // "empty", "stable", "rebalancing"
  std::int32_t generation = -1;
  std::string assignor;
  std::int32_t coordinator = -1;  // broker id
  std::vector<GroupMemberInfo> members;
};

struct UserListing {
  std::string name;
  std::vector<std::string> mechanisms;  // "SCRAM-SHA-256", "SCRAM-SHA-512"
  std::vector<std::int32_t> iterations;
};

struct AclBinding {
  std::string principal;             // "User:alice", "User:*"
  bool allow = true;                 // false: deny (deny wins)
  std::string operation;             // read, write, create, delete, describe, alter, all
  std::string resource_type;         // topic, group, cluster
  std::string pattern = "literal";   // literal ("*": every name) or prefixed
  std::string name;                  // the topic or group (ignored for cluster)
};

class QUORUMQ_API Admin {
 public:
  [[nodiscard]] static std::expected<std::unique_ptr<Admin>, Error> create(const AdminConfig& config);
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  [[nodiscard]] std::expected<void, Error> create_topic(const std::string& name, std::int32_t partitions,
                                                       std::int16_t replication_factor,
                                                       const std::map<std::string, std::string>& configs = {});
  [[nodiscard]] std::expected<void, Error> delete_topic(const std::string& name);
  // Changes a topic's own settings: `set` adds or replaces keys, `remove` returns keys to the
  // broker default. Keys: retention.ms, retention.bytes (>= 1, or -1: no limit),
  // max.message.bytes (128 .. 1073741824); the broker refuses anything else (invalid_config).
  [[nodiscard]] std::expected<void, Error> alter_topic_config(const std::string& name,
                                                             const std::map<std::string, std::string>& set,
                                                             const std::vector<std::string>& remove = {});
  [[nodiscard]] std::expected<std::vector<TopicListing>, Error> list_topics(bool include_internal = false);
  [[nodiscard]] std::expected<TopicDescription, Error> describe_topic(const std::string& name);
  [[nodiscard]] std::expected<ClusterInfo, Error> cluster();

  // ListOffsets for each partition (timestamp_ms only with OffsetSpec::timestamp).
  [[nodiscard]] std::expected<std::vector<TopicPartitionOffset>, Error> list_offsets(
      const std::vector<TopicPartition>& partitions, OffsetSpec spec, std::int64_t timestamp_ms = -1);
  // Every partition the group has a committed offset for.
  [[nodiscard]] std::expected<std::vector<GroupPartitionOffset>, Error> group_offsets(const std::string& group_id);
  // Commits these offsets (each the next offset to read) for the group from outside it, like
  // `kafka-consumer-groups --reset-offsets`. Refused (group_not_empty) while the group has
  // members: stop its consumers first.
  [[nodiscard]] std::expected<void, Error> alter_group_offsets(const std::string& group_id,
                                                              const std::vector<TopicPartitionOffset>& offsets);
  // Forgets the group's committed offsets of these partitions (empty: every partition it has
  // committed). Refused (group_not_empty) while the group has members.
  [[nodiscard]] std::expected<void, Error> delete_group_offsets(const std::string& group_id,
                                                               const std::vector<TopicPartition>& partitions = {});
  // Members, generation and assignment of a consumer group. group_id_not_found: the group has
  // no members (the cluster forgets a group when its last member leaves; its committed offsets
  // stay: group_offsets). list_groups: every group with members.
  [[nodiscard]] std::expected<GroupInfo, Error> describe_group(const std::string& group_id);
  [[nodiscard]] std::expected<std::vector<GroupInfo>, Error> list_groups();

  // SCRAM users (brokers with --sasl; needs the cluster alter permission). The credential is
  // derived here (salted, `iterations` rounds, both SHA-256 and SHA-512): the password never
  // leaves this process. create_only: fail if the user exists; update_only: fail if it does not.
  [[nodiscard]] std::expected<void, Error> upsert_user(const std::string& name, const std::string& password,
                                                      bool create_only, bool update_only, int iterations = 8192);
  [[nodiscard]] std::expected<void, Error> delete_user(const std::string& name);
  [[nodiscard]] std::expected<std::vector<UserListing>, Error> list_users();
  // ACLs (docs/security.md). delete_acls/list_acls take a filter: empty fields match anything,
  // and with any_permission both allows and denies match.
  [[nodiscard]] std::expected<void, Error> create_acls(const std::vector<AclBinding>& acls);
  [[nodiscard]] std::expected<std::vector<AclBinding>, Error> delete_acls(const AclBinding& filter, bool any_permission);
  [[nodiscard]] std::expected<std::vector<AclBinding>, Error> list_acls(const AclBinding& filter, bool any_permission);

  void close();

  class Impl;

 private:
  explicit Admin(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace quorumq
