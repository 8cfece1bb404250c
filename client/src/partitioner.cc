#include "quorumq/partitioner.h"

#include <cstring>

namespace quorumq {

// MurmurHash2, 32-bit, seed 0x9747b28c: byte for byte Apache Kafka's Utils.murmur2.
std::int32_t murmur2(std::string_view data) noexcept {
  const std::uint32_t length = static_cast<std::uint32_t>(data.size());
  const std::uint32_t seed = 0x9747b28c;
  const std::uint32_t m = 0x5bd1e995;
  const int r = 24;
  std::uint32_t h = seed ^ length;
  const std::uint32_t length4 = length / 4;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  for (std::uint32_t i = 0; i < length4; ++i) {
    const std::uint32_t i4 = i * 4;
    std::uint32_t k = static_cast<std::uint32_t>(p[i4 + 0]) | (static_cast<std::uint32_t>(p[i4 + 1]) << 8) |
                      (static_cast<std::uint32_t>(p[i4 + 2]) << 16) | (static_cast<std::uint32_t>(p[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (length % 4) {
    case 3: h ^= static_cast<std::uint32_t>(p[(length & ~3u) + 2]) << 16; [[fallthrough]];
    case 2: h ^= static_cast<std::uint32_t>(p[(length & ~3u) + 1]) << 8; [[fallthrough]];
    case 1:
      h ^= static_cast<std::uint32_t>(p[length & ~3u]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);
}

std::int32_t partition_for_key(std::string_view key, std::int32_t partition_count) noexcept {
  if (partition_count <= 0) return 0;
  const auto positive = static_cast<std::uint32_t>(murmur2(key)) & 0x7fffffffu;
  return static_cast<std::int32_t>(positive % static_cast<std::uint32_t>(partition_count));
}

}  // namespace quorumq
