// Log replication (paper §5.3), commitment (§5.4.2), pipelining and flow control per follower,
// install-from-first-index for followers behind the leader's retention, and the replication
// half of leadership transfer (thesis §3.10).
#include <algorithm>

#include "quorumq/protocol/assert.h"
#include "quorumq/raft/quorum.h"
#include "quorumq/raft/raft.h"

namespace quorumq::raft {

void Raft::append_entry(EntryType type, Payload payload) {
  QQ_ASSERT(role_ == Role::leader);
  log_.append({Entry{log_.last_index().next(), term_, type, std::move(payload)}});
  // The leader counts itself only once the entry is durable (thesis §10.2.1): see advance().
}

void Raft::update_self_match() {
  auto it = progress_.find(cfg_.id);
  if (it == progress_.end()) return;  // a learner leading is impossible; kept defensive
  Progress& self = it->second;
  const log_index durable = log_.stable_last_index();
  if (durable > self.match) self.match = durable;
  self.next = std::max(self.next, log_.last_index().next());
}

bool Raft::maybe_commit() {
  std::vector<log_index> matches;
  matches.reserve(cfg_.voters.size());
  for (node_id v : cfg_.voters) matches.push_back(progress_.at(v).match);
  const log_index candidate = majority_index(std::move(matches));
  if (candidate <= commit_) return false;
  // Paper §5.4.2 (figure 8): never commit an older term's entry by counting replicas; it is
  // committed indirectly once an entry of the current term above it is.
  if (log_.term(candidate) != term_) return false;
  commit_ = candidate;
  return true;
}

void Raft::commit_to(log_index c) {
  if (c <= commit_) return;
  QQ_ASSERT_MSG(c <= log_.last_index(), "commit beyond the last index");
  commit_ = c;
}

bool Raft::quorum_active() const {
  std::size_t active = 0;
  for (node_id v : cfg_.voters) {
    if (v == cfg_.id || progress_.at(v).recent_active) ++active;
  }
  return active >= quorum_size(cfg_.voters.size());
}

bool Raft::send_append(node_id to, bool send_if_empty) {
  Progress& pr = progress_.at(to);
  if (pr.is_paused()) return false;
  const log_index prev = log_index(pr.next.value - 1);
  const auto prev_term = log_.term(prev);
  if (!prev_term || pr.next < log_.first_index()) {
    // The entries this follower needs were removed by retention: its log restarts at our
    // first index. For a message log that is all the "snapshot" there is.
    const log_index first = log_.first_index();
    const auto before = log_.term(log_index(first.value - 1));
    QQ_ASSERT(before.has_value());
    send(Message{.type = MessageType::install_snapshot, .to = to, .term = term_,
                 .index = log_index(first.value - 1), .log_term = *before, .commit = commit_});
    pr.sent_install(first);
    return true;
  }
  std::vector<Entry> entries;
  if (pr.next <= log_.last_index()) {
    entries = log_.slice(pr.next, log_.last_index().next(), cfg_.max_msg_bytes);
  }
  if (entries.empty() && !send_if_empty) return false;
  const log_index last = entries.empty() ? prev : entries.back().index;
  const bool non_empty = !entries.empty();
  send(Message{.type = MessageType::append, .to = to, .term = term_, .index = prev,
               .log_term = *prev_term, .entries = std::move(entries), .commit = commit_});
  pr.sent_entries(last, non_empty);
  return true;
}

void Raft::bcast_append() {
  for (node_id n : members_) {
    if (n != cfg_.id) send_append(n);
  }
}

void Raft::bcast_heartbeat() {
  for (node_id n : members_) {
    if (n == cfg_.id) continue;
    // Only commit what the follower is known to hold: it may lack (or hold a divergent
    // version of) later entries. The (index, term) pair lets the follower verify that claim
    // (log matching, §5.3) instead of trusting it: a follower whose disk was wiped, and that
    // then took entries from a stale leader, must not commit those.
    const log_index c = std::min(progress_.at(n).match, commit_);
    const auto t = log_.term(c);  // unknown if retention removed it: then send no commit
    send(Message{.type = MessageType::heartbeat, .to = n, .term = term_,
                 .index = t ? c : log_index(0), .log_term = t.value_or(term_t(0)),
                 .commit = t ? c : log_index(0)});
  }
}

void Raft::send_timeout_now(node_id to) {
  send(Message{.type = MessageType::timeout_now, .to = to, .term = term_});
}

void Raft::step_leader(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  switch (m.type) {
    case MessageType::append_resp:
      pr.recent_active = true;
      handle_append_resp(m, pr);
      break;
    case MessageType::heartbeat_resp:
      pr.recent_active = true;
      pr.probe_sent = false;
      if (m.reject) {
        // The follower does not hold what it acknowledged (its disk was wiped): forget its
        // acknowledgements and find its real match point again. Harmless for a learner; for
        // a voter the lost acknowledgements may already have counted, which is why a member
        // that lost its disk must rejoin as a learner.
        pr.forget_match(std::min(m.reject_hint, log_.last_index()).next());
      }
      // A full pipeline whose acks were lost would stall forever; a heartbeat reply proves
      // the follower is reachable, so let one more message through.
      if (pr.state == ProgressState::replicate && pr.inflights.full()) pr.inflights.free_first_one();
      if (pr.match < log_.last_index()) send_append(m.from);
      break;
    default:
      break;  // stale votes, timeout_now for an older leadership: nothing to do
  }
}

void Raft::handle_append_resp(const Message& m, Progress& pr) {
  if (m.reject) {
    // Fast backtracking: skip every entry of a term the follower cannot match in one step.
    log_index next_probe = m.reject_hint;
    if (m.log_term.value > 0) next_probe = log_.find_conflict_by_term(m.reject_hint, m.log_term);
    if (pr.maybe_decr_to(m.index, next_probe)) {
      if (pr.state == ProgressState::replicate) pr.become_probe();
      send_append(m.from);
    }
    return;
  }
  // A follower cannot match entries we do not have: such an ack is forged or corrupt.
  if (m.index > log_.last_index()) {
    ++messages_rejected_;
    last_reject_reason_ = "append_resp acknowledges entries beyond the leader's log";
    return;
  }
  const bool was_paused = pr.is_paused();
  if (!pr.maybe_update(m.index)) return;
  if (pr.state == ProgressState::probe) {
    pr.become_replicate();
  } else {
    pr.inflights.free_le(m.index);
  }
  if (maybe_commit()) {
    bcast_append();  // followers learn the new commit index
  } else if (was_paused) {
    send_append(m.from);
  }
  // Fill the pipeline while the window allows (batched by max_msg_bytes).
  while (send_append(m.from, /*send_if_empty=*/false)) {
  }
  if (transferee_ == m.from && pr.match == log_.last_index()) send_timeout_now(m.from);
}

void Raft::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::append:
      election_elapsed_ticks_ = 0;
      lead_ = m.from;
      handle_append(m);
      break;
    case MessageType::heartbeat:
      election_elapsed_ticks_ = 0;
      lead_ = m.from;
      handle_heartbeat(m);
      break;
    case MessageType::install_snapshot:
      election_elapsed_ticks_ = 0;
      lead_ = m.from;
      handle_install(m);
      break;
    case MessageType::timeout_now:
      // Thesis §3.10: the leader chose us; skip pre-vote and the lease, campaign at once.
      if (promotable()) campaign(CampaignKind::transfer);
      break;
    default:
      break;
  }
}

