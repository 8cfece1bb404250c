// The CLI's output helpers (client/cli/output.cc): JSON strings that stay valid whatever bytes a
// message holds, and kcat-style --format strings.
#include <gtest/gtest.h>

#include "output.h"

namespace quorumq::cli {
namespace {

TEST(CliOutput, json_str_escapes_and_replaces_invalid_utf8) {
  EXPECT_EQ(json_str("a\"b\\c\nd\te"), R"("a\"b\\c\nd\te")");
  // Control characters are escaped; DEL needs no escape in JSON and stays as it is.
  EXPECT_EQ(json_str(std::string("\x01\x7f", 2)), std::string("\"\\u0001\x7f\""));
  EXPECT_EQ(json_str("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // Every byte that is not part of valid UTF-8 becomes one U+FFFD.
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(json_str("bad \xff \xc3"), "\"bad " + fffd + " " + fffd + "\"");
  EXPECT_EQ(json_str("\xc0\xaf"), "\"" + fffd + fffd + "\"") << "overlong form";
  EXPECT_EQ(json_str("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"") << "surrogate";
  EXPECT_EQ(json_str("\xe2\x82x"), "\"" + fffd + fffd + "x\"") << "cut sequence: one per byte";
  // Whatever went in, the line parses back.
  EXPECT_EQ(Json::parse(json_str("bad \xff")).get<std::string>(), "bad " + fffd);
}

TEST(CliOutput, message_json_has_every_field) {
  Message m{"t", 2, 7, std::nullopt, "v", {{"k", "x"}}, 123};
  EXPECT_EQ(message_json(m), R"({"topic":"t","partition":2,"offset":7,"timestamp_ms":123,"key":null,"value":"v",)"
                             R"("headers":[{"key":"k","value":"x"}]})");
}

TEST(CliOutput, record_format_fields_and_escapes) {
  std::string err;
  auto f = RecordFormat::parse("%t/%p/%o/%k/%v/%h/%T/%K/%S/%%\\t\\n", err);
  ASSERT_TRUE(f) << err;
  Message m{"t", 1, 9, std::string("key"), "value", {{"a", "1"}, {"b", "2"}}, 42};
  std::string out;
  f->append(out, m);
  EXPECT_EQ(out, "t/1/9/key/value/a=1,b=2/42/3/5/%\t\n");
  m.key.reset();
  out.clear();
  f->append(out, m);
  EXPECT_EQ(out, "t/1/9//value/a=1,b=2/42/-1/5/%\t\n");
}

TEST(CliOutput, record_format_refuses_what_it_does_not_know) {
  std::string err;
  EXPECT_FALSE(RecordFormat::parse("%x", err));
  EXPECT_NE(err.find("%x"), std::string::npos);
  EXPECT_FALSE(RecordFormat::parse("50%", err));
  EXPECT_FALSE(RecordFormat::parse("\\q", err));
  EXPECT_NE(err.find("\\q"), std::string::npos);
}

}  // namespace
}  // namespace quorumq::cli
