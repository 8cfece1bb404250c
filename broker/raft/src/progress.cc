#include "quorumq/raft/progress.h"

#include <algorithm>

#include "quorumq/protocol/assert.h"

namespace quorumq::raft {

void Inflights::add(log_index last) {
  QQ_ASSERT(!full());
  QQ_ASSERT(items_.empty() || items_.back() < last);
  items_.push_back(last);
}

void Inflights::free_le(log_index index) {
  while (!items_.empty() && items_.front() <= index) items_.pop_front();
}

void Inflights::free_first_one() {
  if (!items_.empty()) items_.pop_front();
}

void Progress::become_probe() {
  state = ProgressState::probe;
  probe_sent = false;
  inflights.reset();
  next = match.next();
}

void Progress::become_replicate() {
  state = ProgressState::replicate;
  probe_sent = false;
  inflights.reset();
  next = match.next();
}

bool Progress::is_paused() const {
  return state == ProgressState::probe ? probe_sent : inflights.full();
}

bool Progress::maybe_update(log_index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n.next());
  return updated;
}

bool Progress::maybe_decr_to(log_index rejected, log_index match_hint) {
  if (state == ProgressState::replicate) {
    // A reject at or below match is from an older message: the follower matched since.
    if (rejected <= match) return false;
    next = match.next();
    return true;
  }
  // In probe state only the reply to the latest probe counts.
  if (next.value - 1 != rejected.value) return false;
  next = log_index(std::max(std::min(rejected.value, match_hint.value + 1), match.value + 1));
  probe_sent = false;
  return true;
}

void Progress::sent_entries(log_index last, bool non_empty) {
  if (state == ProgressState::replicate) {
    if (non_empty) {
      next = last.next();
      inflights.add(last);
    }
  } else {
    probe_sent = true;
  }
}

void Progress::forget_match(log_index next_guess) {
  match = log_index(0);
  become_probe();
  next = log_index(std::max<std::uint64_t>(next_guess.value, 1));
}

void Progress::sent_install(log_index first) {
  state = ProgressState::probe;
  inflights.reset();
  next = first;
  probe_sent = true;
}

}  // namespace quorumq::raft
