#include "kafka_batch.h"

#include <limits>
#include <utility>

#include "kafka_compression.h"
#include "quorumq/protocol/crc32c.h"

namespace quorumq::broker::kafka {

namespace {
bool fail(ConvertError& err, BatchCheck code, std::string message) {
  err.code = code;
  err.message = std::move(message);
  return false;
}
std::string_view as_sv(std::span<const std::uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}
}  // namespace

bool split_batches(std::span<const std::uint8_t> records, std::vector<std::span<const std::uint8_t>>& out,
                   ConvertError& err) {
  std::size_t at = 0;
  while (at < records.size()) {
    // A message set of magic 0 or 1 (old clients, Produce v0-2) has its magic at the same place.
    if (records.size() - at > 16 && records[at + 16] < 2)
      return fail(err, BatchCheck::unsupported_for_message_format,
                  "message format v" + std::to_string(records[at + 16]) +
                      " is not supported: use a client that sends RecordBatch v2 (Kafka 0.11+, librdkafka 0.11+)");
    Reader r(records.subspan(at));
    (void)r.i64();  // baseOffset
    const std::int32_t len = r.i32();
    if (r.fail() || len < static_cast<std::int32_t>(kRecordBatchHeaderSize - 12) ||
        static_cast<std::size_t>(len) > r.remaining())
      return fail(err, BatchCheck::corrupt_message,
                  "record batch at byte " + std::to_string(at) + " has a length that does not fit the request");
    const std::size_t total = 12 + static_cast<std::size_t>(len);
    out.push_back(records.subspan(at, total));
    at += total;
  }
  return true;
}

bool to_quorumq(std::span<const std::uint8_t> kb, std::vector<std::uint8_t>& out, ConvertError& err,
                std::size_t max_records_bytes) {
  if (kb.size() < 17)
    return fail(err, BatchCheck::corrupt_message, "record batch shorter than its header");
  const std::int8_t magic = static_cast<std::int8_t>(kb[16]);
  if (magic != 2)
    return fail(err, BatchCheck::unsupported_for_message_format,
                "message format v" + std::to_string(magic) + " is not supported: use a client that sends RecordBatch v2 "
                "(Kafka 0.11+, librdkafka 0.11+)");
  if (kb.size() < kRecordBatchHeaderSize)
    return fail(err, BatchCheck::corrupt_message, "record batch shorter than its header");
  Reader h(kb);
  (void)h.i64();
  const std::int32_t batch_length = h.i32();
  (void)h.i32();  // partitionLeaderEpoch: the leader's to fill
  (void)h.i8();
  const std::uint32_t crc = h.u32();
  const std::int16_t attributes = h.i16();
  const std::int32_t last_offset_delta = h.i32();
  const std::int64_t base_ts = h.i64();
  (void)h.i64();  // maxTimestamp: recomputed
  const std::int64_t producer_id = h.i64();
  const std::int16_t producer_epoch = h.i16();
  const std::int32_t base_sequence = h.i32();
  const std::int32_t count = h.i32();
  if (static_cast<std::size_t>(batch_length) + 12 != kb.size())
    return fail(err, BatchCheck::corrupt_message, "record batch length field disagrees with its size");
  if (crc32c(kb.data() + 21, kb.size() - 21) != crc)
    return fail(err, BatchCheck::corrupt_message, "record batch CRC-32C mismatch (corrupted in transit?)");
  const int codec = attributes & 0x7;
  if (codec > static_cast<int>(Codec::zstd))
    return fail(err, BatchCheck::unsupported_compression_type,
                "compression codec " + std::to_string(codec) + " is unknown (1 gzip, 2 snappy, 3 lz4, 4 zstd)");
  if (attributes & 0x10)
    return fail(err, BatchCheck::invalid_record, "transactional batches are not supported (quorumq has no transactions)");
  if (attributes & 0x20) return fail(err, BatchCheck::invalid_record, "control batches may not be produced");
  if (count <= 0 || last_offset_delta != count - 1)
    return fail(err, BatchCheck::invalid_record, "record count and lastOffsetDelta disagree (or the batch is empty)");
  // The records: as sent, or decompressed (never to more than max_records_bytes) and then
  // stored uncompressed.
  std::vector<std::uint8_t> plain;
  if (codec != 0) {
    std::string why;
    switch (decompress(codec, h.take(h.remaining()), max_records_bytes, plain, why)) {
      case Decompressed::ok: break;
      case Decompressed::too_large: return fail(err, BatchCheck::message_too_large, std::move(why));
      case Decompressed::unknown_codec: return fail(err, BatchCheck::unsupported_compression_type, std::move(why));
      case Decompressed::corrupt: return fail(err, BatchCheck::corrupt_message, std::move(why));
    }
    h = Reader(plain);
  }
  if (static_cast<std::size_t>(count) > h.remaining() / 7)  // a record takes at least 7 bytes
    return fail(err, BatchCheck::corrupt_message, "record count larger than the batch can hold");

  BatchBuilder b;
  // A quorumq record takes at most 24 bytes more than the Kafka one it comes from (fixed-width
  // lengths instead of varints): one allocation, no copies as the batch grows.
  b.reserve(kb.size() + static_cast<std::size_t>(count) * 24);
  std::vector<std::pair<std::string, std::string>> headers;
  for (std::int32_t i = 0; i < count; ++i) {
    const std::int32_t len = h.varint();
    if (h.fail() || len < 0 || static_cast<std::size_t>(len) > h.remaining())
      return fail(err, BatchCheck::corrupt_message, "record " + std::to_string(i) + " runs past the batch");
    Reader r(h.take(static_cast<std::size_t>(len)));
    (void)r.i8();  // record attributes: unused by Kafka
    const std::int64_t ts_delta = r.varlong();
    const std::int32_t offset_delta = r.varint();
    auto read_opt = [&r]() -> std::optional<std::string_view> {
      const std::int32_t n = r.varint();
      if (r.fail()) return std::nullopt;
      if (n < 0) {
        if (n != -1) r.set_fail();
        return std::nullopt;
      }
      return as_sv(r.take(static_cast<std::size_t>(n)));
    };
    const auto key = read_opt();
    const auto value = read_opt();
    const std::int32_t nh = r.varint();
    if (r.fail() || nh < 0 || static_cast<std::size_t>(nh) > r.remaining() / 2)
      return fail(err, BatchCheck::corrupt_message, "record " + std::to_string(i) + " is malformed");
    headers.clear();
    for (std::int32_t k = 0; k < nh && !r.fail(); ++k) {
      const auto hk = read_opt();
      if (!hk) r.set_fail();  // a header key is never null
      const auto hv = read_opt();
      if (hk && (hk->size() > std::numeric_limits<std::uint16_t>::max()))
        return fail(err, BatchCheck::invalid_record, "a record header key is longer than 65535 bytes");
      if (!r.fail()) headers.emplace_back(std::string(*hk), hv ? std::string(*hv) : std::string());
    }
    if (r.fail() || !r.done())
      return fail(err, BatchCheck::corrupt_message, "record " + std::to_string(i) + " is malformed");
    if (offset_delta != i)
      return fail(err, BatchCheck::invalid_record, "record offset deltas must run 0, 1, 2, ...");
    if (headers.size() > std::numeric_limits<std::uint16_t>::max())
      return fail(err, BatchCheck::invalid_record, "more than 65535 headers on one record");
    b.add(key, value, base_ts + ts_delta, headers);
  }
  if (!h.done()) return fail(err, BatchCheck::corrupt_message, "bytes left after the last record");
  out = b.finish(ProducerInfo{producer_id, producer_epoch, base_sequence});
  return true;
}

bool append_as_kafka(const BatchView& v, Writer& out) {
  const std::size_t start = out.size();
  const std::int64_t base = v.base_offset();
  const std::int64_t base_ts = v.first_timestamp_ms();
  out.i64(base);
  out.i32(0);  // batchLength, patched below
  const std::uint64_t term = v.term();
  out.i32(term > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())
              ? std::numeric_limits<std::int32_t>::max()
              : static_cast<std::int32_t>(term));
  out.i8(2);
  out.u32(0);  // crc, patched below
  out.i16(0);  // attributes: no compression, CreateTime, not transactional
  out.i32(static_cast<std::int32_t>(v.record_count()) - 1);
  out.i64(base_ts);
  out.i64(v.max_timestamp_ms());
  out.i64(v.producer_id());
  out.i16(v.producer_epoch());
  out.i32(v.base_sequence());
  out.i32(static_cast<std::int32_t>(v.record_count()));
  Writer rec;
  const bool ok = v.for_each_record([&](const RecordView& r) {
    rec.bytes().clear();
    rec.i8(0);
    rec.varlong(r.timestamp_ms - base_ts);
    rec.varint(static_cast<std::int32_t>(r.offset - base));
    auto put_opt = [&rec](const std::optional<std::string_view>& s) {
      if (!s) return rec.varint(-1);
      rec.varint(static_cast<std::int32_t>(s->size()));
      rec.raw({reinterpret_cast<const std::uint8_t*>(s->data()), s->size()});
    };
    put_opt(r.key);
    put_opt(r.value);
    rec.varint(r.header_count);
    r.for_each_header([&](std::string_view k, std::string_view val) {
      put_opt(k);
      put_opt(val);
    });
    out.varint(static_cast<std::int32_t>(rec.size()));
    out.raw(rec.bytes());
  });
  if (!ok) {
    out.bytes().resize(start);
    return false;
  }
  auto& b = out.bytes();
  out.patch_i32(start + 8, static_cast<std::int32_t>(b.size() - start - 12));
  out.patch_u32(start + 17, crc32c(b.data() + start + 21, b.size() - start - 21));
  return true;
}

}  // namespace quorumq::broker::kafka
