#include "kafka_wire.h"

#include <bit>

namespace quorumq::broker::kafka {

namespace {
template <typename T>
T load_be(const std::uint8_t* p) {
  using U = std::make_unsigned_t<T>;
  U v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<U>((v << 8) | p[i]);
  return static_cast<T>(v);
}
template <typename T>
void store_be(std::vector<std::uint8_t>& b, T v) {
  using U = std::make_unsigned_t<T>;
  const U u = static_cast<U>(v);
  for (std::size_t i = sizeof(T); i-- > 0;) b.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
}
}  // namespace

bool Reader::need(std::size_t n) {
  if (fail_ || b_.size() - at_ < n) {
    fail_ = true;
    return false;
  }
  return true;
}

std::int8_t Reader::i8() {
  if (!need(1)) return 0;
  return static_cast<std::int8_t>(b_[at_++]);
}
std::int16_t Reader::i16() {
  if (!need(2)) return 0;
  const auto v = load_be<std::int16_t>(b_.data() + at_);
  at_ += 2;
  return v;
}
std::int32_t Reader::i32() {
  if (!need(4)) return 0;
  const auto v = load_be<std::int32_t>(b_.data() + at_);
  at_ += 4;
  return v;
}
std::uint32_t Reader::u32() { return static_cast<std::uint32_t>(i32()); }
std::int64_t Reader::i64() {
  if (!need(8)) return 0;
  const auto v = load_be<std::int64_t>(b_.data() + at_);
  at_ += 8;
  return v;
}

std::uint64_t Reader::uvarlong() {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (!need(1)) return 0;
    const std::uint8_t byte = b_[at_++];
    if (shift == 63 && (byte & 0x7E) != 0) break;  // more than 64 bits
    v |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return v;
  }
  fail_ = true;
  return 0;
}
std::uint32_t Reader::uvarint() {
  std::uint32_t v = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (!need(1)) return 0;
    const std::uint8_t byte = b_[at_++];
    if (shift == 28 && (byte & 0x70) != 0) break;  // more than 32 bits
    v |= static_cast<std::uint32_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return v;
  }
  fail_ = true;
  return 0;
}
std::int32_t Reader::varint() {
  const std::uint32_t u = uvarint();
  return static_cast<std::int32_t>((u >> 1) ^ (~(u & 1) + 1));
}
std::int64_t Reader::varlong() {
  const std::uint64_t u = uvarlong();
  return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

std::span<const std::uint8_t> Reader::take(std::size_t n) {
  if (!need(n)) return {};
  auto s = b_.subspan(at_, n);
  at_ += n;
  return s;
}

std::optional<std::string_view> Reader::nullable_string() {
  const std::int16_t n = i16();
  if (fail_) return std::nullopt;
  if (n < 0) {
    if (n != -1) fail_ = true;
    return std::nullopt;
  }
  const auto s = take(static_cast<std::size_t>(n));
  return std::string_view(reinterpret_cast<const char*>(s.data()), s.size());
}
std::string_view Reader::string() {
  auto s = nullable_string();
  if (!s) {
    fail_ = true;
    return {};
  }
  return *s;
}
std::optional<std::string_view> Reader::compact_nullable_string() {
  const std::uint32_t n = uvarint();
  if (fail_ || n == 0) return std::nullopt;
  const auto s = take(n - 1);
  return std::string_view(reinterpret_cast<const char*>(s.data()), s.size());
}
std::string_view Reader::compact_string() {
  auto s = compact_nullable_string();
  if (!s) {
    fail_ = true;
    return {};
  }
  return *s;
}
std::optional<std::span<const std::uint8_t>> Reader::nullable_bytes() {
  const std::int32_t n = i32();
  if (fail_) return std::nullopt;
  if (n < 0) {
    if (n != -1) fail_ = true;
    return std::nullopt;
  }
  auto s = take(static_cast<std::size_t>(n));
  if (fail_) return std::nullopt;
  return s;
}
std::optional<std::span<const std::uint8_t>> Reader::compact_nullable_bytes() {
  const std::uint32_t n = uvarint();
  if (fail_ || n == 0) return std::nullopt;
  auto s = take(n - 1);
  if (fail_) return std::nullopt;
  return s;
}
std::optional<std::int32_t> Reader::array_length() {
  const std::int32_t n = i32();
  if (fail_) return std::nullopt;
  if (n < 0) {
    if (n != -1) fail_ = true;
    return std::nullopt;
  }
  if (static_cast<std::size_t>(n) > remaining()) {
    fail_ = true;
    return std::nullopt;
  }
  return n;
}
std::optional<std::int32_t> Reader::compact_array_length() {
  const std::uint32_t n = uvarint();
  if (fail_ || n == 0) return std::nullopt;
  if (n - 1 > remaining() || n - 1 > 0x7FFFFFFFu) {
    fail_ = true;
    return std::nullopt;
  }
  return static_cast<std::int32_t>(n - 1);
}
void Reader::skip_tagged_fields() {
  const std::uint32_t n = uvarint();
  if (fail_ || n > remaining()) {
    fail_ = true;
    return;
  }
  for (std::uint32_t i = 0; i < n && !fail_; ++i) {
    (void)uvarint();  // tag
    const std::uint32_t size = uvarint();
    take(size);
  }
}

void Writer::i16(std::int16_t v) { store_be(b_, v); }
void Writer::i32(std::int32_t v) { store_be(b_, v); }
void Writer::i64(std::int64_t v) { store_be(b_, v); }
void Writer::u32(std::uint32_t v) { store_be(b_, v); }
void Writer::uvarlong(std::uint64_t v) {
  while (v >= 0x80) {
    b_.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  b_.push_back(static_cast<std::uint8_t>(v));
}
void Writer::uvarint(std::uint32_t v) { uvarlong(v); }
void Writer::varint(std::int32_t v) {
  uvarint((static_cast<std::uint32_t>(v) << 1) ^ static_cast<std::uint32_t>(v >> 31));
}
void Writer::varlong(std::int64_t v) {
  uvarlong((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}
void Writer::string(std::string_view s) {
  i16(static_cast<std::int16_t>(s.size()));
  raw({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}
void Writer::nullable_string(std::optional<std::string_view> s) {
  if (!s) return i16(-1);
  string(*s);
}
void Writer::compact_string(std::string_view s) {
  uvarint(static_cast<std::uint32_t>(s.size()) + 1);
  raw({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}
void Writer::compact_nullable_string(std::optional<std::string_view> s) {
  if (!s) return uvarint(0);
  compact_string(*s);
}
void Writer::bytes(std::span<const std::uint8_t> s) {
  i32(static_cast<std::int32_t>(s.size()));
  raw(s);
}
void Writer::nullable_bytes(std::optional<std::span<const std::uint8_t>> s) {
  if (!s) return i32(-1);
  bytes(*s);
}
void Writer::compact_bytes(std::span<const std::uint8_t> s) {
  uvarint(static_cast<std::uint32_t>(s.size()) + 1);
  raw(s);
}
void Writer::patch_u32(std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b_[at + i] = static_cast<std::uint8_t>(v >> (8 * (3 - i)));
}
void Writer::patch_i32(std::size_t at, std::int32_t v) { patch_u32(at, static_cast<std::uint32_t>(v)); }

std::size_t varint_size(std::int64_t v) {
  std::uint64_t u = (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
  std::size_t n = 1;
  while (u >= 0x80) {
    u >>= 7;
    ++n;
  }
  return n;
}

}  // namespace quorumq::broker::kafka
