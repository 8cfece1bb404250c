// An in-memory LogReader with the mutations a driver performs on a Ready. Used by the unit tests
// and the simulator, where it plays the node's disk: it holds only what was persisted.
// Lifecycle: create, then apply_ready()/compact() as the driver; it must outlive the Raft object
// that reads it. Single-threaded. Invariant: entries_ are contiguous from first_index_.
#pragma once

#include <deque>

#include "quorumq/raft/log_reader.h"
#include "quorumq/raft/ready.h"

namespace quorumq::raft {

class MemoryLog final : public LogReader {
 public:
  MemoryLog() = default;

  log_index first_index() const override { return first_index_; }
  log_index last_index() const override {
    return log_index(first_index_.value + entries_.size() - 1);
  }
  std::optional<term_t> term(log_index i) const override;
  std::vector<Entry> entries(log_index lo, log_index hi, std::size_t max_bytes) const override;

  const Entry& at(log_index i) const;

  // The persistence half of the Ready contract: reset, then truncate, then append.
  void apply_ready(const Ready& rd);
  void reset(log_index first, term_t prev_term);
  void truncate_from(log_index i);  // removes every entry with index >= i
  void append(const std::vector<Entry>& entries);  // entries.front().index == last_index() + 1
  // Retention: removes entries <= to, remembering term(to) as the new prev term.
  void compact(log_index to);

 private:
  log_index first_index_{1};
  term_t prev_term_{0};  // term of entry first_index_ - 1
  std::deque<Entry> entries_;
};

}  // namespace quorumq::raft
