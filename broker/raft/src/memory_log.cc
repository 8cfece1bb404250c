#include "quorumq/raft/memory_log.h"

#include "quorumq/protocol/assert.h"

namespace quorumq::raft {

std::optional<term_t> MemoryLog::term(log_index i) const {
  if (i.value + 1 == first_index_.value) return prev_term_;
  if (i < first_index_ || i > last_index()) return std::nullopt;
  return entries_[i.value - first_index_.value].term;
}

const Entry& MemoryLog::at(log_index i) const {
  QQ_ASSERT(i >= first_index_ && i <= last_index());
  return entries_[i.value - first_index_.value];
}

std::vector<Entry> MemoryLog::entries(log_index lo, log_index hi, std::size_t max_bytes) const {
  QQ_ASSERT(first_index_ <= lo && lo <= hi && hi.value <= last_index().value + 1);
  std::vector<Entry> out;
  std::size_t bytes = 0;
  for (auto i = lo.value; i < hi.value; ++i) {
    const Entry& e = entries_[i - first_index_.value];
    if (!out.empty() && bytes + e.size_bytes() > max_bytes) break;
    bytes += e.size_bytes();
    out.push_back(e);
  }
  return out;
}

void MemoryLog::apply_ready(const Ready& rd) {
  if (rd.reset_log) reset(rd.reset_log->first_index, rd.reset_log->prev_term);
  if (rd.truncate_from) truncate_from(*rd.truncate_from);
  if (!rd.entries.empty()) append(rd.entries);
}

void MemoryLog::reset(log_index first, term_t prev_term) {
  QQ_ASSERT(first.value >= 1);
  entries_.clear();
  first_index_ = first;
  prev_term_ = prev_term;
}

void MemoryLog::truncate_from(log_index i) {
  QQ_ASSERT(i >= first_index_);
  while (!entries_.empty() && last_index() >= i) entries_.pop_back();
}

void MemoryLog::append(const std::vector<Entry>& entries) {
  for (const Entry& e : entries) {
    QQ_ASSERT_MSG(e.index.value == last_index().value + 1, "MemoryLog append must be contiguous");
    entries_.push_back(e);
  }
}

void MemoryLog::compact(log_index to) {
  QQ_ASSERT(to <= last_index());
  while (first_index_ <= to) {
    prev_term_ = entries_.front().term;
    entries_.pop_front();
    first_index_ = first_index_.next();
  }
}

}  // namespace quorumq::raft
