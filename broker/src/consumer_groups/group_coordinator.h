// GroupCoordinator: consumer-group membership, run by the controller's leader (so it moves with
// that leadership after a failover; the state it needs is in the controller log).
//
// Members send GroupHeartbeat requests (join, heartbeat + "what I own", leave). The coordinator
// keeps a `working` copy of each group's state ahead of the replicated one: joins, leaves,
// expiries, releases and grants change it, and it is proposed (the whole group state, one
// controller entry, at most one proposal in flight per group). Answers are computed from the
// APPLIED state, so a member is only ever given a partition whose ownership is replicated, which
// is what partition leaders check commits against.
//
// Liveness is in memory only: last heartbeat per member. A new coordinator starts every member's
// session afresh. A member not heard from within its session timeout, or still holding
// partitions it was asked to release after its rebalance timeout, is removed (fenced).
//
// Long poll: a heartbeat whose answer would not change the member's assignment waits (up to
// max_wait_ms) until it would, so revocations and grants reach members at once.
//
// Threads: one mutex; proposals and replies happen outside it (the controller's group lock is
// taken by propose, and the controller's apply calls into the registry, which posts here).
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

class GroupCoordinator {
 public:
  using Clock = std::chrono::steady_clock;

  struct Heartbeat {
    std::string group;
    std::string member_id;
    std::int32_t generation = -1;
    std::string client_id;
    std::vector<std::string> topics;
    std::string assignor;
    std::int32_t session_timeout_ms = 10000;
    std::int32_t rebalance_timeout_ms = 30000;
    std::set<TopicPartitionKey> owned;
    bool leave = false;
    std::int32_t max_wait_ms = 0;
  };
  struct Answer {
    wire::ErrorCode error = wire::ErrorCode::none;
    std::string message;
    std::string member_id;
    std::int32_t generation = -1;
    std::set<TopicPartitionKey> assignment;
    std::optional<node_id> coordinator;  // with not_coordinator
    std::int32_t heartbeat_interval_ms = 0;
  };
  using Reply = std::function<void(Answer)>;

  struct Limits {
    std::size_t max_groups;         // groups with members, cluster-wide (--max-groups)
    std::size_t max_group_members;  // members of one group (--max-group-members)
    // Replicated state: one group's (each change is one controller entry) and all groups'
    // together (every checkpoint holds them all, within Controller::kCheckpointBytesMax).
    std::size_t max_group_state_bytes = 1u << 20;
    std::size_t max_groups_state_bytes = 16u << 20;
  };
  GroupCoordinator(Controller& controller, GroupRegistry& registry, TopicManager& topics, Executor& exec,
                   Limits limits);
  ~GroupCoordinator();

  void start();  // starts the 100 ms housekeeping tick
  void stop();   // answers parked heartbeats, stops the tick

  // Any thread. `reply` runs exactly once (maybe later, from another thread).
  void heartbeat(Heartbeat hb, Reply reply);

  // Describe: target and revocations as the coordinator (or, elsewhere, the applied state) sees them.
  static Assignment target_of(const GroupState& s, const TopicManager& topics);
  // Partition counts of the existing topics the members of `s` subscribe to.
  static PartitionCounts subscribed_counts(const GroupState& s, const TopicManager& topics);

 private:
  struct Parked {
    std::string member;
    std::set<TopicPartitionKey> owned;
    Reply reply;
    std::shared_ptr<TimerHandle> timer;
  };
  struct Group {
    GroupState applied;
    GroupState working;
    Assignment target;
    PartitionCounts counts;
    bool changed = false;
    bool in_flight = false;
    std::map<std::string, Clock::time_point> last_seen;
    std::map<std::string, Clock::time_point> revoking_since;
    std::map<std::uint64_t, Parked> parked;
    // Members that left: answered once the state without them is applied (then a reset or
    // delete of the group's offsets right after the last member left is not refused).
    struct Leaving {
      std::string member;
      Reply reply;
      Clock::time_point since;
    };
    std::vector<Leaving> leaving;
    std::size_t state_bytes = 0;  // encoded size of `working` when last checked
  };
  struct Proposal {
    std::string group;
    std::vector<std::uint8_t> bytes;
  };
  struct Out {  // collected under the lock, done after it
    std::vector<std::pair<Reply, Answer>> replies;
    std::vector<Proposal> proposals;
  };

  bool active_locked();
  Group& group_locked(const std::string& name);
  void reconcile_locked(Group& g);
  void maybe_propose_locked(const std::string& name, Group& g, Out& out);
  Answer answer_locked(const Group& g, const std::string& member) const;
  // The answer for a parked heartbeat of `member`: its view, or unknown_member_id if it was removed.
  Answer parked_answer_locked(const Group& g, const std::string& member) const;
  void wake_locked(Group& g, Out& out, bool all);
  // Why the working state of `g` may not grow this way (nullopt: within the limits).
  std::optional<std::string> state_over_limits_locked(const std::string& name, Group& g);
  // Answers the leaves the applied state reflects (or all, or those waiting since `before`).
  void answer_leaves_locked(Group& g, Out& out, bool all, Clock::time_point before = {});
  void flush(Out& out);
  void on_applied(const std::string& name);
  void on_proposed(const std::string& name, bool ok);
  void tick();
  void schedule_tick();

  Controller& controller_;
  GroupRegistry& registry_;
  TopicManager& topics_;
  Executor& exec_;
  const Limits limits_;

  std::mutex mu_;
  bool stopped_ = false;
  std::uint64_t term_ = 0;  // controller term these groups were loaded in (0: not coordinating)
  std::map<std::string, Group> groups_;
  std::uint64_t next_park_ = 1;
  std::uint64_t next_member_ = 1;
  std::shared_ptr<TimerHandle> tick_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace quorumq::broker
