// The record batch: the unit a producer sends, the log stores, a follower receives and a
// consumer fetches. One fixed little-endian header, then the records. Bytes travel unchanged
// from producer to disk to consumer; only base_offset and term are stamped by the leader.
//
// Header (64 bytes, little-endian):
//   0  i64 base_offset      stamped by the partition leader; not covered by the CRC
//   8  u64 term             Raft term of the entry (leader epoch); stamped; not covered
//  16  u32 batch_length     total bytes, header included; checked against the stored size
//  20  u32 crc32c           CRC32C over bytes [24, batch_length)
//  24  u8  magic            kBatchMagic
//  25  u8  type             BatchType
//  26  u16 attributes       reserved (compression later), must be 0
//  28  u32 record_count
//  32  i64 first_timestamp_ms
//  40  i64 max_timestamp_ms
//  48  i64 producer_id      -1: not idempotent
//  56  i16 producer_epoch
//  58  u16 reserved
//  60  i32 base_sequence    sequence of the first record (idempotent producers)
// Record (repeated record_count times):
//   u32 record_length (bytes after this field), u32 offset_delta, i64 timestamp_ms,
//   i32 key_length (-1 = null) + key, i32 value_length (-1 = null) + value,
//   u16 header_count, then per header: u16 key_length + key, u32 value_length + value.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quorumq {

static_assert(std::endian::native == std::endian::little, "quorumq assumes a little-endian host");

inline constexpr std::size_t kBatchHeaderSize = 64;
inline constexpr std::uint8_t kBatchMagic = 1;
inline constexpr std::size_t kCrcStart = 24;

enum class BatchType : std::uint8_t {
  data = 0,     // producer records: they get message offsets
  noop = 1,     // written by a new Raft leader (§8); no offsets
  config = 2,   // Raft membership; no offsets
  control = 3,  // internal state (offset commits, producer ids); no client-visible offsets
};

enum class BatchError : std::uint8_t {
  ok = 0,
  too_short,         // fewer bytes than a header
  length_mismatch,   // header length differs from the bytes given
  bad_magic,
  bad_type,
  crc_mismatch,
  malformed_records, // a record runs past the batch or counts disagree
};
const char* to_string(BatchError e) noexcept;

struct RecordHeaderView {
  std::string_view key;
  std::string_view value;
};

// A record inside a validated batch; views point into the batch bytes.
struct RecordView {
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::span<const std::uint8_t> headers_raw;  // decode with for_each_header
  std::uint16_t header_count = 0;

  template <typename F>
  void for_each_header(F&& f) const;
};

// Read-only view over one batch. Call validate() (or check) before trusting anything but the
// header's fixed fields.
class BatchView {
 public:
  BatchView() = default;
  explicit BatchView(std::span<const std::uint8_t> bytes) : b_(bytes) {}

  std::span<const std::uint8_t> bytes() const { return b_; }
  std::int64_t base_offset() const { return get<std::int64_t>(0); }
  std::uint64_t term() const { return get<std::uint64_t>(8); }
  std::uint32_t batch_length() const { return get<std::uint32_t>(16); }
  std::uint32_t crc() const { return get<std::uint32_t>(20); }
  std::uint8_t magic() const { return b_[24]; }
  BatchType type() const { return static_cast<BatchType>(b_[25]); }
  std::uint32_t record_count() const { return get<std::uint32_t>(28); }
  std::int64_t first_timestamp_ms() const { return get<std::int64_t>(32); }
  std::int64_t max_timestamp_ms() const { return get<std::int64_t>(40); }
  std::int64_t producer_id() const { return get<std::int64_t>(48); }
  std::int16_t producer_epoch() const { return get<std::int16_t>(56); }
  std::int32_t base_sequence() const { return get<std::int32_t>(60); }
  // Offsets this batch occupies: data batches one per record, others none.
  std::int64_t offset_count() const { return type() == BatchType::data ? record_count() : 0; }
  // Offset arithmetic wraps instead of overflowing: base_offset is outside the CRC and a hostile
  // peer may send INT64_MAX; validate() never trusts it, and storage stamps its own.
  std::int64_t last_offset() const {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(base_offset()) +
                                     static_cast<std::uint64_t>(offset_count()) - 1u);
  }

  // Structure and CRC. Never reads outside `bytes`.
  BatchError validate() const;
  // Calls f(RecordView) for each record; returns false (and stops) if the records are malformed.
  template <typename F>
  bool for_each_record(F&& f) const;

 private:
  template <typename T>
  T get(std::size_t at) const {
    T v;
    std::memcpy(&v, b_.data() + at, sizeof v);
    return v;
  }
  std::span<const std::uint8_t> b_;
};

// Rewrites base_offset and term in place; the CRC stays valid because it does not cover them.
void stamp_batch(std::span<std::uint8_t> batch, std::int64_t base_offset, std::uint64_t term);

struct ProducerInfo {
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = 0;
  std::int32_t base_sequence = 0;
};

