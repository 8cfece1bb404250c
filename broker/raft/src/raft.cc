// Role changes, the clock, the term rules shared by every role (paper §5.1: "if RPC request or
// response contains term T > currentTerm: set currentTerm = T, convert to follower"), and the
// Ready/advance protocol. Election and replication rules live in raft_election.cc and
// raft_replication.cc.
#include "quorumq/raft/raft.h"

#include <algorithm>

#include "quorumq/protocol/assert.h"

namespace quorumq::raft {

namespace {
bool contains(const std::vector<node_id>& v, node_id n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}
}  // namespace

Raft::Raft(Config config, const LogReader& storage, HardState persisted)
    : cfg_(std::move(config)),
      log_(storage),
      // Mix the id in so that nodes given the same seed still draw different timeouts.
      rng_(cfg_.rng_seed ^ (0x5851f42d4c957f2dULL * static_cast<std::uint64_t>(cfg_.id.value + 1))) {
  QQ_ASSERT_MSG(cfg_.election_timeout_ticks > cfg_.heartbeat_interval_ticks &&
                    cfg_.heartbeat_interval_ticks > 0,
                "need election timeout > heartbeat interval > 0");
  QQ_ASSERT(cfg_.max_inflight_msgs > 0);
  std::sort(cfg_.voters.begin(), cfg_.voters.end());
  std::sort(cfg_.learners.begin(), cfg_.learners.end());
  QQ_ASSERT_MSG(!cfg_.voters.empty(), "a group needs voters");
  QQ_ASSERT_MSG(std::adjacent_find(cfg_.voters.begin(), cfg_.voters.end()) == cfg_.voters.end(),
                "duplicate voter");
  for (node_id l : cfg_.learners) QQ_ASSERT_MSG(!contains(cfg_.voters, l), "voter and learner");
  is_learner_ = contains(cfg_.learners, cfg_.id);
  QQ_ASSERT_MSG(is_learner_ || contains(cfg_.voters, cfg_.id), "this node is not a member");
  lost_state_ = cfg_.lost_state && !is_learner_;
  members_ = cfg_.voters;
  members_.insert(members_.end(), cfg_.learners.begin(), cfg_.learners.end());

  term_ = persisted.term;
  vote_ = persisted.vote;
  // Retention only removes committed entries, so everything before first_index is committed.
  commit_ = std::max(persisted.commit, log_index(log_.first_index().value - 1));
  QQ_ASSERT_MSG(commit_ <= log_.last_index(), "persisted commit beyond the log");
  applied_ = std::max(cfg_.applied, log_index(log_.first_index().value - 1));
  QQ_ASSERT(applied_ <= commit_);
  applying_ = applied_;
  prev_hard_state_ = hard_state();
  become_follower(term_, std::nullopt);
  prev_soft_state_ = SoftState{role_, lead_};
}

bool Raft::is_voter(node_id n) const { return contains(cfg_.voters, n); }

const Progress* Raft::progress(node_id n) const {
  auto it = progress_.find(n);
  return it == progress_.end() ? nullptr : &it->second;
}

void Raft::reset(term_t term) {
  if (term_ != term) {
    term_ = term;
    vote_.reset();
  }
  lead_.reset();
  election_elapsed_ticks_ = 0;
  heartbeat_elapsed_ticks_ = 0;
  // Paper §5.2: randomised timeouts in [T, 2T) make split votes rare.
  randomized_election_timeout_ticks_ =
      cfg_.election_timeout_ticks + static_cast<int>(rng_.below(cfg_.election_timeout_ticks));
  transferee_.reset();
  votes_.clear();
  progress_.clear();
}

void Raft::become_follower(term_t term, std::optional<node_id> lead) {
  reset(term);
  lead_ = lead;
  role_ = Role::follower;
}

void Raft::become_pre_candidate() {
  QQ_ASSERT(role_ != Role::leader && promotable());
  // Thesis §9.6: a pre-candidate changes neither its term nor its vote.
  votes_.clear();
  progress_.clear();
  lead_.reset();
  role_ = Role::pre_candidate;
}

void Raft::become_candidate() {
  QQ_ASSERT(role_ != Role::leader && promotable());
  reset(term_.next());
  vote_ = cfg_.id;
  role_ = Role::candidate;
}

void Raft::become_leader() {
  QQ_ASSERT(role_ == Role::candidate);
  reset(term_);
  QQ_ASSERT(vote_ == cfg_.id);
  lead_ = cfg_.id;
  role_ = Role::leader;
  const log_index next = log_.last_index().next();
  for (node_id n : members_) {
    auto [it, _] = progress_.emplace(n, Progress(next, cfg_.max_inflight_msgs, !is_voter(n)));
    // The leader heard from itself; followers must prove themselves within a timeout.
    it->second.recent_active = (n == cfg_.id);
  }
  update_self_match();
  // Thesis §6.4 / paper §5.4.2: a no-op of the new term lets the leader commit (and learn the
  // commit point of) everything before it, since older-term entries cannot be counted directly.
  append_entry(EntryType::noop, nullptr);
}

void Raft::tick() {
  if (role_ == Role::leader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
  check_after_input();
}

void Raft::tick_election() {
  ++election_elapsed_ticks_;
  if (promotable() && election_elapsed_ticks_ >= randomized_election_timeout_ticks_) {
    election_elapsed_ticks_ = 0;
    campaign(cfg_.pre_vote ? CampaignKind::pre_vote : CampaignKind::election);
  }
}

void Raft::tick_heartbeat() {
  ++heartbeat_elapsed_ticks_;
  ++election_elapsed_ticks_;
  if (election_elapsed_ticks_ >= cfg_.election_timeout_ticks) {
    election_elapsed_ticks_ = 0;
    // Thesis §6.2 check-quorum: a leader that has not heard from a majority for an election
    // timeout steps down, so a partitioned leader stops claiming leadership (and clients go
    // elsewhere) instead of waiting for a higher term to reach it.
    if (cfg_.check_quorum && !quorum_active()) {
      become_follower(term_, std::nullopt);
      return;
    }
    for (auto& [id, pr] : progress_) {
      if (id != cfg_.id) pr.recent_active = false;
    }
    // Thesis §3.10: abort a transfer that did not finish within an election timeout.
    transferee_.reset();
  }
  if (heartbeat_elapsed_ticks_ >= cfg_.heartbeat_interval_ticks) {
    heartbeat_elapsed_ticks_ = 0;
    bcast_heartbeat();
  }
}

void Raft::campaign_now() {
  if (role_ == Role::leader || !promotable()) return;
  campaign(cfg_.pre_vote ? CampaignKind::pre_vote : CampaignKind::election);
  check_after_input();
}

// Messages come from the network: nothing in them may trip an assertion or bend the rules.
// A message no correct peer can send is dropped (and counted) before it changes anything.
const char* Raft::reject_reason(const Message& m) const {
  // Indexes this large cannot come from a real log, and index + entries must not overflow.
  constexpr std::uint64_t kIndexMax = std::uint64_t{1} << 62;
  if (m.to != cfg_.id) return "addressed to another node";
  if (m.from == cfg_.id) return "claims to come from this node";
  if (!contains(members_, m.from)) return "sender is not a member of this group";
  if (static_cast<std::uint8_t>(m.type) > static_cast<std::uint8_t>(MessageType::timeout_now)) return "unknown type";
  if (m.index.value >= kIndexMax || m.commit.value >= kIndexMax || m.reject_hint.value >= kIndexMax ||
      m.leader_last.value >= kIndexMax || m.entries.size() >= kIndexMax)
    return "index out of range";
  if (m.type != MessageType::append && !m.entries.empty()) return "entries in a message that carries none";
  switch (m.type) {
    case MessageType::append: {
      // Paper §5.3: entries follow prevLogIndex contiguously, their terms never decrease, start
      // no lower than prevLogTerm, and no leader sends entries of a term above its own.
      if (m.log_term > m.term) return "prevLogTerm above the leader's term";
      term_t prev = m.log_term;
      for (std::size_t i = 0; i < m.entries.size(); ++i) {
        const Entry& e = m.entries[i];
        if (e.index.value != m.index.value + 1 + i) return "entries not contiguous after prevLogIndex";
        if (e.term < prev || e.term > m.term) return "entry terms out of order";
        if (static_cast<std::uint8_t>(e.type) > static_cast<std::uint8_t>(EntryType::config)) return "unknown entry type";
        prev = e.term;
      }
      break;
    }
    case MessageType::heartbeat:
      if (m.log_term > m.term || m.commit > m.index) return "heartbeat commits beyond the entry it names";
      break;
    case MessageType::install_snapshot:
      // Retention removes only committed entries, so the leader's log start is at most its
      // commit index + 1 and at most its last index + 1.
      if (m.log_term > m.term || m.index.value == 0 || m.commit < m.index ||
          (m.leader_last.value != 0 && m.leader_last < m.index))
        return "install_snapshot inconsistent with the leader's own log";
      // Acted on only from the leader this node already follows in this term: a log reset
      // never establishes a leader or a term by itself (the leader's first append or
      // heartbeat does, and the install is retried after the next heartbeat reply).
      if (m.term != term_ || role_ != Role::follower || lead_ != m.from)
        return "install_snapshot not from this term's leader";
      break;
    case MessageType::vote:
    case MessageType::pre_vote:
      if (m.log_term > m.term) return "candidate's last term above its campaign term";
      break;
    default:
      break;
  }
  return nullptr;
}

void Raft::step(const Message& m) {
  if (const char* why = reject_reason(m)) {
    ++messages_rejected_;
    last_reject_reason_ = why;
    return;
  }
  if (m.term > term_) {
    if (m.type == MessageType::vote || m.type == MessageType::pre_vote) {
      // Thesis §4.2.3 / §9.6: while we hear from a leader, ignore candidates, so a node that
      // was partitioned away cannot depose a healthy leader. A transfer overrides this.
      if (!m.transfer && in_lease()) return;
    }
    if (m.type == MessageType::pre_vote) {
      // Pre-votes never change our term (thesis §9.6).
    } else if (m.type == MessageType::pre_vote_resp && !m.reject) {
      // A granted pre-vote carries the term we would campaign at, not a newer term.
    } else if (m.type == MessageType::append || m.type == MessageType::heartbeat ||
               m.type == MessageType::install_snapshot) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, std::nullopt);
    }
  } else if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == MessageType::append || m.type == MessageType::heartbeat)) {
      // A stale leader that cannot see higher terms (pre-vote keeps them from us) must still
      // learn it was deposed: answer with our term.
      send(Message{.type = MessageType::append_resp, .to = m.from, .term = term_});
    } else if (m.type == MessageType::pre_vote) {
      send(Message{.type = MessageType::pre_vote_resp, .to = m.from, .term = term_,
                   .reject = true});
    }
    check_after_input();
    return;
  }

  switch (m.type) {
    case MessageType::pre_vote:
    case MessageType::vote:
      handle_vote_request(m);
      break;
    default:
      switch (role_) {
        case Role::leader: step_leader(m); break;
        case Role::pre_candidate:
        case Role::candidate: step_candidate(m); break;
        case Role::follower: step_follower(m); break;
      }
  }
  maybe_end_lost_state();
  check_after_input();
}

