// CRC32C (Castagnoli), the checksum on every record batch and every frame payload.
// Uses the SSE4.2 instruction when the CPU has it (checked once at start-up), else a table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quorumq {
// Extends `crc` (start with 0) over `size` bytes at `data`.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) noexcept;
inline std::uint32_t crc32c(const void* data, std::size_t size) noexcept {
  return crc32c_extend(0, data, size);
}
}  // namespace quorumq
