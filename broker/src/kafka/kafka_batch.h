// Kafka's RecordBatch v2 (magic 2) <-> quorumq's record batch (protocol/record_batch.h).
//
// The log stores quorumq batches, so a Kafka produce is converted on the way in (after its
// CRC-32C and structure are checked) and a Kafka fetch gets each stored batch re-encoded on the
// way out, with a fresh CRC. What maps: producer id, epoch and base sequence (idempotence keeps
// working across protocols), per-record timestamps, keys, values, headers, offsets. What has no
// home in a quorumq batch: the timestamp type (always CreateTime here), record attributes
// (unused by Kafka), null header values (stored as empty), partitionLeaderEpoch (filled from
// the Raft term on the way out), the compression codec (batches are stored and fetched
// uncompressed).
//
// RecordBatch v2 (big-endian):
//   0 baseOffset i64 | 8 batchLength i32 (bytes after this field) | 12 partitionLeaderEpoch i32
//   16 magic i8 = 2 | 17 crc u32: CRC-32C of bytes [21, end) | 21 attributes i16
//   23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64
//   51 producerEpoch i16 | 53 baseSequence i32 | 57 recordCount i32 | 61 records
// Record: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//   keyLength varint (-1 null) + key, valueLength varint (-1 null) + value,
//   header count varint, per header: keyLength varint + key, valueLength varint (-1 null) + value.
// Attributes: bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), bit 3 timestamp
// type (1 LogAppendTime), bit 4 transactional, bit 5 control.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kafka_wire.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::broker::kafka {

inline constexpr std::size_t kRecordBatchHeaderSize = 61;

// Kafka error codes the batch checks answer with.
enum class BatchCheck : std::int16_t {
  ok = 0,
  corrupt_message = 2,                   // CRC mismatch, lengths that do not add up, bad compressed data
  message_too_large = 10,                // compressed records that decompress past the limit
  unsupported_for_message_format = 43,   // magic 0 or 1 (message sets of old clients)
  unsupported_compression_type = 76,     // codecs 5-7
  invalid_record = 87,                   // transactional or control batches, offsets out of order
};

struct ConvertError {
  BatchCheck code = BatchCheck::ok;
  std::string message;
};

// Splits the `records` field of a produce request into its batches (views into `records`).
// Fails on a batch whose length runs past the end, on trailing bytes (CORRUPT_MESSAGE), or on a
// message set of magic 0 or 1 (UNSUPPORTED_FOR_MESSAGE_FORMAT).
bool split_batches(std::span<const std::uint8_t> records, std::vector<std::span<const std::uint8_t>>& out,
                   ConvertError& err);

// One Kafka RecordBatch v2 to a quorumq data batch. Checks magic, CRC-32C, lengths, every
// record, offset deltas 0..n-1 and lastOffsetDelta; refuses transactional and control batches
// (with the Kafka code to answer). A compressed batch (gzip, snappy, lz4, zstd) is decompressed
// (kafka_compression.h) and stored uncompressed; its records may not decompress to more than
// max_records_bytes (MESSAGE_TOO_LARGE, and nothing larger is ever allocated); data the codec
// cannot decode is CORRUPT_MESSAGE, codecs 5-7 UNSUPPORTED_COMPRESSION_TYPE. The limit applies
// to decompressed records only: an uncompressed batch is already in memory, and the produce path
// checks the converted batch against max.message.bytes either way.
bool to_quorumq(std::span<const std::uint8_t> kafka_batch, std::vector<std::uint8_t>& out, ConvertError& err,
                std::size_t max_records_bytes);

// Appends a stored (validated) quorumq data batch as a Kafka RecordBatch v2, with its base
// offset, the Raft term as partitionLeaderEpoch and a fresh CRC-32C. Returns false (writing
// nothing) if the batch's records do not decode.
bool append_as_kafka(const BatchView& batch, Writer& out);

}  // namespace quorumq::broker::kafka
