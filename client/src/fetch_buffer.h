// Turning fetched bytes into Messages. Pure functions, unit-tested without a broker.
//
// A Fetch answer carries whole record batches as stored (record_batch.h). The consumer
// validates each batch (CRC, structure) before reading it, returns records at or after its
// position only (a batch fetched from the middle starts below it), and skips batches that are
// not data (no-op, config, control).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quorumq/types.h"

namespace quorumq::client {

struct ScanResult {
  std::size_t valid_bytes = 0;  // prefix made of whole, valid batches
  std::int64_t next_fetch_offset = 0;  // after the last data batch in that prefix
  bool corrupt = false;         // a batch failed validation (valid_bytes stops before it)
  std::string error;
};
ScanResult scan_batches(std::span<const std::uint8_t> bytes, std::int64_t fetch_offset);

// Decodes records from the batches in bytes[pos...] with offset >= position, at most `max`.
// Advances `position` past each returned record. Returns the byte position to continue from:
// the first batch that still holds records not returned (or bytes.size()).
std::size_t decode_records(std::span<const std::uint8_t> bytes, std::size_t pos, std::int64_t& position,
                           std::size_t max, const std::string& topic, std::int32_t partition,
                           std::vector<Message>& out);

}  // namespace quorumq::client
