// Leader election (paper §5.2) with pre-vote (thesis §9.6), the leader lease that makes
// check-quorum and pre-vote work together (thesis §4.2.3), and the election half of leadership
// transfer (thesis §3.10).
#include <algorithm>

#include "quorumq/protocol/assert.h"
#include "quorumq/raft/quorum.h"
#include "quorumq/raft/raft.h"

namespace quorumq::raft {

bool Raft::in_lease() const {
  return cfg_.check_quorum && lead_.has_value() &&
         election_elapsed_ticks_ < cfg_.election_timeout_ticks;
}

void Raft::peer_unreachable(node_id peer) {
  if (role_ != Role::follower || !lead_ || *lead_ != peer) return;
  lead_.reset();
  if (!promotable()) return;
  int rank = 0;
  for (node_id v : cfg_.voters)
    if (v != peer && v < cfg_.id) ++rank;
  // The next tick_election() that reaches this campaigns; become_follower() (a new leader, a
  // vote for another candidate) re-randomizes it.
  randomized_election_timeout_ticks_ =
      std::min(randomized_election_timeout_ticks_,
               election_elapsed_ticks_ + kFastElectionFirstTicks + rank * kFastElectionStepTicks);
}

void Raft::campaign(CampaignKind kind) {
  if (!promotable()) return;  // learners never stand (thesis §4.2.1); see also lost_state
  term_t vote_term;
  MessageType type;
  if (kind == CampaignKind::pre_vote) {
    become_pre_candidate();
    vote_term = term_.next();
    type = MessageType::pre_vote;
  } else {
    become_candidate();
    vote_term = term_;
    type = MessageType::vote;
  }
  votes_[cfg_.id] = true;
  switch (tally_votes(cfg_.voters, votes_)) {
    case VoteResult::won:  // a single voter
      if (kind == CampaignKind::pre_vote) {
        campaign(CampaignKind::election);
      } else {
        become_leader();
        bcast_append();
      }
      return;
    case VoteResult::lost:
    case VoteResult::pending:
      break;
  }
  for (node_id v : cfg_.voters) {
    if (v == cfg_.id) continue;
    send(Message{.type = type, .to = v, .term = vote_term, .index = log_.last_index(),
                 .log_term = log_.last_term(), .transfer = kind == CampaignKind::transfer});
  }
}

void Raft::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::pre_vote;
  // Paper §5.2: one vote per term (a repeat of the same request gets the same answer); a
  // pre-vote for a later term binds nothing. A node that knows a leader in this term does not
  // vote for another candidate.
  const bool can_vote = !is_learner_ && (vote_ == m.from || (!vote_ && !lead_) ||
                                         (pre && m.term > term_));
  // Paper §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
  bool grant = can_vote && log_.is_up_to_date(m.index, m.log_term);
  if (grant && cfg_.held_before) {
    const auto [idx, t] = *cfg_.held_before;  // the log we held before cutting a damaged part
    grant = m.log_term > t || (m.log_term == t && m.index >= idx);
  }
  if (grant && lost_state_) {
    // We may have forgotten entries committed with our help (Config::lost_state).
    grant = false;
    ++votes_withheld_;
  }
  if (grant) {
    send(Message{.type = pre ? MessageType::pre_vote_resp : MessageType::vote_resp, .to = m.from,
                 .term = m.term});
    if (!pre) {
      election_elapsed_ticks_ = 0;
      vote_ = m.from;
    }
  } else {
    send(Message{.type = pre ? MessageType::pre_vote_resp : MessageType::vote_resp, .to = m.from,
                 .term = term_, .reject = true});
  }
}

void Raft::step_candidate(const Message& m) {
  const MessageType my_resp =
      role_ == Role::pre_candidate ? MessageType::pre_vote_resp : MessageType::vote_resp;
  switch (m.type) {
    case MessageType::append:
      become_follower(m.term, m.from);  // a leader of our term exists (§5.2)
      handle_append(m);
      return;
    case MessageType::heartbeat:
      become_follower(m.term, m.from);
      handle_heartbeat(m);
      return;
    case MessageType::install_snapshot:
      become_follower(m.term, m.from);
      handle_install(m);
      return;
    default:
      break;
  }
  if (m.type != my_resp) return;
  // A granted pre-vote echoes the term we asked for; ignore grants from an older round.
  if (role_ == Role::pre_candidate && !m.reject && m.term != term_.next()) return;
  votes_[m.from] = !m.reject;
  switch (tally_votes(cfg_.voters, votes_)) {
    case VoteResult::won:
      if (role_ == Role::pre_candidate) {
        campaign(CampaignKind::election);
      } else {
        become_leader();
        bcast_append();
      }
      break;
    case VoteResult::lost:
      become_follower(term_, std::nullopt);
      break;
    case VoteResult::pending:
      break;
  }
}

}  // namespace quorumq::raft