void Raft::send(Message m) {
  m.from = cfg_.id;
  const bool replication = m.type == MessageType::append || m.type == MessageType::heartbeat ||
                           m.type == MessageType::install_snapshot ||
                           m.type == MessageType::timeout_now;
  // Thesis §10.2.1: the leader's replication traffic does not wait for its own disk.
  if (role_ == Role::leader && replication) {
    if (m.type != MessageType::timeout_now) m.leader_last = log_.last_index();
    msgs_early_.push_back(std::move(m));
  } else {
    msgs_.push_back(std::move(m));
  }
}

std::expected<log_index, ProposeError> Raft::propose(Payload payload, EntryType type) {
  if (role_ != Role::leader) return std::unexpected(ProposeError{errc::not_leader, lead_});
  if (transferee_) {
    return std::unexpected(ProposeError{errc::leadership_transfer_pending, lead_});
  }
  append_entry(type, std::move(payload));
  const log_index index = log_.last_index();
  for (node_id n : members_) {
    if (n != cfg_.id) send_append(n, /*send_if_empty=*/false);
  }
  check_after_input();
  return index;
}

std::expected<void, std::error_code> Raft::transfer_leadership(node_id to) {
  if (role_ != Role::leader) return std::unexpected(make_error_code(errc::not_leader));
  if (to == cfg_.id || !is_voter(to)) {
    return std::unexpected(make_error_code(errc::invalid_transfer_target));
  }
  if (transferee_ == to) return {};
  transferee_ = to;
  // The transfer must finish within an election timeout or it is abandoned (thesis §3.10).
  election_elapsed_ticks_ = 0;
  const Progress& pr = progress_.at(to);
  if (pr.match == log_.last_index()) {
    send_timeout_now(to);
  } else {
    send_append(to);
  }
  check_after_input();
  return {};
}

