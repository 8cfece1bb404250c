// KafkaGroupCoordinator: Kafka's classic consumer-group protocol (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup) for clients on the Kafka listener (issue 17), run like the native
// coordinator by the controller's leader, on the same replicated group state.
//
// The classic protocol, as a Kafka broker runs it: members join (a rebalance gathers every
// member's JoinGroup, up to the rebalance timeout); the coordinator picks a protocol (assignor)
// all members support, bumps the generation and makes one member the leader; the leader assigns
// partitions on its side (range, roundrobin, cooperative-sticky: whatever the clients agreed)
// and sends the assignment in its SyncGroup; every member gets its part from SyncGroup.
// Heartbeats say REBALANCE_IN_PROGRESS when members must rejoin. States: Empty,
// PreparingRebalance, CompletingRebalance, Stable.
//
// What quorumq adds: the leader's assignment becomes the group's replicated ownership
// (GroupState.owners, protocol_type "consumer") before any SyncGroup is answered, and a member
// that leaves or misses its session timeout loses its partitions in the replicated state at
// once. Partition leaders check offset commits against that state (GroupRegistry::check_commit),
// exactly as for native groups: a fenced member cannot commit, whatever it sends.
//
// A group is either Kafka or native: joining a group that has members of the other kind is
// refused (INCONSISTENT_GROUP_PROTOCOL here, invalid_config on the native side). Membership,
// assignments' bytes and liveness are in memory: a new coordinator (after a controller failover)
// reloads members, generation and ownership from the registry and treats the group as Stable;
// members that then heartbeat carry on, and the next rebalance collects fresh metadata.
//
// Error codes are Kafka's (int16). Threads: one mutex; replies and proposals run outside it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controller.h"
#include "executor.h"
#include "group_state.h"
#include "topics.h"

namespace quorumq::broker {

namespace kafka_error {
inline constexpr std::int16_t none = 0;
inline constexpr std::int16_t unknown_server_error = -1;
inline constexpr std::int16_t coordinator_load_in_progress = 14;
inline constexpr std::int16_t coordinator_not_available = 15;
inline constexpr std::int16_t not_coordinator = 16;
inline constexpr std::int16_t illegal_generation = 22;
inline constexpr std::int16_t inconsistent_group_protocol = 23;
inline constexpr std::int16_t invalid_group_id = 24;
inline constexpr std::int16_t unknown_member_id = 25;
inline constexpr std::int16_t invalid_session_timeout = 26;
inline constexpr std::int16_t rebalance_in_progress = 27;
inline constexpr std::int16_t non_empty_group = 68;
inline constexpr std::int16_t group_id_not_found = 69;
inline constexpr std::int16_t member_id_required = 79;
inline constexpr std::int16_t group_max_size_reached = 81;
}  // namespace kafka_error

class KafkaGroupCoordinator {
 public:
  using Clock = std::chrono::steady_clock;
  using Bytes = std::vector<std::uint8_t>;

  struct Protocol {
    std::string name;
    Bytes metadata;
  };
  struct Join {
    std::string group, member_id, client_id, client_host, protocol_type;
    std::int32_t session_timeout_ms = 10000, rebalance_timeout_ms = 30000;
    std::vector<Protocol> protocols;
    std::vector<std::string> topics;  // the subscription (from the metadata), for the replicated state
    bool require_known_member_id = false;  // JoinGroup v4+
  };
  struct JoinMember {
    std::string id;
    Bytes metadata;
  };
  struct JoinAnswer {
    std::int16_t error = kafka_error::none;
    std::int32_t generation = -1;
    std::string protocol, leader, member_id;
    std::vector<JoinMember> members;  // the leader's answer only
  };
  struct Sync {
    std::string group, member_id;
    std::int32_t generation = -1;
    std::map<std::string, Bytes> assignments;                         // the leader's
    std::map<std::string, std::set<TopicPartitionKey>> assigned;      // the same, decoded
  };
  struct SyncAnswer {
    std::int16_t error = kafka_error::none;
    Bytes assignment;
  };
  struct MemberInfo {
    std::string id, client_id, client_host;
    Bytes metadata, assignment;
  };
  struct GroupInfo {
    std::int16_t error = kafka_error::none;
    std::string name, state, protocol_type, protocol;
    std::vector<MemberInfo> members;
  };

