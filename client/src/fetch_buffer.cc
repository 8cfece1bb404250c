#include "fetch_buffer.h"

#include <algorithm>

#include "quorumq/protocol/record_batch.h"

namespace quorumq::client {

ScanResult scan_batches(std::span<const std::uint8_t> bytes, std::int64_t fetch_offset) {
  ScanResult r;
  r.next_fetch_offset = fetch_offset;
  std::size_t pos = 0;
  while (bytes.size() - pos >= kBatchHeaderSize) {
    const BatchView head(bytes.subspan(pos, kBatchHeaderSize));
    const std::uint32_t len = head.batch_length();
    if (len < kBatchHeaderSize) {
      r.corrupt = true;
      r.error = "batch length " + std::to_string(len) + " below the header size";
      break;
    }
    if (len > bytes.size() - pos) break;  // a partial trailing batch: fetched again next time
    const BatchView v(bytes.subspan(pos, len));
    if (const auto e = v.validate(); e != BatchError::ok) {
      r.corrupt = true;
      r.error = std::string("batch at offset ") + std::to_string(v.base_offset()) + " is invalid: " + to_string(e);
      break;
    }
    if (v.type() == BatchType::data && v.record_count() > 0) {
      // Offsets are contiguous: data starting past the next offset we need is not an answer to
      // this fetch (a stale one) — taking it would skip records silently.
      if (fetch_offset >= 0 && v.base_offset() > r.next_fetch_offset) {
        r.corrupt = true;
        r.error = "fetched data starts at offset " + std::to_string(v.base_offset()) + ", expected " +
                  std::to_string(r.next_fetch_offset) + " (gap); will fetch it again";
        break;
      }
      r.next_fetch_offset = std::max(r.next_fetch_offset, v.last_offset() + 1);
    }
    pos += len;
  }
  r.valid_bytes = pos;
  return r;
}

std::size_t decode_records(std::span<const std::uint8_t> bytes, std::size_t pos, std::int64_t& position,
                           std::size_t max, const std::string& topic, std::int32_t partition,
                           std::vector<Message>& out) {
  while (pos + kBatchHeaderSize <= bytes.size() && out.size() < max) {
    const BatchView head(bytes.subspan(pos, kBatchHeaderSize));
    const std::uint32_t len = head.batch_length();
    if (len < kBatchHeaderSize || len > bytes.size() - pos) return bytes.size();  // scan_batches excluded these
    const BatchView v(bytes.subspan(pos, len));
    if (v.type() != BatchType::data || v.record_count() == 0 || v.last_offset() < position) {
      pos += len;
      continue;
    }
    bool left_over = false;
    v.for_each_record([&](const RecordView& rec) {
      if (rec.offset < position) return;
      if (out.size() >= max) {
        left_over = true;
        return;
      }
      Message m;
      m.topic = topic;
      m.partition = partition;
      m.offset = rec.offset;
      m.timestamp_ms = rec.timestamp_ms;
      if (rec.key) m.key = std::string(*rec.key);
      if (rec.value) m.value = std::string(*rec.value);
      if (rec.header_count > 0) {
        m.headers.reserve(rec.header_count);
        rec.for_each_header([&](std::string_view k, std::string_view hv) { m.headers.emplace_back(k, hv); });
      }
      out.push_back(std::move(m));
      position = rec.offset + 1;
    });
    if (left_over) return pos;
    pos += len;
  }
  return pos;
}

}  // namespace quorumq::client
