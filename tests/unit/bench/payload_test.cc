#include <gtest/gtest.h>

#include "payload.h"

namespace quorumq::bench {
namespace {

TEST(Payload, roundTripAndForeignMessagesAreSkipped) {
  std::string buf(100, 'x');
  write_payload_header(buf, {7, 3, 123456789012ull, -5});
  auto h = read_payload_header(buf, 7);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->producer, 3u);
  EXPECT_EQ(h->seq, 123456789012ull);
  EXPECT_EQ(h->intended_ns, -5);
  EXPECT_FALSE(read_payload_header(buf, 8));                 // another run
  EXPECT_FALSE(read_payload_header(buf.substr(0, 31), 7));   // too short
  EXPECT_FALSE(read_payload_header(std::string(100, 'x'), 7));
}

}  // namespace
}  // namespace quorumq::bench
