// The record the crash child writes to its pipe for each append that completed (durably).
#pragma once

#include <cstdint>
#include <span>

namespace quorumq::storage::test {

struct CrashReport {
  std::uint64_t index;        // Raft index of the batch
  std::int64_t base_offset;   // first offset it got
  std::int64_t next_offset;   // offset after it
  std::uint64_t hash;         // FNV-1a over the CRC-covered bytes (everything the child chose)
};
static_assert(sizeof(CrashReport) == 32);  // well under PIPE_BUF: each write() is atomic

inline std::uint64_t fnv1a(std::span<const std::uint8_t> b) {
  std::uint64_t h = 1469598103934665603ull;
  for (const std::uint8_t c : b) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace quorumq::storage::test
