#include <gtest/gtest.h>

#include "quorumq/config.h"

namespace quorumq {
namespace {

TEST(Config, defaults_are_valid) {
  ProducerConfig p;
  EXPECT_FALSE(p.validate());
  EXPECT_EQ(p.acks, Acks::quorum);
  EXPECT_TRUE(p.enable_idempotence);
  ConsumerConfig c;
  c.group_id = "g";
  EXPECT_FALSE(c.validate());
  AdminConfig a;
  EXPECT_FALSE(a.validate());
}

TEST(Config, bootstrap_must_be_host_port_list) {
  AdminConfig a;
  for (const char* bad : {"", "host", "host:", ":9092", "h:0", "h:70000", "h:12x", ","}) {
    a.bootstrap = bad;
    auto e = a.validate();
    ASSERT_TRUE(e) << bad;
    EXPECT_EQ(e->code, make_error_code(ClientError::invalid_config));
    EXPECT_NE(e->message.find("bootstrap"), std::string::npos);
  }
  for (const char* good : {"h:1", "a:1,b:2", " a:1 , b:2 ", "[::1]:9092", "10.0.0.1:9092"}) {
    a.bootstrap = good;
    EXPECT_FALSE(a.validate()) << good;
  }
}

// A consumer without a group is valid (assign() only, like kcat without -G); subscribe() and
// commits say they need one (consumer.cc, tested with a broker in tests/integration).
TEST(Config, consumer_without_group_is_valid) {
  ConsumerConfig c;
  EXPECT_FALSE(c.validate());
}

TEST(Config, producer_limits_are_consistent) {
  ProducerConfig p;
  p.max_request_bytes = p.batch_bytes - 1;
  EXPECT_TRUE(p.validate());
  p = ProducerConfig{};
  p.max_in_flight = 0;
  EXPECT_TRUE(p.validate());
  p = ProducerConfig{};
  p.buffer_memory = 1024;
  EXPECT_TRUE(p.validate());
  p = ProducerConfig{};
  p.max_request_bytes = p.max_frame_bytes;
  EXPECT_TRUE(p.validate());
}

}  // namespace
}  // namespace quorumq