bool Raft::has_ready() const {
  if (ready_outstanding_) return false;
  if (SoftState{role_, lead_} != prev_soft_state_) return true;
  if (hard_state() != prev_hard_state_) return true;
  if (log_.has_unhanded() || !msgs_.empty() || !msgs_early_.empty()) return true;
  return applying_ < std::min(commit_, log_.last_index());
}

Ready Raft::ready() {
  QQ_ASSERT_MSG(!ready_outstanding_, "ready() called before advance() of the previous Ready");
  Ready rd;
  const SoftState soft{role_, lead_};
  if (soft != prev_soft_state_) {
    rd.soft_state = soft;
    prev_soft_state_ = soft;
  }
  const HardState hs = hard_state();
  const bool term_or_vote_changed =
      hs.term != prev_hard_state_.term || hs.vote != prev_hard_state_.vote;
  if (hs != prev_hard_state_) {
    rd.hard_state = hs;
    prev_hard_state_ = hs;
  }
  rd.reset_log = log_.take_reset();
  rd.entries = log_.take_unhanded(&rd.truncate_from);
  const log_index hi = std::min(commit_, log_.last_index());
  if (applying_ < hi) {
    const log_index lo = std::max(applying_.next(), log_.first_index());
    if (lo <= hi) rd.committed_entries = log_.slice(lo, hi.next(), cfg_.max_committed_bytes);
    applying_ = rd.committed_entries.empty() ? hi : rd.committed_entries.back().index;
  }
  rd.messages = std::move(msgs_);
  msgs_.clear();
  if (term_or_vote_changed) {
    // A new term or vote must be durable before anything carrying it leaves this node (else a
    // crash could let it vote twice, or lead twice, in one term).
    rd.messages.insert(rd.messages.end(), msgs_early_.begin(), msgs_early_.end());
  } else {
    rd.messages_early = std::move(msgs_early_);
  }
  msgs_early_.clear();
  rd.commit = commit_;
  ready_outstanding_ = true;
  return rd;
}

