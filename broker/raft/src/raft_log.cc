#include "quorumq/raft/raft_log.h"

#include <string>

#include "quorumq/protocol/assert.h"

namespace quorumq::raft {

RaftLog::RaftLog(const LogReader& storage)
    : storage_(storage),
      offset_(storage.last_index().next()),
      handed_out_(storage.last_index()) {
  QQ_ASSERT(storage.first_index().value >= 1);
  QQ_ASSERT(storage.term(log_index(storage.first_index().value - 1)).has_value());
}

log_index RaftLog::first_index() const {
  return pending_reset_ ? pending_reset_->first_index : storage_.first_index();
}

log_index RaftLog::last_index() const {
  if (!unstable_.empty()) return unstable_.back().index;
  if (pending_reset_) return log_index(pending_reset_->first_index.value - 1);
  return storage_.last_index();
}

std::optional<term_t> RaftLog::term(log_index i) const {
  if (!unstable_.empty() && i >= offset_) {
    if (i > unstable_.back().index) return std::nullopt;
    return unstable_[i.value - offset_.value].term;
  }
  if (pending_reset_) {
    if (i.value + 1 == pending_reset_->first_index.value) return pending_reset_->prev_term;
    return std::nullopt;
  }
  if (i.value + 1 < storage_.first_index().value || i > storage_.last_index()) return std::nullopt;
  return storage_.term(i);
}

term_t RaftLog::last_term() const {
  auto t = term(last_index());
  QQ_ASSERT(t.has_value());
  return *t;
}

bool RaftLog::match_term(log_index i, term_t t) const {
  auto mine = term(i);
  return mine && *mine == t;
}

bool RaftLog::is_up_to_date(log_index last, term_t last_t) const {
  const term_t my_t = last_term();
  return last_t > my_t || (last_t == my_t && last >= last_index());
}

std::vector<Entry> RaftLog::slice(log_index lo, log_index hi, std::size_t max_bytes) const {
  QQ_ASSERT(lo >= first_index() && lo <= hi && hi.value <= last_index().value + 1);
  std::vector<Entry> out;
  if (lo == hi) return out;
  std::size_t bytes = 0;
  // The part below the unstable log comes from storage.
  const log_index unstable_lo = unstable_.empty() ? last_index().next() : offset_;
  if (lo < unstable_lo) {
    const log_index storage_hi = std::min(hi, unstable_lo);
    out = storage_.entries(lo, storage_hi, max_bytes);
    QQ_ASSERT(!out.empty());
    for (const Entry& e : out) bytes += e.size_bytes();
    if (out.back().index.value + 1 < storage_hi.value) return out;  // hit max_bytes
  }
  for (auto i = std::max(lo, unstable_lo).value; i < hi.value; ++i) {
    const Entry& e = unstable_[i - offset_.value];
    if (!out.empty() && bytes + e.size_bytes() > max_bytes) break;
    bytes += e.size_bytes();
    out.push_back(e);
  }
  return out;
}

log_index RaftLog::find_conflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!match_term(e.index, e.term)) return e.index;
  }
  return log_index(0);
}

log_index RaftLog::find_conflict_by_term(log_index i, term_t t) const {
  while (i.value > 0) {
    auto ti = term(i);
    if (!ti || *ti <= t) break;
    i = log_index(i.value - 1);
  }
  return i;
}

void RaftLog::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const log_index first = entries.front().index;
  QQ_ASSERT_MSG(first >= first_index() && first.value <= last_index().value + 1,
                "append must continue or overwrite the log");
  if (!unstable_.empty() && first >= offset_) {
    unstable_.resize(first.value - offset_.value);  // drop the conflicting unstable suffix
  } else {
    // Everything from `first` on, durable or not, is replaced; the driver truncates storage.
    unstable_.clear();
    offset_ = first;
  }
  for (const Entry& e : entries) {
    QQ_ASSERT(e.index.value == offset_.value + unstable_.size());
    unstable_.push_back(e);
  }
  if (handed_out_.value >= first.value) handed_out_ = log_index(first.value - 1);
}