void Raft::handle_append(const Message& m) {
  note_leader_contact(m);
  if (m.index < commit_) {
    // Everything up to our commit index already matches the leader (leader completeness).
    send(Message{.type = MessageType::append_resp, .to = m.from, .term = term_, .index = commit_});
    return;
  }
  if (log_.match_term(m.index, m.log_term)) {
    // Paper §5.3 consistency check passed. Append only from the first conflicting entry, so a
    // delayed, shorter copy of this message never truncates entries we already have.
    const log_index last_new = log_index(m.index.value + m.entries.size());
    const log_index conflict = log_.find_conflict(m.entries);
    if (conflict.value != 0) {
      if (conflict <= commit_) {
        // No correct leader asks this (leader completeness, §5.4): the bytes came from a
        // faulty or forged peer. Keep the committed entry and ignore the message.
        ++messages_rejected_;
        last_reject_reason_ = "append conflicts with a committed entry";
        return;
      }
      const auto from = static_cast<std::ptrdiff_t>(conflict.value - m.entries.front().index.value);
      log_.append(std::vector<Entry>(m.entries.begin() + from, m.entries.end()));
    }
    commit_to(std::min(m.commit, last_new));
    // Released only after the driver persisted this Ready: the ack promises durability.
    send(Message{.type = MessageType::append_resp, .to = m.from, .term = term_, .index = last_new});
    return;
  }
  // Reject with a hint: the largest index <= prevLogIndex whose term could still match.
  log_index hint = std::min(m.index, log_.last_index());
  hint = log_.find_conflict_by_term(hint, m.log_term);
  const term_t hint_term = log_.term(hint).value_or(term_t(0));
  send(Message{.type = MessageType::append_resp, .to = m.from, .term = term_, .index = m.index,
               .log_term = hint_term, .reject = true, .reject_hint = hint});
}

