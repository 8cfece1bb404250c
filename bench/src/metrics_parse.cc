#include "metrics_parse.h"

#include <charconv>
#include <string>

namespace quorumq::bench {

std::set<std::int32_t> led_partitions(std::string_view metrics, std::string_view topic) {
  std::set<std::int32_t> out;
  const std::string prefix = "quorumq_partition_leader{topic=\"" + std::string(topic) + "\",partition=\"";
  for (std::size_t at = 0; (at = metrics.find(prefix, at)) != std::string_view::npos;) {
    // Only at the start of a line: a longer metric name ending in ours is another metric.
    const bool line_start = at == 0 || metrics[at - 1] == '\n';
    at += prefix.size();
    std::int32_t p = -1;
    const auto [end, ec] = std::from_chars(metrics.data() + at, metrics.data() + metrics.size(), p);
    if (!line_start || ec != std::errc{}) continue;
    const std::string_view rest = metrics.substr(static_cast<std::size_t>(end - metrics.data()));
    if (rest.starts_with("\"} 1") && (rest.size() == 4 || rest[4] == '\n' || rest[4] == ' ' || rest[4] == '\r'))
      out.insert(p);
  }
  return out;
}

std::optional<double> sample_value(std::string_view metrics, std::string_view name) {
  const std::string prefix = std::string(name) + " ";
  for (std::size_t at = 0; (at = metrics.find(prefix, at)) != std::string_view::npos; at += prefix.size()) {
    if (at != 0 && metrics[at - 1] != '\n') continue;
    const char* b = metrics.data() + at + prefix.size();
    double v = 0;
    const auto [end, ec] = std::from_chars(b, metrics.data() + metrics.size(), v);
    if (ec != std::errc{} || end == b) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

}  // namespace quorumq::bench
