// Reading a broker's /metrics text (Prometheus exposition format) for what the chaos driver needs.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>

namespace quorumq::bench {

// Partitions of `topic` this broker leads: lines `quorumq_partition_leader{topic="T",partition="P"} 1`.
// A value other than 1, another topic (also one whose name starts with `topic`) or a malformed
// line does not count.
std::set<std::int32_t> led_partitions(std::string_view metrics, std::string_view topic);

// The value of an unlabelled sample `NAME VALUE` at the start of a line; nullopt if absent or
// not a number.
std::optional<double> sample_value(std::string_view metrics, std::string_view name);

}  // namespace quorumq::bench
