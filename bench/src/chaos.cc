#include "chaos.h"

#include <algorithm>
#include <limits>

#include "load.h"

namespace quorumq::bench {

using namespace std::chrono_literals;

ChaosDriver::ChaosDriver(ChaosSpec spec, LocalCluster& cluster, AvailabilityTracker& tracker, std::string topic,
                         int partitions, std::map<std::int32_t, std::vector<int>> replicas, std::int64_t start_ns,
                         std::int64_t end_ns)
    : spec_(spec),
      cluster_(cluster),
      tracker_(tracker),
      topic_(std::move(topic)),
      partitions_(partitions),
      replicas_(std::move(replicas)),
      start_ns_(start_ns),
      end_ns_(end_ns) {}

void ChaosDriver::start() { thread_ = std::thread([this] { run(); }); }

void ChaosDriver::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> ChaosDriver::notes() const {
  std::lock_guard lock(mu_);
  return notes_;
}

void ChaosDriver::note(std::string s) {
  std::lock_guard lock(mu_);
  notes_.push_back(std::move(s));
}

bool ChaosDriver::sleep_until(std::int64_t t_ns) {
  std::unique_lock lock(mu_);
  const auto until = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t_ns));
  return !cv_.wait_until(lock, until, [this] { return stopping_; });
}

void ChaosDriver::recover_due(bool all) {
  std::vector<std::pair<int, Pending>> due;
  {
    std::lock_guard lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (all || it->second.due_ns <= now_ns()) {
        due.emplace_back(*it);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [node, p] : due) {
    if (p.paused) {
      cluster_.resume(node);
    } else if (auto r = cluster_.restart(node, 30s); !r) {
      note(r.error());
    }
  }
}

void ChaosDriver::run() {
  const auto every_ns = static_cast<std::int64_t>(spec_.every_s * 1e9);
  for (std::uint64_t k = 0;; ++k) {
    std::int64_t fault_at = start_ns_ + static_cast<std::int64_t>(k + 1) * every_ns;
    // Leave at least a second of load after a fault, or its window is cut by the end of the run.
    if (end_ns_ && fault_at > end_ns_ - 1'000'000'000) fault_at = std::numeric_limits<std::int64_t>::max();
    // Bring back earlier victims when due, then wait for the next fault.
    for (;;) {
      std::int64_t next = fault_at;
      {
        std::lock_guard lock(mu_);
        for (const auto& [n, p] : pending_) next = std::min(next, p.due_ns);
      }
      if (!sleep_until(next)) {
        recover_due(true);
        return;
      }
      recover_due(false);
      if (now_ns() >= fault_at) break;
    }
    inject(k);
  }
}

void ChaosDriver::inject(std::uint64_t k) {
  const auto target = static_cast<std::int32_t>(k % static_cast<std::uint64_t>(partitions_));
  // The leader of the target partition; right after an earlier fault there may briefly be none.
  int leader = -1;
  std::set<std::int32_t> led;
  for (int attempt = 0; attempt < 40 && leader < 0; ++attempt) {
    for (const auto& [node, parts] : cluster_.leaders(topic_))
      if (parts.contains(target)) leader = node, led = parts;
    if (leader < 0 && !sleep_until(now_ns() + 50'000'000)) return;
  }
  if (leader < 0) {
    note("fault " + std::to_string(k) + ": partition " + std::to_string(target) + " had no leader; skipped");
    return;
  }
  const std::string kind = spec_.name();
  switch (spec_.kind) {
    case ChaosSpec::Kind::kill_leader: {
      const std::int64_t t = now_ns();
      cluster_.kill(leader);
      tracker_.open_fault(kind, leader, t, led);
      std::lock_guard lock(mu_);
      pending_[leader] = {t + static_cast<std::int64_t>(spec_.every_s * 0.5e9), false};
      break;
    }
    case ChaosSpec::Kind::pause_leader: {
      const std::int64_t t = now_ns();
      cluster_.pause(leader);
      tracker_.open_fault(kind, leader, t, led);
      std::lock_guard lock(mu_);
      pending_[leader] = {t + static_cast<std::int64_t>(spec_.for_s * 1e9), true};
      break;
    }
    case ChaosSpec::Kind::restart_follower: {
      std::vector<int> candidates;
      auto it = replicas_.find(target);
      for (int node : (it != replicas_.end() ? it->second : cluster_.nodes()))
        if (node != leader && cluster_.running(node)) candidates.push_back(node);
      if (candidates.empty()) {
        note("fault " + std::to_string(k) + ": partition " + std::to_string(target) + " has no running follower; skipped");
        return;
      }
      const int victim = candidates[k % candidates.size()];
      // Everything the victim hosts is affected: it may lead some partitions too.
      std::set<std::int32_t> affected;
      for (const auto& [p, reps] : replicas_)
        if (std::find(reps.begin(), reps.end(), victim) != reps.end()) affected.insert(p);
      const std::int64_t t = now_ns();
      cluster_.kill(victim);
      tracker_.open_fault(kind, victim, t, affected);
      if (auto r = cluster_.restart(victim, 30s); !r) note(r.error());
      break;
    }
    case ChaosSpec::Kind::none:
      break;
  }
}

}  // namespace quorumq::bench
