// The output of the Raft core: what the driver must persist, send and apply.
//
// Contract (the driver, for each Ready, in this order — etcd raft's doc.go order):
//  1. Send `messages_early` at any time (even before persisting): only a leader's replication
//     traffic is put here, which does not depend on this node's durability (thesis §10.2.1).
//  2. Persist, atomically if possible (else hard state first): `hard_state` if set; then, if
//     `reset_log` is set, drop the whole log and make it start at reset_log->first_index with
//     term(first_index - 1) == reset_log->prev_term; then delete stored entries with
//     index >= `truncate_from` if set; then append `entries` (contiguous, in order).
//  3. Send `messages` (votes and acknowledgements: they promise durable state).
//  4. Apply `committed_entries` in order (a reset_log means entries before its first_index are
//     not applied here: the state machine position jumps to reset_log->first_index - 1).
//  5. Call Raft::advance(ready). Only then may Raft::ready() be called again.
#pragma once

#include <optional>
#include <vector>

#include "quorumq/raft/messages.h"

namespace quorumq::raft {

// State that must survive a restart (paper figure 2 "persistent state", plus commit).
struct HardState {
  term_t term;
  std::optional<node_id> vote;
  log_index commit;
  bool operator==(const HardState&) const = default;
};

enum class Role : std::uint8_t { follower, pre_candidate, candidate, leader };
const char* to_string(Role r);

// Volatile state the driver may want to react to (leadership changes); never persisted.
struct SoftState {
  Role role = Role::follower;
  std::optional<node_id> leader;
  bool operator==(const SoftState&) const = default;
};

// "Your log now starts at first_index; entry first_index - 1 had term prev_term". Sent to a
// follower whose missing entries the leader already removed (retention). A message log has no
// other state machine state, so this is the whole snapshot.
struct LogReset {
  log_index first_index;
  term_t prev_term;
  bool operator==(const LogReset&) const = default;
};

struct Ready {
  std::optional<SoftState> soft_state;  // set when it changed since the previous Ready
  std::optional<HardState> hard_state;  // set when it changed: persist
  std::optional<LogReset> reset_log;    // persist before truncate_from/entries
  std::optional<log_index> truncate_from;  // delete stored entries >= this, then append
  std::vector<Entry> entries;              // persist (append)
  std::vector<Message> messages_early;     // may be sent before persisting
  std::vector<Message> messages;           // send only after persisting
  std::vector<Entry> committed_entries;    // apply after persisting
  log_index commit;                        // the commit index (high watermark) at Ready time
};

}  // namespace quorumq::raft
