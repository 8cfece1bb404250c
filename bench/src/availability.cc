#include "availability.h"

#include <algorithm>
#include <cmath>

namespace quorumq::bench {

void AvailabilityTracker::open_fault(std::string kind, int victim, std::int64_t fault_ns,
                                     const std::set<std::int32_t>& partitions) {
  std::lock_guard lock(mu_);
  FaultRecord f;
  f.kind = std::move(kind);
  f.victim = victim;
  f.at_ns = fault_ns - start_ns_;
  const std::size_t id = faults_.size();
  for (std::int32_t p : partitions) {
    f.window_ns[p] = -1;
    open_.emplace(p, Open{id, fault_ns});
  }
  faults_.push_back(std::move(f));
  open_count_.store(static_cast<int>(open_.size()), std::memory_order_release);
}

void AvailabilityTracker::on_ack(std::int32_t partition, std::int64_t send_ns, std::int64_t ack_ns) {
  if (open_count_.load(std::memory_order_acquire) == 0) return;
  std::lock_guard lock(mu_);
  auto [lo, hi] = open_.equal_range(partition);
  for (auto it = lo; it != hi;) {
    if (send_ns >= it->second.fault_ns) {
      faults_[it->second.fault].window_ns[partition] = ack_ns - it->second.fault_ns;
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  open_count_.store(static_cast<int>(open_.size()), std::memory_order_release);
}

AvailabilityStats AvailabilityTracker::finish(std::int64_t end_ns) {
  std::lock_guard lock(mu_);
  for (auto& [p, o] : open_) {
    faults_[o.fault].window_ns[p] = end_ns - o.fault_ns;
    unrecovered_.insert({o.fault, p});
  }
  open_.clear();
  open_count_.store(0);

  AvailabilityStats s;
  s.mtbf_s = mtbf_s_;
  s.faults = faults_.size();
  s.unrecovered = unrecovered_.size();
  std::vector<double> all;
  std::map<std::int32_t, std::vector<double>> per;
  for (std::int32_t p = 0; p < partitions_; ++p) per[p];
  for (const auto& f : faults_)
    for (const auto& [p, w] : f.window_ns) {
      const double sec = static_cast<double>(std::max<std::int64_t>(w, 0)) / 1e9;
      all.push_back(sec);
      per[p].push_back(sec);
    }
  auto avail = [&](double mttr) { return mtbf_s_ > 0 ? mtbf_s_ / (mtbf_s_ + mttr) : 1.0; };
  s.windows = all.size();
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    double sum = 0;
    for (double v : all) sum += v;
    s.mttr_mean_s = sum / static_cast<double>(all.size());
    // Nearest rank, as the latency histograms do.
    const auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(all.size())));
    s.mttr_p99_s = all[std::clamp<std::size_t>(rank, 1, all.size()) - 1];
    s.mttr_max_s = all.back();
    s.availability = avail(s.mttr_mean_s);
  }
  for (auto& [p, v] : per) {
    AvailabilityStats::PerPartition pp;
    pp.faults = v.size();
    if (!v.empty()) {
      double sum = 0;
      for (double x : v) sum += x;
      pp.mttr_mean_s = sum / static_cast<double>(v.size());
      pp.mttr_max_s = *std::max_element(v.begin(), v.end());
      pp.availability = avail(pp.mttr_mean_s);
    }
    s.partitions[p] = pp;
  }
  return s;
}

std::vector<FaultRecord> AvailabilityTracker::faults() const {
  std::lock_guard lock(mu_);
  return faults_;
}

}  // namespace quorumq::bench