  struct Limits {
    std::size_t max_groups;
    std::size_t max_group_members;
    std::size_t max_group_state_bytes = 1u << 20;
    std::size_t max_groups_state_bytes = 16u << 20;  // all Kafka groups' replicated state together
    std::size_t max_metadata_bytes = 256u << 20;     // all members' JoinGroup metadata held in memory
    std::chrono::milliseconds initial_rebalance_delay{300};
  };
  KafkaGroupCoordinator(Controller& controller, GroupRegistry& registry, Executor& exec, Limits limits);
  ~KafkaGroupCoordinator();
  void start();  // the 100 ms housekeeping tick
  void stop();   // answers what waits, stops the tick

  // Any thread; each callback runs exactly once, maybe later and on another thread.
  void join(Join j, std::function<void(JoinAnswer)> reply);
  void sync(Sync s, std::function<void(SyncAnswer)> reply);
  std::int16_t heartbeat(const std::string& group, const std::string& member, std::int32_t generation);
  // Per member: its error. `error` for the whole request (not coordinator, no such group).
  std::int16_t leave(const std::string& group, const std::vector<std::string>& members,
                     std::vector<std::int16_t>& per_member);
  // May this member commit offsets of this group now (Kafka's rules: a known member of the
  // current generation, not while its rebalance completes)? generation -1 with an empty member
  // id: a simple commit, allowed while the group has no members. The partition's leader then
  // checks ownership in the replicated state.
  std::int16_t check_commit(const std::string& group, const std::string& member, std::int32_t generation);
  // Whether this broker coordinates now (kafka_error::none) or why not.
  std::int16_t coordinating();
  GroupInfo describe(const std::string& group);
  // (name, protocol type) of every group, Kafka and native ("" protocol type shown as "quorumq").
  std::vector<std::pair<std::string, std::string>> list();

 private:
  enum class State { empty, preparing, completing, stable };
  struct Member {
    std::string id, client_id, client_host;
    std::int32_t session_timeout_ms = 10000, rebalance_timeout_ms = 30000;
    std::vector<Protocol> protocols;  // empty: reloaded after a failover, metadata unknown
    std::vector<std::string> topics;
    Bytes assignment;
    Clock::time_point last_seen;
    std::function<void(JoinAnswer)> join_reply;
    std::function<void(SyncAnswer)> sync_reply;
  };
  struct Group {
    State state = State::empty;
    std::int32_t generation = 0;
    std::string protocol_type, protocol, leader;
    std::map<std::string, Member> members;
    std::map<std::string, Clock::time_point> pending;  // ids handed out with MEMBER_ID_REQUIRED
    Clock::time_point rebalance_started, rebalance_deadline;
    bool assignments_known = true;  // false after a reload: a SyncGroup in Stable rebalances
    std::map<TopicPartitionKey, std::string> owners;
    // Replication: one proposal in flight; `dirty` re-proposes the current state after it.
    bool in_flight = false, dirty = false;
    std::uint64_t seq = 0;         // proposals made
    std::uint64_t sync_seq = 0;    // the proposal that carries the leader's assignment
    std::uint64_t committed = 0;   // highest proposal committed
    std::size_t state_bytes = 0;   // encoded replicated state when last checked
  };
  using Replies = std::vector<std::function<void()>>;

  std::int16_t active_locked();
  std::optional<std::string> over_limits_locked(const std::string& name, Group& g);
  void rebalance_locked(const std::string& name, Group& g, Replies& out, const char* why);
  void maybe_complete_join_locked(const std::string& name, Group& g, Replies& out, bool deadline_passed);
  void remove_member_locked(const std::string& name, Group& g, const std::string& id, Replies& out, const char* why);
  void propose_locked(const std::string& name, Group& g, Replies& out);
  void on_committed(const std::string& name, std::uint64_t seq, bool ok, std::uint64_t term);
  void fail_all_locked(Replies& out, std::int16_t code);
  GroupState replicated_locked(const std::string& name, const Group& g) const;
  void tick();
  void schedule_tick();
  static void run(Replies& out);

  Controller& controller_;
  GroupRegistry& registry_;
  Executor& exec_;
  const Limits limits_;
  std::mutex mu_;
  bool stopped_ = false;
  std::uint64_t term_ = 0;
  std::map<std::string, Group> groups_;
  std::size_t metadata_bytes_ = 0;  // JoinGroup metadata held by all members (Limits::max_metadata_bytes)
  std::shared_ptr<TimerHandle> tick_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace quorumq::broker
