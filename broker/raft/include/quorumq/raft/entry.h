// A Raft log entry (Raft paper §5.3): its position, the term of the leader that created it, and
// an opaque payload. For a partition the payload of a normal entry is one record batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "quorumq/protocol/types.h"

namespace quorumq::raft {

enum class EntryType : std::uint8_t {
  normal = 0,  // a client payload (a record batch)
  noop = 1,    // appended by a new leader at the start of its term (thesis §6.4)
  config = 2,  // membership change; membership is static for now, the type is reserved
};

// Refcounted immutable bytes: one batch is shared by the unstable log, every follower's
// AppendEntries and the committed-entries list instead of being copied per follower.
using Payload = std::shared_ptr<const std::vector<std::uint8_t>>;

inline Payload make_payload(std::vector<std::uint8_t> bytes) {
  return std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
}

struct Entry {
  // Bytes an entry costs besides its payload, for max-bytes limits: keeps empty entries from
  // being free so that a batch limit always bounds the entry count too.
  static constexpr std::size_t overhead_bytes = 24;

  log_index index;
  term_t term;
  EntryType type = EntryType::normal;
  Payload payload;

  std::size_t size_bytes() const { return overhead_bytes + (payload ? payload->size() : 0); }
};

}  // namespace quorumq::raft
