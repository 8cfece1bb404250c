// The node's whole log as the core sees it: durable entries read through the driver's
// LogReader, plus "unstable" entries held in memory until the driver reports them persisted.
//
// Lifecycle: owned by a Raft object; the LogReader must outlive it. Single-threaded.
// Invariants:
//  - unstable_ is contiguous starting at offset_; when non-empty, offset_ <= storage.last + 1
//    (entries of storage at index >= offset_ are overridden and will be truncated by the driver).
//  - handed_out_ (last unstable index already given to the driver in a Ready) is in
//    [offset_ - 1, last unstable index].
//  - with a pending reset, nothing of storage is visible: the log is the reset point plus
//    unstable_, and offset_ == reset.first_index.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "quorumq/raft/log_reader.h"
#include "quorumq/raft/ready.h"

namespace quorumq::raft {

class RaftLog {
 public:
  explicit RaftLog(const LogReader& storage);

  log_index first_index() const;
  log_index last_index() const;
  std::optional<term_t> term(log_index i) const;
  term_t last_term() const;
  bool match_term(log_index i, term_t t) const;
  // Paper §5.4.1: is a candidate whose log ends at (last_index, last_term) at least as
  // up-to-date as ours?
  bool is_up_to_date(log_index last_index, term_t last_term) const;
  // Entries [lo, hi), at least one when lo < hi, within max_bytes otherwise.
  std::vector<Entry> slice(log_index lo, log_index hi, std::size_t max_bytes) const;
  // First index of `entries` whose term differs from ours or that we lack; 0 if all match.
  log_index find_conflict(const std::vector<Entry>& entries) const;
  // Largest index <= i whose term is <= t, or the smallest index whose term is unknown
  // (fast backtracking: every entry above it in a term > t cannot match).
  log_index find_conflict_by_term(log_index i, term_t t) const;

  // Appends entries, first removing any suffix from entries.front().index on (§5.3 step 3).
  void append(const std::vector<Entry>& entries);
  // Discards the whole log; it now starts at `first` with term(first - 1) == prev_term.
  void reset(log_index first, term_t prev_term);

  // --- the Ready protocol ---
  bool has_unhanded() const;
  // Entries not yet given to the driver, and the index the driver must truncate from first.
  std::vector<Entry> take_unhanded(std::optional<log_index>* truncate_from);
  std::optional<LogReset> take_reset();
  // The driver persisted a reset (advance): storage now starts there.
  void reset_persisted(const LogReset& r);
  // The driver persisted entries up to (i, t). Returns false if (i, t) is no longer in the
  // unstable log (overridden meanwhile, or already stable).
  bool stable_to(log_index i, term_t t);
  // The highest index whose entry is durable and still part of our log.
  log_index stable_last_index() const;

  std::size_t unstable_count() const { return unstable_.size(); }
  log_index unstable_offset() const { return offset_; }
  const LogReader& storage() const { return storage_; }
  // Internal consistency; returns a description of the first violation, empty if none.
  std::string check() const;

 private:
  const LogReader& storage_;
  log_index offset_;
  std::vector<Entry> unstable_;
  log_index handed_out_;
  std::optional<LogReset> pending_reset_;
  bool reset_handed_out_ = false;
};

}  // namespace quorumq::raft
