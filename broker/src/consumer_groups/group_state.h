// Consumer groups: the replicated group state, the assignors and the applied-state registry.
//
// A group's state (members, generation, which member owns which partition) is replicated
// through the controller log: the coordinator (the controller's leader, group_coordinator.h)
// proposes the whole state of a group as one entry whenever it changes, and every broker applies
// it to its GroupRegistry. Partition leaders check offset commits against that registry, so a
// member that lost a partition (revoked, or expired after its session timeout) cannot commit it.
//
// Ownership moves cooperatively: the assignor computes a target (partition → member); a
// partition without an owner is granted to its target member; a partition whose owner is not its
// target stays owned until the owner reports it released (or the owner is removed). So a
// partition is never owned by two members, and partitions that keep their owner never stop.
// `PartitionOwner::since` is the generation whose state granted it: a heartbeat that acted on an
// older generation cannot release it by accident (it never had it).
//
// Everything here is pure data and functions, except GroupRegistry (a mutex-guarded map).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "controller.h"
#include "quorumq/protocol/errors.h"

namespace quorumq::broker {

using TopicPartitionKey = std::pair<std::string, std::int32_t>;

struct GroupMember {
  std::string id;
  std::string client_id;
  std::vector<std::string> topics;  // sorted, unique
  std::int32_t session_timeout_ms = 10000;
  std::int32_t rebalance_timeout_ms = 30000;
  bool operator==(const GroupMember&) const = default;
};

struct PartitionOwner {
  std::string member;
  std::int32_t since = 0;  // generation that granted it; 0 while not yet proposed
  bool operator==(const PartitionOwner&) const = default;
};

struct GroupState {
  std::string name;
  std::int32_t generation = 0;  // +1 per replicated change
  std::string assignor;         // fixed by the first member; "" while the group is empty
  std::map<std::string, GroupMember> members;
  std::map<TopicPartitionKey, PartitionOwner> owners;
  // "" for a native group; a Kafka-protocol group's protocol type (kafka_groups.h), which the
  // native coordinator leaves alone (and the other way round).
  std::string protocol_type;
  bool is_kafka() const { return !protocol_type.empty(); }
  bool operator==(const GroupState&) const = default;
};

std::vector<std::uint8_t> encode_group_state(const GroupState& s);
// nullopt: not a group state this build can read (never trusts lengths inside the bytes).
std::optional<GroupState> decode_group_state(std::span<const std::uint8_t> bytes);

// topic → partition count, for the topics that exist.
using PartitionCounts = std::map<std::string, std::int32_t>;
// partition → member id.
using Assignment = std::map<TopicPartitionKey, std::string>;

inline constexpr std::string_view kAssignors[] = {"range", "roundrobin", "sticky"};
bool valid_assignor(std::string_view name);
// A group id a client may use: 1..255 bytes, printable, no spaces.
bool valid_group_id(std::string_view id);

// Every partition of every existing subscribed topic to exactly one member subscribed to it.
//  range:      per topic, contiguous ranges over the subscribed members (sorted by id)
//  roundrobin: all partitions (sorted) dealt to the members in turn
//  sticky:     current owners keep what they own up to a balanced share; only the rest moves
Assignment compute_target(const GroupState& s, const PartitionCounts& counts);

// Grants every partition in `target` that has no owner (since = 0, stamped when proposed) and
// drops owners of partitions that no longer exist. Returns whether `s` changed.
bool grant_free_partitions(GroupState& s, const Assignment& target, const PartitionCounts& counts);

// Removes a member and everything it owns. Returns whether it was there.
bool remove_member(GroupState& s, const std::string& member);

// What member `id` may consume now: granted in the replicated state `applied`, not released in
// `working` (the coordinator's newer state) and not being moved away by `target`.
std::set<TopicPartitionKey> member_view(const GroupState& applied, const GroupState& working, const Assignment& target,
                                        const std::string& id);

// Partitions `id` owns (in `s`) that `target` gives to someone else.
std::set<TopicPartitionKey> revoking(const GroupState& s, const Assignment& target, const std::string& id);

// The applied group states of this broker (from the controller log, where it is the
// controller's extension: "group" commands and its part of each checkpoint).
class GroupRegistry final : public ControllerExtension {
 public:
  void apply(GroupState s);
  // ControllerExtension
  std::string_view command() const override { return "group"; }
  bool owns(state::Body type) const override { return type == state::Body::GroupState; }
  void apply_command(std::span<const std::uint8_t> body, log_index index) override;
  std::vector<std::vector<std::uint8_t>> checkpoint_items() const override;
  bool restore_checkpoint(const std::vector<std::span<const std::uint8_t>>& items) override;
  std::optional<GroupState> get(const std::string& name) const;
  std::size_t size() const;  // groups with members or owners (empty ones are forgotten)
  std::vector<GroupState> all() const;
  // Called (under no lock of ours) after each apply, with the group's name.
  void set_listener(std::function<void(const std::string&)> fn);

  // Whether an offset commit may proceed. generation < 0: a simple commit (assign()), refused
  // while the group has members. Otherwise `member` must own topic/partition in the applied state.
  std::optional<Status> check_commit(const std::string& group, const std::string& member, std::int32_t generation,
                                      const std::string& topic, std::int32_t partition) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, GroupState> groups_;
  std::function<void(const std::string&)> listener_;
};

}  // namespace quorumq::broker
