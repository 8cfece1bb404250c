// The key -> partition mapping. FIXED FOREVER: changing it would move existing keys to other
// partitions and break per-key ordering for every user. Other-language clients must implement
// exactly this.
//
//   partition = (murmur2(key) & 0x7fffffff) % partition_count
//
// murmur2 is the 32-bit MurmurHash2 with seed 0x9747b28c, exactly as Apache Kafka's
// `Utils.murmur2` (so a key lands on the same partition number as with Kafka's default
// partitioner, for the same partition count).
#pragma once

#include "quorumq/export.h"

#include <cstdint>
#include <string_view>

namespace quorumq {

QUORUMQ_API std::int32_t murmur2(std::string_view data) noexcept;

// partition_count must be > 0.
QUORUMQ_API std::int32_t partition_for_key(std::string_view key, std::int32_t partition_count) noexcept;

}  // namespace quorumq
