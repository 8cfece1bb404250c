// Offset stamping: every batch that leaves this node or reaches its disk carries its base
// offset and term (stamp_batch); a leader's own no-op of its term is stamped on the way out.
#include <spdlog/spdlog.h>

#include "quorumq/protocol/record_batch.h"
#include "replicated_log.h"

namespace quorumq::broker {

using raft::Entry;
using raft::EntryType;
using wire::ErrorCode;

namespace {
std::int64_t end_of(const BatchView& v) { return v.base_offset() + v.offset_count(); }
}  // namespace

// Every batch that leaves this node or reaches its disk is stamped. Entries received from a
// leader and entries read from storage already are; the only unstamped entry that can exist is
// this leader's own no-op of its current term (made by the Raft core at election, §8), which
// takes no offsets and sits at the end offset the log had when this node became leader.
raft::Payload ReplicatedLog::stamped(const Entry& e) const {
  if (e.payload && !e.payload->empty()) return e.payload;
  // (An earlier term's own no-op still held in memory is placed by looking back in the log.)
  const std::int64_t base = e.term == raft_->term() ? noop_base_offset_ : end_offset_before(e.index);
  auto b = make_payload_batch(e.type == EntryType::config ? BatchType::config : BatchType::noop, {});
  stamp_batch(b, base, e.term.value);
  return raft::make_payload(std::move(b));
}

std::int64_t ReplicatedLog::end_offset_before(log_index i) const {
  const auto& rl = raft_->log();
  for (std::uint64_t j = i.value - 1; j >= rl.first_index().value && j > 0; --j) {
    auto es = rl.slice(log_index{j}, log_index{j + 1}, SIZE_MAX);
    if (!es.empty() && es.front().payload && !es.front().payload->empty()) return end_of(BatchView(*es.front().payload));
  }
  const auto st = log_->state();
  if (st.start_offset < offset_t{0}) {
    spdlog::error("group {}: offsets unknown after a log reset with no entries; assuming 0", opts_.name);
    return 0;
  }
  return st.start_offset.value;
}

}  // namespace quorumq::broker
