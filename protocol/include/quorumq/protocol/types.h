// Strong types shared by every module: a term is not an offset is not a node id.
// Header-only, no dependencies, compiles as C++20 under clang (the fuzzers) and C++23 under g++.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace quorumq {

// A tagged integer. Arithmetic is explicit (`.value`) on purpose: mixing an offset with a
// Raft index is the bug these types exist to stop.
template <typename Tag, typename Rep>
struct Strong {
  Rep value{};
  constexpr Strong() = default;
  constexpr explicit Strong(Rep v) : value(v) {}
  constexpr auto operator<=>(const Strong&) const = default;
  constexpr Strong next() const { return Strong(value + 1); }
};

using term_t = Strong<struct TermTag, std::uint64_t>;
using log_index = Strong<struct LogIndexTag, std::uint64_t>;   // Raft log position
using offset_t = Strong<struct OffsetTag, std::int64_t>;       // message offset in a partition
using node_id = Strong<struct NodeIdTag, std::int32_t>;
using partition_id = Strong<struct PartitionIdTag, std::int32_t>;

}  // namespace quorumq

template <typename Tag, typename Rep>
struct std::hash<quorumq::Strong<Tag, Rep>> {
  std::size_t operator()(const quorumq::Strong<Tag, Rep>& s) const noexcept {
    return std::hash<Rep>{}(s.value);
  }
};
