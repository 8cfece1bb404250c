// What the CLI prints: JSON lines (nlohmann-json), kcat-style record formats, and the stdout discipline.
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

#include <nlohmann/json.hpp>
#include <quorumq/types.h>

namespace quorumq::cli {

// JSON output goes through nlohmann-json. ordered_json keeps the keys in the order they are
// set, which is the order the CLI has always printed them in.
using Json = nlohmann::ordered_json;

// `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD (one per
// byte), so every line is valid JSON whatever a message or name holds.
std::string valid_utf8(std::string_view s);
// A JSON string value holding valid_utf8(s).
Json json_string(std::string_view s);
// An integer, or null if absent.
Json json_opt(std::optional<std::int64_t> v);
// One JSON document on one line (no newline), compact.
std::string dump(const Json& j);

// `s` as a JSON string literal (quotes included).
std::string json_str(std::string_view s);

// One consumed message as a JSON object: topic, partition, offset, timestamp_ms, key (null if
// none), value, headers [{key, value}...].
Json message_json_value(const Message& m);
// The same as one JSON line (without the newline).
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
