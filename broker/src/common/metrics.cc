#include "metrics.h"

#include <cstdio>

namespace quorumq::broker {

void LatencyHistogram::record_us(std::uint64_t us) noexcept {
  std::size_t i = 0;
  while (i < kBoundsUs.size() && static_cast<double>(us) > kBoundsUs[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

void LatencyHistogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cum = 0;
  char buf[128];
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    cum += buckets_[i].load(std::memory_order_relaxed);
    std::snprintf(buf, sizeof buf, "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), kBoundsUs[i] / 1e6,
                  static_cast<unsigned long long>(cum));
    out += buf;
  }
  cum += buckets_.back().load(std::memory_order_relaxed);
  std::snprintf(buf, sizeof buf, "%s_bucket{le=\"+Inf\"} %llu\n", name.c_str(), static_cast<unsigned long long>(cum));
  out += buf;
  std::snprintf(buf, sizeof buf, "%s_sum %.6f\n%s_count %llu\n", name.c_str(),
                static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6, name.c_str(),
                static_cast<unsigned long long>(count_.load(std::memory_order_relaxed)));
  out += buf;
}

}  // namespace quorumq::broker
