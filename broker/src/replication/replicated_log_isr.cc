// In-sync replicas as the leader sees them: a follower is in sync while it was heard from and
// reached the leader's log end of some moment within --replica-lag-max-ms.
#include <algorithm>

#include "replicated_log.h"

namespace quorumq::broker {

void ReplicatedLog::update_isr(SteadyClock::time_point now, std::chrono::milliseconds lag_max,
                               const std::function<SteadyClock::time_point(node_id)>& connected_since) {
  std::vector<node_id> isr;
  {
    std::lock_guard lk(mu_);
    if (!raft_ || stopped_ || raft_->role() != raft::Role::leader) {
      isr_samples_.clear();
      caught_up_at_.clear();
      heard_at_.clear();
      isr_term_ = 0;
    } else {
      if (isr_term_ != raft_->term().value) {  // a new leadership: everyone proves itself again
        isr_samples_.clear();
        caught_up_at_.clear();
        isr_term_ = raft_->term().value;
      }
      isr_samples_.emplace_back(now, raft_->log().last_index());
      while (isr_samples_.size() > 2 && now - isr_samples_.front().first > lag_max + std::chrono::seconds(1))
        isr_samples_.pop_front();
      isr.push_back(opts_.self);
      for (const auto& v : opts_.voters) {
        if (v == opts_.self) continue;
        const auto* pr = raft_->progress(v);
        if (!pr) continue;
        const auto since = connected_since ? connected_since(v) : SteadyClock::time_point{};
        auto& caught = caught_up_at_[v];
        if (caught < since) caught = {};  // reconnected (restarted?) since: prove it again
        // The newest sample, taken after the link came up, whose log end the follower reached.
        for (auto it = isr_samples_.rbegin(); it != isr_samples_.rend() && it->first >= since; ++it)
          if (it->second <= pr->match) {
            caught = std::max(caught, it->first);
            break;
          }
        const auto heard = heard_at_.find(v);
        const bool alive = heard != heard_at_.end() && heard->second >= since && now - heard->second <= lag_max;
        if (alive && caught != SteadyClock::time_point{} && now - caught <= lag_max) isr.push_back(v);
      }
      std::sort(isr.begin(), isr.end());
    }
  }
  std::lock_guard lk(isr_mu_);
  isr_ = std::move(isr);
}

std::vector<node_id> ReplicatedLog::isr() const {
  std::lock_guard lk(isr_mu_);
  return isr_;
}

std::vector<std::pair<node_id, std::uint64_t>> ReplicatedLog::follower_match() const {
  std::lock_guard lk(mu_);
  std::vector<std::pair<node_id, std::uint64_t>> out;
  if (!raft_ || raft_->role() != raft::Role::leader) return out;
  for (const auto& v : opts_.voters)
    if (const auto* pr = raft_->progress(v)) out.emplace_back(v, pr->match.value);
  return out;
}

}  // namespace quorumq::broker
