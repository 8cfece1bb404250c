// The leader's view of one follower's replication (etcd's tracker.Progress).
//
// Lifecycle: created for every member when a node becomes leader (match 0, next = last + 1,
// probe state); dropped when it stops being leader. Single-threaded (the Raft object's caller).
// States:
//  - probe: the leader does not know where the follower's log matches. At most one
//    AppendEntries is outstanding (`probe_sent`); a reply or a heartbeat reply releases it.
//  - replicate: the follower matches up to `match`; AppendEntries are pipelined optimistically
//    (next advances on send), bounded by `inflights` (max messages in flight).
// Invariants: match < next; in replicate state every inflight index is in (match, next).
#pragma once

#include <cstddef>
#include <deque>

#include "quorumq/protocol/types.h"

namespace quorumq::raft {

enum class ProgressState : std::uint8_t { probe, replicate };

// The last index of each AppendEntries sent and not yet acknowledged, oldest first.
class Inflights {
 public:
  explicit Inflights(std::size_t capacity) : capacity_(capacity) {}
  void add(log_index last);
  void free_le(log_index index);  // an ack for `index` frees every message ending at or before it
  void free_first_one();
  bool full() const { return items_.size() >= capacity_; }
  std::size_t count() const { return items_.size(); }
  const std::deque<log_index>& items() const { return items_; }
  void reset() { items_.clear(); }

 private:
  std::size_t capacity_;
  std::deque<log_index> items_;
};

struct Progress {
  Progress(log_index next_index, std::size_t max_inflight, bool learner)
      : next(next_index), inflights(max_inflight), is_learner(learner) {}

  log_index match{0};
  log_index next{1};
  ProgressState state = ProgressState::probe;
  bool probe_sent = false;  // probe state: one message outstanding, wait for a reply
  Inflights inflights;
  bool recent_active = false;  // heard from within the last election timeout (check-quorum)
  bool is_learner = false;

  void become_probe();
  void become_replicate();
  bool is_paused() const;
  // A success reply for index n. Returns true if match advanced.
  bool maybe_update(log_index n);
  // A reject of prevLogIndex `rejected` with the follower's hint (already refined by the
  // leader's find_conflict_by_term). Returns false if the reject is stale.
  bool maybe_decr_to(log_index rejected, log_index match_hint);
  // An AppendEntries ending at `last` (entries non-empty) or a probe/heartbeat-like empty one.
  void sent_entries(log_index last, bool non_empty);
  // The follower lost entries it had acknowledged: match is no longer known. Probe again
  // from `next_guess` (at least 1), backtracking with the follower's hints.
  void forget_match(log_index next_guess);
  // An install_snapshot making the follower's log start at `first`: treated as a probe whose
  // success reply is index first - 1.
  void sent_install(log_index first);
};

}  // namespace quorumq::raft
