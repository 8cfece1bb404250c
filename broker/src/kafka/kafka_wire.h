// Kafka's wire primitives (issue 17, the Kafka listener): big-endian integers, varints, strings,
// bytes and arrays in their classic and compact ("flexible") forms, tagged fields.
//
// The reader never trusts a length: every read is checked against what is left, a failed read
// sets fail() and every later read returns a zero value, so a decoder reads a whole message and
// checks once at the end. Array counts are bounded by the bytes left (an element takes at least
// one byte), so a hostile count cannot make a decoder reserve memory it was not sent.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quorumq::broker::kafka {

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : b_(bytes) {}

  bool fail() const { return fail_; }
  bool done() const { return !fail_ && at_ == b_.size(); }
  std::size_t remaining() const { return fail_ ? 0 : b_.size() - at_; }
  std::size_t position() const { return at_; }

  std::int8_t i8();
  std::int16_t i16();
  std::int32_t i32();
  std::int64_t i64();
  std::uint32_t u32();
  bool boolean() { return i8() != 0; }
  std::uint32_t uvarint();   // unsigned LEB128, at most 5 bytes
  std::int32_t varint();     // zigzag
  std::uint64_t uvarlong();  // unsigned LEB128, at most 10 bytes
  std::int64_t varlong();    // zigzag

  // int16 length; -1 is null (nullopt). The view points into the bytes.
  std::optional<std::string_view> nullable_string();
  std::string_view string();  // null is an error here
  // uvarint length + 1; 0 is null.
  std::optional<std::string_view> compact_nullable_string();
  std::string_view compact_string();
  // int32 length; -1 is null.
  std::optional<std::span<const std::uint8_t>> nullable_bytes();
  std::optional<std::span<const std::uint8_t>> compact_nullable_bytes();
  // Element count of an array: int32 (-1: null, returned as nullopt) / uvarint count + 1.
  // A count larger than the bytes left fails the reader.
  std::optional<std::int32_t> array_length();
  std::optional<std::int32_t> compact_array_length();
  // Skips a tagged-field section (flexible versions): uvarint count, then (tag, size, bytes).
  void skip_tagged_fields();
  std::span<const std::uint8_t> take(std::size_t n);
  void set_fail() { fail_ = true; }

 private:
  bool need(std::size_t n);
  std::span<const std::uint8_t> b_;
  std::size_t at_ = 0;
  bool fail_ = false;
};

class Writer {
 public:
  std::vector<std::uint8_t>& bytes() { return b_; }
  std::size_t size() const { return b_.size(); }
  void reserve(std::size_t n) { b_.reserve(n); }

  void i8(std::int8_t v) { b_.push_back(static_cast<std::uint8_t>(v)); }
  void i16(std::int16_t v);
  void i32(std::int32_t v);
  void i64(std::int64_t v);
  void u32(std::uint32_t v);
  void boolean(bool v) { i8(v ? 1 : 0); }
  void uvarint(std::uint32_t v);
  void varint(std::int32_t v);
  void uvarlong(std::uint64_t v);
  void varlong(std::int64_t v);
  void string(std::string_view s);  // int16 length
  void nullable_string(std::optional<std::string_view> s);
  void compact_string(std::string_view s);
  void compact_nullable_string(std::optional<std::string_view> s);
  void bytes(std::span<const std::uint8_t> s);  // int32 length
  void nullable_bytes(std::optional<std::span<const std::uint8_t>> s);
  void compact_bytes(std::span<const std::uint8_t> s);
  void array_length(std::int32_t n) { i32(n); }
  void compact_array_length(std::int32_t n) { uvarint(static_cast<std::uint32_t>(n) + 1); }
  void empty_tagged_fields() { uvarint(0); }
  void raw(std::span<const std::uint8_t> s) { b_.insert(b_.end(), s.begin(), s.end()); }
  // Overwrites 4 bytes at `at` with a big-endian int32 (a size or a CRC filled in afterwards).
  void patch_i32(std::size_t at, std::int32_t v);
  void patch_u32(std::size_t at, std::uint32_t v);

 private:
  std::vector<std::uint8_t> b_;
};

// Bytes a zigzag varint of v takes.
std::size_t varint_size(std::int64_t v);

}  // namespace quorumq::broker::kafka