void Raft::handle_heartbeat(const Message& m) {
  note_leader_contact(m);
  if (m.commit > commit_) {
    if (!log_.match_term(m.index, m.log_term)) {
      // The leader believes we hold entries we do not: we lost acknowledged entries (a wiped
      // data directory). Tell it where our log ends instead of committing blindly.
      send(Message{.type = MessageType::heartbeat_resp, .to = m.from, .term = term_,
                   .reject = true, .reject_hint = log_.last_index()});
      return;
    }
    commit_to(std::min(m.commit, m.index));
  }
  send(Message{.type = MessageType::heartbeat_resp, .to = m.from, .term = term_});
}

void Raft::handle_install(const Message& m) {
  note_leader_contact(m);
  if (m.index <= commit_) {
    send(Message{.type = MessageType::append_resp, .to = m.from, .term = term_, .index = commit_});
    return;
  }
  if (log_.match_term(m.index, m.log_term)) {
    // We already hold the leader's first entry's predecessor: nothing to discard.
    commit_to(m.index);
    send(Message{.type = MessageType::append_resp, .to = m.from, .term = term_, .index = m.index});
    return;
  }
  // Entries up to m.index are committed (retention removes only committed entries), and we
  // lack some of them: restart our log where the leader's begins.
  log_.reset(m.index.next(), m.log_term);
  commit_ = m.index;
  applied_ = std::max(applied_, m.index);
  applying_ = std::max(applying_, m.index);
  send(Message{.type = MessageType::append_resp, .to = m.from, .term = term_, .index = m.index});
}

void Raft::note_leader_contact(const Message& m) {
  if (!lost_state_ || (lost_state_target_ && lost_state_target_term_ == m.term)) return;
  // Everything that may have been committed with our help before we lost our state is in this
  // leader's log (leader completeness), so its last index bounds what we must hold again. A
  // peer too old to send leader_last leaves only its commit index as the bound. A later
  // leader's bound replaces an earlier one's: the earlier may have counted entries that were
  // never committed and that the later one dropped (an idle group would never reach it).
  lost_state_target_ = std::max(m.leader_last, m.commit);
  lost_state_target_term_ = m.term;
}

void Raft::set_lost_state(bool lost) {
  if (is_learner_ || (lost && role_ == Role::leader)) return;
  lost_state_ = lost;
  lost_state_target_.reset();
  if (lost && role_ != Role::follower) become_follower(term_, std::nullopt);
  check_after_input();
}

void Raft::maybe_end_lost_state() {
  if (!lost_state_ || !lost_state_target_) return;
  if (log_.last_index() < *lost_state_target_ || commit_ < *lost_state_target_) return;
  lost_state_ = false;
  lost_state_target_.reset();
}

}  // namespace quorumq::raft