void RaftLog::reset(log_index first, term_t prev_term) {
  QQ_ASSERT(first.value >= 1);
  unstable_.clear();
  offset_ = first;
  handed_out_ = log_index(first.value - 1);
  pending_reset_ = LogReset{first, prev_term};
  reset_handed_out_ = false;
}

bool RaftLog::has_unhanded() const {
  return (pending_reset_ && !reset_handed_out_) ||
         (!unstable_.empty() && handed_out_ < unstable_.back().index);
}

std::vector<Entry> RaftLog::take_unhanded(std::optional<log_index>* truncate_from) {
  std::vector<Entry> out;
  *truncate_from = std::nullopt;
  if (unstable_.empty() || handed_out_ >= unstable_.back().index) return out;
  const log_index from = handed_out_.next();
  out.assign(unstable_.begin() + static_cast<std::ptrdiff_t>(from.value - offset_.value),
             unstable_.end());
  // Storage may still hold a divergent suffix at these indexes (paper §5.3: "if an existing
  // entry conflicts with a new one, delete the existing entry and all that follow it").
  if (!pending_reset_ && from <= storage_.last_index()) *truncate_from = from;
  handed_out_ = unstable_.back().index;
  return out;
}

std::optional<LogReset> RaftLog::take_reset() {
  if (!pending_reset_ || reset_handed_out_) return std::nullopt;
  reset_handed_out_ = true;
  return pending_reset_;
}

void RaftLog::reset_persisted(const LogReset& r) {
  if (pending_reset_ && *pending_reset_ == r) {
    pending_reset_.reset();
    reset_handed_out_ = false;
  }
}

bool RaftLog::stable_to(log_index i, term_t t) {
  if (unstable_.empty() || i < offset_ || i > unstable_.back().index) return false;
  if (unstable_[i.value - offset_.value].term != t) return false;
  if (pending_reset_) {
    // A reset not yet handed out: these entries belong to a Ready persisted before it, so
    // they were written after an older log start and must be handed out again.
    if (!reset_handed_out_) return false;
    // The driver persists the reset before the entries that follow it in the same Ready, so
    // durable entries imply a durable reset (on_persisted() may come before advance()).
    pending_reset_.reset();
    reset_handed_out_ = false;
  }
  unstable_.erase(unstable_.begin(), unstable_.begin() + static_cast<std::ptrdiff_t>(i.value - offset_.value + 1));
  offset_ = i.next();
  if (handed_out_ < i) handed_out_ = i;
  return true;
}

log_index RaftLog::stable_last_index() const {
  if (pending_reset_) return log_index(0);  // nothing of the new log is durable yet
  if (!unstable_.empty()) return log_index(offset_.value - 1);
  return storage_.last_index();
}

std::string RaftLog::check() const {
  if (!unstable_.empty()) {
    for (std::size_t k = 0; k < unstable_.size(); ++k) {
      if (unstable_[k].index.value != offset_.value + k) return "unstable log not contiguous";
      if (k > 0 && unstable_[k].term < unstable_[k - 1].term) return "unstable terms decrease";
    }
    if (!pending_reset_ && offset_.value > storage_.last_index().value + 1)
      return "gap between storage and unstable log";
    if (handed_out_.value + 1 < offset_.value || handed_out_ > unstable_.back().index)
      return "handed_out outside the unstable log";
    auto before = term(log_index(offset_.value - 1));
    if (before && *before > unstable_.front().term) return "term decreases into unstable log";
  }
  if (pending_reset_ && offset_ != pending_reset_->first_index) return "reset/offset mismatch";
  if (!term(log_index(first_index().value - 1))) return "term(first_index - 1) unknown";
  if (!term(last_index())) return "term(last_index) unknown";
  return {};
}

}  // namespace quorumq::raft
