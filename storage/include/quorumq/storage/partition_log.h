// PartitionLog: one partition's log of record batches in its own LMDB named database.
//
// Keys are Raft log indexes (big-endian u64, so LMDB order is numeric order and appends use
// MDB_APPEND); values are record batches whose header carries the entry's term and the base
// message offset. Non-data batches (Raft no-op, config, control) have an index but occupy no
// offsets, so message offsets stay contiguous: this class is the one place that maps between
// the two (offset -> index by binary search over the monotonic base offsets). Offsets cross this
// API as offset_t and indexes as log_index, so one cannot be passed where the other is expected;
// callers convert at their own boundary (wire fields, batch headers) with offset_t{...} / .value.
//
// Lifecycle: made by Storage::open_log(); lives as long as the Storage.
// Threads: writes go through Storage::submit() (the writer thread); every read here is
// thread-safe, runs its own short read transaction and returns copies.
// Invariants: indexes are contiguous from first_index() to last_index(); for consecutive
// entries i, i+1: base_offset(i+1) == base_offset(i) + offset_count(i); every entry read is
// CRC-checked before it is returned.
#pragma once

#include <cstdint>
#include <expected>
#include <mutex>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "quorumq/protocol/types.h"
#include "quorumq/storage/error.h"
#include "quorumq/storage/storage.h"

namespace quorumq::storage {

// What is durably in the log. first_index > last_index means empty.
struct LogState {
  log_index first_index{1};
  log_index last_index{0};
  term_t prev_term{0};          // term of first_index - 1 (after trims or a reset)
  term_t last_term{0};          // term of last_index (prev_term when empty)
  offset_t start_offset{0};     // offset of the first record still stored (log start offset)
  offset_t next_offset{0};      // offset the next record will get (log end offset)
  bool empty() const { return first_index > last_index; }
};

// One step of a background check of stored entries (PartitionLog::verify).
struct VerifyResult {
  log_index next{0};                 // the first index not checked yet
  std::optional<log_index> damaged;  // the first entry that failed its CRC or structure check
  std::size_t bytes = 0;             // bytes checked
};

struct ReadResult {
  std::vector<std::uint8_t> bytes;  // whole data batches, concatenated, CRC-checked
  offset_t next_offset{0};          // offset after the last record returned
  std::uint32_t batches = 0;
};

class PartitionLog {
 public:
  const std::string& name() const { return name_; }
  LogState state() const;

  // Data batches holding offsets >= from_offset and < end_offset (the high watermark), whole
  // batches only, up to max_bytes except that the first batch is always returned whole so a
  // consumer makes progress. The first batch may start before from_offset (skip those records).
  // Errors: out_of_range if from_offset is outside [start_offset, next_offset]; corrupt if the
  // first batch fails its CRC (a later corrupt batch ends the result early instead).
  std::expected<ReadResult, Error> read(offset_t from_offset, std::size_t max_bytes,
                                        offset_t end_offset) const;
  // Entries [lo, hi] (any type), at most max_bytes (at least one), CRC-checked. For Raft.
  std::expected<std::vector<StoredEntry>, Error> entries(log_index lo, log_index hi,
                                                         std::size_t max_bytes) const;
  // Checks the CRC and structure of entries [lo, hi] in place (no copies), about max_bytes of
  // them: a scrub step. Stops at the first damaged entry. Entries below first_index (trimmed
  // meanwhile) are skipped; nothing left in range: next = hi + 1.
  std::expected<VerifyResult, Error> verify(log_index lo, log_index hi, std::size_t max_bytes) const;
  // Calls f(index, header) with the fixed header (kBatchHeaderSize bytes) of each entry in
  // [lo, hi], without reading payloads or checking CRCs: about one page per entry instead of the
  // whole log. For state derived from headers alone (idempotent producers) where the entries are
  // checked elsewhere (at start or by the background check). Entries too short are skipped.
  std::expected<void, Error> for_each_header(
      log_index lo, log_index hi, const std::function<void(log_index, std::span<const std::uint8_t>)>& f) const;
  // Term of the entry at `index`; prev_term for first_index - 1; nullopt outside the log.
  std::optional<term_t> term_at(log_index index) const;
  // Index of the entry holding `offset` (data entries only); nullopt if not in the log.
  std::optional<log_index> index_of_offset(offset_t offset) const;
  // First offset whose batch has max_timestamp >= ts (ListOffsets by time); next_offset if none.
  std::expected<offset_t, Error> offset_for_timestamp(std::int64_t ts_ms) const;
  // Retention: the index before which entries may be trimmed so the log keeps at most
  // `retain_bytes` of batch bytes (nullopt: no limit; scans the log once) and nothing newer than `min_timestamp_ms` is removed.
  // Never returns past `limit` (e.g. the commit index + 1).
  log_index retention_point(std::optional<std::uint64_t> retain_bytes,
                            std::optional<std::int64_t> min_timestamp_ms, log_index limit) const;
  // Bytes of LMDB pages the log occupies (batches plus B-tree overhead); cheap, for metrics.
  std::uint64_t size_bytes() const;

  PartitionLog(Storage* storage, std::string name, unsigned dbi, LogState state);

 private:
  friend class Writer;
  friend class Storage;
  Storage* storage_;
  std::string name_;
  unsigned dbi_;

  // Durable state, published by the writer after each commit.
  mutable std::mutex mu_;
  LogState state_;
  bool dropped_ = false;

  // Writer-thread-only: the state as of the last commit (the writer's scratch copy of it,
  // including the open group's writes, lives in the writer).
  LogState wstate_;
};

}  // namespace quorumq::storage
