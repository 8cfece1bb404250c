#include "quorumq/protocol/errors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

namespace quorumq::wire {
namespace {

TEST(ErrorCode, errorMessage_nonEmptyAndDistinctForEveryCode) {
  std::set<std::string> seen;
  for (int i = static_cast<int>(ErrorCode::MIN); i <= static_cast<int>(ErrorCode::MAX); ++i) {
    const auto e = static_cast<ErrorCode>(i);
    ASSERT_TRUE(is_known(e));
    const char* m = error_message(e);
    ASSERT_NE(m, nullptr);
    EXPECT_GT(std::strlen(m), 5u) << error_name(e);
    EXPECT_TRUE(seen.insert(m).second) << "duplicate message for " << error_name(e);
    EXPECT_STRNE(error_name(e), "");
  }
  EXPECT_EQ(static_cast<int>(ErrorCode::MAX), 38);
}

TEST(ErrorCode, errorMessage_unknownValueStillSaysSomething) {
  const auto e = static_cast<ErrorCode>(500);
  EXPECT_FALSE(is_known(e));
  EXPECT_GT(std::strlen(error_message(e)), 0u);
  EXPECT_STREQ(error_name(e), "unknown_code");
  EXPECT_FALSE(is_retriable(e));
}

TEST(ErrorCode, isRetriable_exactlyTheDocumentedSet) {
  const std::set<ErrorCode> retriable = {
      ErrorCode::not_leader,          ErrorCode::leader_not_available,
      ErrorCode::request_timed_out,   ErrorCode::not_enough_replicas,
      ErrorCode::coordinator_not_available, ErrorCode::not_coordinator,
      ErrorCode::disk_full,           ErrorCode::broker_shutting_down,
      ErrorCode::throttled};
  for (int i = static_cast<int>(ErrorCode::MIN); i <= static_cast<int>(ErrorCode::MAX); ++i) {
    const auto e = static_cast<ErrorCode>(i);
    EXPECT_EQ(is_retriable(e), retriable.count(e) == 1) << error_name(e);
  }
}

TEST(ErrorCode, makeErrorCode_usesWireCategory) {
  const std::error_code ec = ErrorCode::not_leader;
  EXPECT_EQ(&ec.category(), &wire_category());
  EXPECT_STREQ(ec.category().name(), "quorumq.wire");
  EXPECT_EQ(ec.message(), error_message(ErrorCode::not_leader));
  EXPECT_TRUE(ec);
  EXPECT_FALSE(std::error_code(ErrorCode::none).message().empty());
}

}  // namespace
}  // namespace quorumq::wire
