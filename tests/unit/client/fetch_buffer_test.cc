// Decoding fetched batches: skip below the position, stop at max, detect corruption.
#include <gtest/gtest.h>

#include "fetch_buffer.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::client {
namespace {

std::vector<std::uint8_t> batch(std::int64_t base, int n, BatchType type = BatchType::data) {
  BatchBuilder b(type);
  std::vector<std::pair<std::string, std::string>> headers{{"h", "v"}};
  for (int i = 0; i < n; ++i)
    b.add(std::string("k") + std::to_string(base + i), "v" + std::to_string(base + i), 1000 + base + i, headers);
  auto bytes = b.finish();
  stamp_batch(bytes, base, 1);
  return bytes;
}

std::vector<std::uint8_t> concat(std::initializer_list<std::vector<std::uint8_t>> parts) {
  std::vector<std::uint8_t> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(ScanBatches, whole_batches_and_next_offset) {
  auto bytes = concat({batch(10, 3), batch(13, 2)});
  auto r = scan_batches(bytes, 10);
  EXPECT_EQ(r.valid_bytes, bytes.size());
  EXPECT_EQ(r.next_fetch_offset, 15);
  EXPECT_FALSE(r.corrupt);
}

// Regression (chaos seed 1493811554: 1,936 acknowledged messages never read): an answer to an
// earlier fetch of a partition that was revoked and given back arrived after the new position
// was looked up; its data started past that position and the consumer jumped over the gap.
TEST(ScanBatches, data_past_the_fetch_offset_is_a_gap_not_an_answer) {
  auto bytes = concat({batch(52004, 3)});
  auto r = scan_batches(bytes, 51989);
  EXPECT_EQ(r.valid_bytes, 0u);
  EXPECT_EQ(r.next_fetch_offset, 51989);
  EXPECT_TRUE(r.corrupt);
  EXPECT_NE(r.error.find("gap"), std::string::npos);
}

TEST(ScanBatches, partial_trailing_batch_is_left_out) {
  auto a = batch(0, 2);
  auto bytes = concat({a, batch(2, 2)});
  bytes.resize(bytes.size() - 5);
  auto r = scan_batches(bytes, 0);
  EXPECT_EQ(r.valid_bytes, a.size());
  EXPECT_EQ(r.next_fetch_offset, 2);
}

TEST(ScanBatches, corrupt_batch_is_detected) {
  auto bytes = concat({batch(0, 2), batch(2, 2)});
  bytes[bytes.size() - 3] ^= 0x40;
  auto r = scan_batches(bytes, 0);
  EXPECT_TRUE(r.corrupt);
  EXPECT_EQ(r.next_fetch_offset, 2);
  EXPECT_FALSE(r.error.empty());
}

TEST(DecodeRecords, skips_records_below_position) {
  auto bytes = batch(100, 5);
  std::vector<Message> out;
  std::int64_t pos = 102;
  auto end = decode_records(bytes, 0, pos, 100, "t", 3, out);
  EXPECT_EQ(end, bytes.size());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].offset, 102);
  EXPECT_EQ(out[0].partition, 3);
  EXPECT_EQ(out[0].key, "k102");
  EXPECT_EQ(out[0].value, "v102");
  EXPECT_EQ(out[0].timestamp_ms, 1102);
  ASSERT_EQ(out[0].headers.size(), 1u);
  EXPECT_EQ(out[0].headers[0].first, "h");
  EXPECT_EQ(pos, 105);
}

TEST(DecodeRecords, stops_at_max_inside_a_batch_and_resumes) {
  auto bytes = concat({batch(0, 4), batch(4, 4)});
  std::vector<Message> out;
  std::int64_t pos = 0;
  auto at = decode_records(bytes, 0, pos, 3, "t", 0, out);
  EXPECT_EQ(at, 0u);
  EXPECT_EQ(pos, 3);
  out.clear();
  at = decode_records(bytes, at, pos, 3, "t", 0, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].offset, 3);
  EXPECT_EQ(out[2].offset, 5);
  out.clear();
  at = decode_records(bytes, at, pos, 100, "t", 0, out);
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(at, bytes.size());
  EXPECT_EQ(pos, 8);
}

TEST(DecodeRecords, skips_non_data_batches) {
  auto noop = make_payload_batch(BatchType::noop, {});
  stamp_batch(noop, 5, 2);
  auto bytes = concat({batch(3, 2), noop, batch(5, 1)});
  std::vector<Message> out;
  std::int64_t pos = 3;
  decode_records(bytes, 0, pos, 100, "t", 0, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].offset, 5);
  EXPECT_EQ(scan_batches(bytes, 3).next_fetch_offset, 6);
}

}  // namespace
}  // namespace quorumq::client
