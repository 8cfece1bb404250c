// Global safety checks for the simulator: facts about every log the simulation has seen,
// checked as they are observed (paper §5.4.3 figure 3 properties).
//  - Election safety: at most one leader per term.
//  - Log matching: two entries with the same index and term hold the same payload, and the
//    entries before them have the same term (by induction: identical prefixes).
//  - Leader completeness: a new leader's log holds every committed entry.
//  - State machine safety: an applied (committed) entry never changes; no node truncates or
//    resets away a committed entry.
// Single-threaded; owned by one Simulator run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "quorumq/raft/raft.h"

namespace quorumq::sim {

// A payload's identity: the simulator writes a unique id into each proposal (0 for no-ops).
std::uint64_t payload_key(const raft::Entry& e);

class Checker {
 public:
  // First failure wins; later ones are ignored so the report shows the root cause.
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  void fail(std::string what);

  // Entries seen in node `node`'s log or in a message it sent, with the term of the entry
  // before the first one (if known).
  void observe_entries(int node, const std::vector<raft::Entry>& entries,
                       std::optional<term_t> prev_term);
  void observe_leader(int node, term_t term, const raft::Raft& r);
  void observe_applied(int node, const raft::Entry& e);
  // An entry removed from a node's durable log by truncation or reset (not retention).
  void observe_removed(int node, const raft::Entry& e);

  bool is_committed(std::uint64_t key) const { return committed_keys_.count(key) != 0; }
  std::size_t committed_count() const { return committed_.size(); }

 private:
  struct Fact {
    std::uint64_t key;
    std::optional<std::uint64_t> prev_term;
  };
  struct Committed {
    std::uint64_t term;
    std::uint64_t key;
  };
  void check_fact(int node, std::uint64_t index, std::uint64_t term, std::uint64_t key,
                  std::optional<std::uint64_t> prev_term);

  std::string failure_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, Fact> facts_;  // (index, term) -> fact
  std::map<std::uint64_t, Committed> committed_;                    // index -> entry
  std::unordered_map<std::uint64_t, std::uint64_t> committed_keys_;  // payload key -> index
  std::map<std::uint64_t, int> leader_of_term_;
};

}  // namespace quorumq::sim
