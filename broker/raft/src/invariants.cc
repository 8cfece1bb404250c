// One node's internal consistency, in the spirit of LogCabin's RaftConsensusInvariants. Called
// after every input in debug builds (Raft::check_after_input) and after every step of the
// simulator. Cost is O(unstable entries + members), so it can run that often.
#include <string>

#include "quorumq/raft/raft.h"

namespace quorumq::raft {

std::string Raft::find_invariant_violation() const {
  if (std::string s = log_.check(); !s.empty()) return "log: " + s;
  const log_index first = log_.first_index();
  const log_index last = log_.last_index();
  if (commit_ > last) return "commit beyond last index";
  if (commit_.value + 1 < first.value) return "commit below first_index - 1";
  if (applied_ > commit_) return "applied beyond commit";
  if (applying_ < applied_) return "applying below applied";
  if (log_.last_term() > term_) return "log has an entry from a future term";
  if (is_learner_ && role_ != Role::follower) return "learner is not a follower";
  if (lost_state_ && role_ == Role::leader) return "leader still marked as having lost its state";
  if (lost_state_ && role_ != Role::follower) return "member that lost its state is not a follower";
  if (cfg_.held_before && role_ != Role::follower) return "member recovering a damaged log is not a follower";
  switch (role_) {
    case Role::leader: {
      if (lead_ != cfg_.id) return "leader does not know itself as leader";
      if (vote_ != cfg_.id) return "leader did not vote for itself";
      if (progress_.size() != members_.size()) return "leader lacks progress for a member";
      if (log_.last_term() != term_) return "leader's last entry is not of its term (no-op missing)";
      for (const auto& [id, pr] : progress_) {
        if (pr.match >= pr.next) return "progress match >= next";
        if (pr.match > last) return "progress match beyond leader's log";
        if (pr.inflights.count() > cfg_.max_inflight_msgs) return "too many inflight messages";
        if (pr.state == ProgressState::probe && pr.inflights.count() != 0)
          return "probe state with inflight messages";
        for (log_index in : pr.inflights.items()) {
          if (in <= pr.match || in >= pr.next) return "inflight index outside (match, next)";
        }
      }
      if (progress_.at(cfg_.id).match > log_.stable_last_index() && log_.unstable_count() > 0)
        return "leader counts a non-durable entry of its own";
      break;
    }
    case Role::candidate:
      if (vote_ != cfg_.id) return "candidate did not vote for itself";
      [[fallthrough]];
    case Role::pre_candidate:
      if (lead_) return "candidate knows a leader";
      if (!progress_.empty()) return "non-leader has progress";
      break;
    case Role::follower:
      if (!progress_.empty()) return "non-leader has progress";
      if (lead_ == cfg_.id) return "follower thinks it leads";
      break;
  }
  return {};
}

}  // namespace quorumq::raft