// Builds one batch. Not thread-safe; reuse with reset().
class BatchBuilder {
 public:
  explicit BatchBuilder(BatchType type = BatchType::data);
  void reset(BatchType type = BatchType::data);
  // Room for `bytes` of batch (header included), so a large batch is not copied as it grows.
  void reserve(std::size_t bytes) { buf_.reserve(bytes); }
  void add(std::optional<std::string_view> key, std::optional<std::string_view> value,
           std::int64_t timestamp_ms,
           std::span<const std::pair<std::string, std::string>> headers = {});
  std::uint32_t record_count() const { return count_; }
  std::size_t size_bytes() const { return buf_.size(); }
  // Size a record would add, for batch-size limits before add().
  static std::size_t record_size(std::size_t key_len, std::size_t value_len,
                                 std::span<const std::pair<std::string, std::string>> headers);
  // Fills the header and CRC and hands the bytes out; the builder is empty afterwards.
  std::vector<std::uint8_t> finish(const ProducerInfo& producer = {});

 private:
  std::vector<std::uint8_t> buf_;
  BatchType type_;
  std::uint32_t count_ = 0;
  std::int64_t first_ts_ = 0;
  std::int64_t max_ts_ = 0;
};

// Builds a batch with no records (noop, config or control carry an opaque payload instead).
std::vector<std::uint8_t> make_payload_batch(BatchType type, std::span<const std::uint8_t> payload);
// The payload of a batch made by make_payload_batch.
std::span<const std::uint8_t> batch_payload(const BatchView& v);

// ---- inline ----
namespace detail {
inline bool read_u32(std::span<const std::uint8_t> b, std::size_t& at, std::uint32_t& out) {
  if (b.size() - at < 4) return false;
  std::memcpy(&out, b.data() + at, 4);
  at += 4;
  return true;
}
}  // namespace detail

template <typename F>
bool BatchView::for_each_record(F&& f) const {
  if (b_.size() < kBatchHeaderSize) return false;
  const std::size_t end = b_.size();
  std::size_t at = kBatchHeaderSize;
  const std::uint32_t n = record_count();
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t len;
    if (!detail::read_u32(b_, at, len)) return false;
    if (len > end - at) return false;
    const std::span<const std::uint8_t> r = b_.subspan(at, len);
    at += len;
    // Fixed part: offset_delta(4) timestamp(8) key_len(4)
    if (r.size() < 16) return false;
    RecordView rv;
    std::uint32_t delta;
    std::memcpy(&delta, r.data(), 4);
    rv.offset = static_cast<std::int64_t>(static_cast<std::uint64_t>(base_offset()) + delta);
    std::memcpy(&rv.timestamp_ms, r.data() + 4, 8);
    std::size_t p = 12;
    auto read_opt = [&](std::optional<std::string_view>& out) {
      std::int32_t l;
      if (r.size() - p < 4) return false;
      std::memcpy(&l, r.data() + p, 4);
      p += 4;
      if (l < 0) {
        if (l != -1) return false;
        out.reset();
        return true;
      }
      if (static_cast<std::size_t>(l) > r.size() - p) return false;
      out = std::string_view(reinterpret_cast<const char*>(r.data() + p), static_cast<std::size_t>(l));
      p += static_cast<std::size_t>(l);
      return true;
    };
    if (!read_opt(rv.key) || !read_opt(rv.value)) return false;
    if (r.size() - p < 2) return false;
    std::memcpy(&rv.header_count, r.data() + p, 2);
    p += 2;
    rv.headers_raw = r.subspan(p);
    // Headers must exactly fill the rest of the record.
    std::size_t hp = 0;
    const auto hr = rv.headers_raw;
    for (std::uint16_t h = 0; h < rv.header_count; ++h) {
      std::uint16_t kl;
      if (hr.size() - hp < 2) return false;
      std::memcpy(&kl, hr.data() + hp, 2);
      hp += 2;
      if (kl > hr.size() - hp) return false;
      hp += kl;
      std::uint32_t vl;
      if (hr.size() - hp < 4) return false;
      std::memcpy(&vl, hr.data() + hp, 4);
      hp += 4;
      if (vl > hr.size() - hp) return false;
      hp += vl;
    }
    if (hp != hr.size()) return false;
    f(static_cast<const RecordView&>(rv));
  }
  return at == end;
}

template <typename F>
void RecordView::for_each_header(F&& f) const {
  std::size_t hp = 0;
  for (std::uint16_t h = 0; h < header_count; ++h) {
    std::uint16_t kl;
    std::memcpy(&kl, headers_raw.data() + hp, 2);
    hp += 2;
    std::string_view k(reinterpret_cast<const char*>(headers_raw.data() + hp), kl);
    hp += kl;
    std::uint32_t vl;
    std::memcpy(&vl, headers_raw.data() + hp, 4);
    hp += 4;
    std::string_view v(reinterpret_cast<const char*>(headers_raw.data() + hp), vl);
    hp += vl;
    f(k, v);
  }
}

}  // namespace quorumq
