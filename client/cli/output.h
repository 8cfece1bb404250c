// What the CLI prints: JSON lines, kcat-style record formats, and the stdout discipline.
//
// Stdout discipline: output is written through std::cout and flushed whenever the CLI is about
// to wait (for the next input line, an acknowledgement, a poll), so nothing printed sits in a
// buffer while the CLI waits — a pipe reader sees each message as soon as it is acknowledged or
// consumed — while a flood of messages still goes out in large writes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <quorumq/types.h>

namespace quorumq::cli {

// `s` as a JSON string literal (quotes included). Bytes that are not valid UTF-8 become U+FFFD,
// so every line is valid JSON whatever the message holds.
std::string json_str(std::string_view s);

// Builds one JSON object: {"a":1,"b":"x"} in the order the fields are added.
class JsonObject {
 public:
  JsonObject& str(std::string_view key, std::string_view value);
  JsonObject& opt_str(std::string_view key, const std::optional<std::string>& value);  // null if absent
  JsonObject& num(std::string_view key, std::int64_t value);
  JsonObject& opt_num(std::string_view key, std::optional<std::int64_t> value);  // null if absent
  JsonObject& boolean(std::string_view key, bool value);
  JsonObject& raw(std::string_view key, std::string_view json);  // an already encoded value
  std::string done() const { return body_.empty() ? "{}" : body_ + "}"; }

 private:
  void key(std::string_view k);
  std::string body_;
};

// [1,2,3]
std::string json_int_array(const std::vector<std::int32_t>& v);
// A JSON array of already encoded values.
std::string json_array(const std::vector<std::string>& encoded);

// One consumed message as a JSON line (without the newline).
std::string message_json(const Message& m);

// kcat -f style format: %t topic, %p partition, %o offset, %k key, %v value, %h headers
// (k=v,k=v), %T timestamp (ms), %K key length (-1: no key), %S value length, %% a percent;
// escapes \n \t \r \\ \0.
class RecordFormat {
 public:
  // nullopt + `error` set if the format is invalid.
  static std::optional<RecordFormat> parse(std::string_view fmt, std::string& error);
  void append(std::string& out, const Message& m) const;

 private:
  struct Piece {
    char field = 0;  // 0: literal
    std::string literal;
  };
  std::vector<Piece> pieces_;
};

}  // namespace quorumq::cli
