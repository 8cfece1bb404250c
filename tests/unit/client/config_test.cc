#include <gtest/gtest.h>

#include "quorumq/config.h"

namespace quorumq {
namespace {

TEST(Config, defaults_are_valid) {
  ProducerConfig p;
  EXPECT_TRUE(p.validate().has_value());
  EXPECT_EQ(p.acks, Acks::quorum);
  EXPECT_TRUE(p.enable_idempotence);
  ConsumerConfig c;
  c.group_id = "g";
  EXPECT_TRUE(c.validate().has_value());
  AdminConfig a;
  EXPECT_TRUE(a.validate().has_value());
}

TEST(Config, bootstrap_must_be_host_port_list) {
  AdminConfig a;
  for (const char* bad : {"", "host", "host:", ":9092", "h:0", "h:70000", "h:12x", ","}) {
    a.bootstrap = bad;
    auto r = a.validate();
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, make_error_code(ClientError::invalid_config));
    EXPECT_NE(r.error().message.find("bootstrap"), std::string::npos);
  }
  for (const char* good : {"h:1", "a:1,b:2", " a:1 , b:2 ", "[::1]:9092", "10.0.0.1:9092"}) {
    a.bootstrap = good;
    EXPECT_TRUE(a.validate().has_value()) << good;
  }
}

// A consumer without a group is valid (assign() only, like kcat without -G); subscribe() and
// commits say they need one (consumer.cc, tested with a broker in tests/integration).
TEST(Config, consumer_without_group_is_valid) {
  ConsumerConfig c;
  EXPECT_TRUE(c.validate().has_value());
}

TEST(Config, producer_limits_are_consistent) {
  ProducerConfig p;
  p.max_request_bytes = p.batch_bytes - 1;
  EXPECT_FALSE(p.validate().has_value());
  p = ProducerConfig{};
  p.max_in_flight = 0;
  EXPECT_FALSE(p.validate().has_value());
  p = ProducerConfig{};
  p.buffer_memory = 1024;
  EXPECT_FALSE(p.validate().has_value());
  p = ProducerConfig{};
  p.max_request_bytes = p.max_frame_bytes;
  EXPECT_FALSE(p.validate().has_value());
}

}  // namespace
}  // namespace quorumq