void Raft::advance(const Ready& rd) {
  QQ_ASSERT_MSG(ready_outstanding_, "advance() without an outstanding Ready");
  ready_outstanding_ = false;
  if (rd.reset_log) log_.reset_persisted(*rd.reset_log);
  // Some of these entries may have been overridden while the driver persisted them; the newest
  // one still in our log marks how far the durable prefix reaches (log matching, §5.3).
  for (auto it = rd.entries.rbegin(); it != rd.entries.rend(); ++it) {
    if (log_.stable_to(it->index, it->term)) break;
  }
  if (!rd.committed_entries.empty()) {
    applied_ = std::max(applied_, rd.committed_entries.back().index);
  }
  applied_ = std::max(applied_, std::min(applying_, commit_));
  applying_ = std::max(applying_, applied_);
  if (role_ == Role::leader) {
    update_self_match();
    if (maybe_commit()) bcast_append();
  }
  check_after_input();
}

void Raft::on_persisted(log_index index, term_t term) {
  log_.stable_to(index, term);
  if (role_ == Role::leader) {
    update_self_match();
    if (maybe_commit()) bcast_append();
  }
  check_after_input();
}

void Raft::check_after_input() const {
#ifndef NDEBUG
  const std::string violation = find_invariant_violation();
  QQ_ASSERT_MSG(violation.empty(), violation.c_str());
#endif
}

}  // namespace quorumq::raft
