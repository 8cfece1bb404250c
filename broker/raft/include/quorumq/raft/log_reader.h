// The read-only view of the durable log that the driver implements (like etcd's raft.Storage).
// The core keeps not-yet-durable ("unstable") entries itself and reads everything else here.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "quorumq/raft/entry.h"

namespace quorumq::raft {

// Contract for implementations:
// - Contains exactly what the driver persisted through the Ready/advance protocol, plus the
//   driver's own retention (removing a prefix of applied entries).
// - The log is contiguous: indexes [first_index(), last_index()]; empty when
//   last_index() == first_index() - 1. A fresh log has first_index() == 1 and term(0) == 0.
// - term(first_index() - 1) is known (the term of the last entry removed by retention or by a
//   reset), so the consistency check works on an empty log too.
// Threading: called only from the thread/strand driving the Raft object, and only inside its
// calls; the driver must not mutate it concurrently with those calls.
class LogReader {
 public:
  virtual ~LogReader() = default;

  virtual log_index first_index() const = 0;
  virtual log_index last_index() const = 0;
  // Term of entry i for i in [first_index() - 1, last_index()], nullopt otherwise.
  virtual std::optional<term_t> term(log_index i) const = 0;
  // Entries [lo, hi): at least one when lo < hi, then more while the total stays within
  // max_bytes. Precondition: first_index() <= lo <= hi <= last_index() + 1.
  virtual std::vector<Entry> entries(log_index lo, log_index hi, std::size_t max_bytes) const = 0;
};

}  // namespace quorumq::raft
