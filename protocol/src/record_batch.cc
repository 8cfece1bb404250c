#include "quorumq/protocol/record_batch.h"

#include "quorumq/protocol/assert.h"
#include "quorumq/protocol/crc32c.h"

namespace quorumq {

const char* to_string(BatchError e) noexcept {
  switch (e) {
    case BatchError::ok: return "ok";
    case BatchError::too_short: return "batch shorter than its header";
    case BatchError::length_mismatch: return "batch length field disagrees with its size";
    case BatchError::bad_magic: return "unknown batch format (magic)";
    case BatchError::bad_type: return "unknown batch type";
    case BatchError::crc_mismatch: return "CRC32C mismatch (corrupt batch)";
    case BatchError::malformed_records: return "malformed records inside batch";
  }
  return "unknown batch error";
}

BatchError BatchView::validate() const {
  if (b_.size() < kBatchHeaderSize) return BatchError::too_short;
  if (batch_length() != b_.size()) return BatchError::length_mismatch;
  if (magic() != kBatchMagic) return BatchError::bad_magic;
  if (b_[25] > static_cast<std::uint8_t>(BatchType::control)) return BatchError::bad_type;
  if (crc32c(b_.data() + kCrcStart, b_.size() - kCrcStart) != crc()) return BatchError::crc_mismatch;
  if (type() == BatchType::data) {
    std::uint32_t seen = 0;
    if (!for_each_record([&](const RecordView&) { ++seen; }) || seen != record_count())
      return BatchError::malformed_records;
  } else if (record_count() != 0) {
    return BatchError::malformed_records;
  }
  return BatchError::ok;
}

void stamp_batch(std::span<std::uint8_t> batch, std::int64_t base_offset, std::uint64_t term) {
  QQ_ASSERT(batch.size() >= kBatchHeaderSize);
  std::memcpy(batch.data(), &base_offset, 8);
  std::memcpy(batch.data() + 8, &term, 8);
}

namespace {
template <typename T>
void put(std::vector<std::uint8_t>& b, T v) {
  const auto at = b.size();
  b.resize(at + sizeof v);
  std::memcpy(b.data() + at, &v, sizeof v);
}
template <typename T>
void put_at(std::vector<std::uint8_t>& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
void put_bytes(std::vector<std::uint8_t>& b, std::string_view s) {
  b.insert(b.end(), s.begin(), s.end());
}
void fill_header(std::vector<std::uint8_t>& b, BatchType type, std::uint32_t count,
                 std::int64_t first_ts, std::int64_t max_ts, const ProducerInfo& p) {
  QQ_ASSERT(b.size() >= kBatchHeaderSize && b.size() <= 0xFFFFFFFFu);
  put_at<std::int64_t>(b, 0, 0);
  put_at<std::uint64_t>(b, 8, 0);
  put_at<std::uint32_t>(b, 16, static_cast<std::uint32_t>(b.size()));
  b[24] = kBatchMagic;
  b[25] = static_cast<std::uint8_t>(type);
  put_at<std::uint16_t>(b, 26, 0);
  put_at<std::uint32_t>(b, 28, count);
  put_at<std::int64_t>(b, 32, first_ts);
  put_at<std::int64_t>(b, 40, max_ts);
  put_at<std::int64_t>(b, 48, p.producer_id);
  put_at<std::int16_t>(b, 56, p.producer_epoch);
  put_at<std::uint16_t>(b, 58, 0);
  put_at<std::int32_t>(b, 60, p.base_sequence);
  put_at<std::uint32_t>(b, 20, crc32c(b.data() + kCrcStart, b.size() - kCrcStart));
}
}  // namespace

BatchBuilder::BatchBuilder(BatchType type) { reset(type); }

void BatchBuilder::reset(BatchType type) {
  buf_.clear();
  buf_.resize(kBatchHeaderSize);
  type_ = type;
  count_ = 0;
  first_ts_ = max_ts_ = 0;
}

std::size_t BatchBuilder::record_size(std::size_t key_len, std::size_t value_len,
                                      std::span<const std::pair<std::string, std::string>> headers) {
  std::size_t n = 4 + 4 + 8 + 4 + key_len + 4 + value_len + 2;
  for (const auto& [k, v] : headers) n += 2 + k.size() + 4 + v.size();
  return n;
}

void BatchBuilder::add(std::optional<std::string_view> key, std::optional<std::string_view> value,
                       std::int64_t timestamp_ms,
                       std::span<const std::pair<std::string, std::string>> headers) {
  QQ_ASSERT(headers.size() <= 0xFFFF);
  const std::size_t start = buf_.size();
  put<std::uint32_t>(buf_, 0);  // length, patched below
  put<std::uint32_t>(buf_, count_);
  put<std::int64_t>(buf_, timestamp_ms);
  put<std::int32_t>(buf_, key ? static_cast<std::int32_t>(key->size()) : -1);
  if (key) put_bytes(buf_, *key);
  put<std::int32_t>(buf_, value ? static_cast<std::int32_t>(value->size()) : -1);
  if (value) put_bytes(buf_, *value);
  put<std::uint16_t>(buf_, static_cast<std::uint16_t>(headers.size()));
  for (const auto& [k, v] : headers) {
    QQ_ASSERT(k.size() <= 0xFFFF);
    put<std::uint16_t>(buf_, static_cast<std::uint16_t>(k.size()));
    put_bytes(buf_, k);
    put<std::uint32_t>(buf_, static_cast<std::uint32_t>(v.size()));
    put_bytes(buf_, v);
  }
  put_at<std::uint32_t>(buf_, start, static_cast<std::uint32_t>(buf_.size() - start - 4));
  if (count_ == 0) first_ts_ = max_ts_ = timestamp_ms;
  if (timestamp_ms > max_ts_) max_ts_ = timestamp_ms;
  ++count_;
}

std::vector<std::uint8_t> BatchBuilder::finish(const ProducerInfo& producer) {
  fill_header(buf_, type_, count_, first_ts_, max_ts_, producer);
  std::vector<std::uint8_t> out = std::move(buf_);
  reset(type_);
  return out;
}

std::vector<std::uint8_t> make_payload_batch(BatchType type, std::span<const std::uint8_t> payload) {
  QQ_ASSERT(type != BatchType::data);
  // Sized once and copied into (vector::insert here trips GCC 12's -Warray-bounds at -O2).
  std::vector<std::uint8_t> b(kBatchHeaderSize + payload.size());
  if (!payload.empty()) std::memcpy(b.data() + kBatchHeaderSize, payload.data(), payload.size());
  fill_header(b, type, 0, 0, 0, ProducerInfo{});
  return b;
}

std::span<const std::uint8_t> batch_payload(const BatchView& v) {
  return v.bytes().subspan(kBatchHeaderSize);
}

}  // namespace quorumq
