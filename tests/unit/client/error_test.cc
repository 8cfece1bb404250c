#include <gtest/gtest.h>

#include "quorumq/error.h"
#include "quorumq/protocol/errors.h"

namespace quorumq {
namespace {

TEST(Errors, broker_errors_compare_with_the_public_enum) {
  const std::error_code ec = wire::make_error_code(wire::ErrorCode::not_leader);
  EXPECT_EQ(ec, make_error_code(BrokerError::not_leader));
  EXPECT_EQ(ec, BrokerError::not_leader);
  EXPECT_TRUE(is_retriable(ec));
  EXPECT_FALSE(is_retriable(BrokerError::message_too_large));
}

TEST(Errors, client_errors) {
  EXPECT_TRUE(is_retriable(ClientError::connection_lost));
  EXPECT_TRUE(is_retriable(ClientError::broker_unreachable));
  EXPECT_FALSE(is_retriable(ClientError::closed));
  EXPECT_FALSE(is_retriable(ClientError::invalid_config));
  Error e{make_error_code(ClientError::timed_out), "took too long"};
  EXPECT_EQ(e.to_string(), "took too long (quorumq.client:timed_out)");
  // Every client error has a name, never a bare number (issue 14: "(quorumq.client:8)").
  for (int v = 0; v <= static_cast<int>(ClientError::not_a_broker); ++v) {
    const auto s = Error{make_error_code(static_cast<ClientError>(v)), "m"}.to_string();
    EXPECT_EQ(s.find_first_of("0123456789"), std::string::npos) << s;
  }
  Error b{make_error_code(BrokerError::not_leader), "moved"};
  EXPECT_EQ(b.to_string(), "moved (" + std::string(broker_category().name()) + ":not_leader)");
}

}  // namespace
}  // namespace quorumq
