#include "quorumq/protocol/record_batch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace quorumq {
namespace {

struct Rec {
  std::int64_t offset;
  std::int64_t ts;
  std::optional<std::string> key, value;
  std::vector<std::pair<std::string, std::string>> headers;
};

std::vector<Rec> read_all(const BatchView& v) {
  std::vector<Rec> out;
  const bool ok = v.for_each_record([&](const RecordView& r) {
    Rec x{r.offset, r.timestamp_ms, {}, {}, {}};
    if (r.key) x.key = std::string(*r.key);
    if (r.value) x.value = std::string(*r.value);
    r.for_each_header([&](std::string_view k, std::string_view val) { x.headers.emplace_back(k, val); });
    out.push_back(std::move(x));
  });
  EXPECT_TRUE(ok);
  return out;
}

std::vector<std::uint8_t> three_records() {
  BatchBuilder b;
  const std::vector<std::pair<std::string, std::string>> h = {{"trace", "abc"}, {"", ""}};
  b.add(std::string_view("k1"), std::string_view("v1"), 100, h);
  b.add(std::nullopt, std::string_view(""), 90);
  b.add(std::string_view(""), std::nullopt, 120);
  return b.finish(ProducerInfo{42, 3, 17});
}

TEST(BatchBuilder, finish_roundTripsKeysValuesHeaders) {
  const auto bytes = three_records();
  BatchView v(bytes);
  ASSERT_EQ(v.validate(), BatchError::ok);
  EXPECT_EQ(v.record_count(), 3u);
  EXPECT_EQ(v.type(), BatchType::data);
  EXPECT_EQ(v.first_timestamp_ms(), 100);
  EXPECT_EQ(v.max_timestamp_ms(), 120);
  EXPECT_EQ(v.producer_id(), 42);
  EXPECT_EQ(v.producer_epoch(), 3);
  EXPECT_EQ(v.base_sequence(), 17);
  const auto recs = read_all(v);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].key, "k1");
  EXPECT_EQ(recs[0].value, "v1");
  ASSERT_EQ(recs[0].headers.size(), 2u);
  EXPECT_EQ(recs[0].headers[0], (std::pair<std::string, std::string>{"trace", "abc"}));
  EXPECT_EQ(recs[0].headers[1], (std::pair<std::string, std::string>{"", ""}));
  EXPECT_FALSE(recs[1].key.has_value());
  EXPECT_EQ(recs[1].value, "");  // empty is not null
  EXPECT_EQ(recs[2].key, "");
  EXPECT_FALSE(recs[2].value.has_value());
  EXPECT_EQ(recs[2].offset, 2);
}

TEST(BatchBuilder, recordSize_matchesBytesAdded) {
  BatchBuilder b;
  const std::vector<std::pair<std::string, std::string>> h = {{"a", "bcd"}};
  const std::size_t before = b.size_bytes();
  b.add(std::string_view("key"), std::string_view("value!"), 1, h);
  EXPECT_EQ(b.size_bytes() - before, BatchBuilder::record_size(3, 6, h));
}

TEST(StampBatch, stamp_keepsCrcValidAndShiftsOffsets) {
  auto bytes = three_records();
  stamp_batch(bytes, 1000, 7);
  BatchView v(bytes);
  EXPECT_EQ(v.validate(), BatchError::ok);
  EXPECT_EQ(v.base_offset(), 1000);
  EXPECT_EQ(v.term(), 7u);
  EXPECT_EQ(v.last_offset(), 1002);
  const auto recs = read_all(v);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].offset, 1000);
  EXPECT_EQ(recs[2].offset, 1002);
}

TEST(BatchView, validate_detectsEveryCoveredBitFlip) {
  const auto good = three_records();
  for (std::size_t i = kCrcStart * 8; i < good.size() * 8; ++i) {
    auto bad = good;
    bad[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    EXPECT_NE(BatchView(bad).validate(), BatchError::ok) << "bit " << i;
  }
  // A flip in the CRC field itself is a mismatch too.
  auto bad = good;
  bad[21] ^= 0x10;
  EXPECT_EQ(BatchView(bad).validate(), BatchError::crc_mismatch);
}

TEST(BatchView, validate_detectsTruncationAtEveryLength) {
  const auto good = three_records();
  for (std::size_t n = 0; n < good.size(); ++n) {
    const std::span<const std::uint8_t> cut(good.data(), n);
    const BatchError e = BatchView(cut).validate();
    EXPECT_NE(e, BatchError::ok) << n;
    if (n < kBatchHeaderSize) EXPECT_EQ(e, BatchError::too_short);
    else EXPECT_EQ(e, BatchError::length_mismatch);
  }
}

TEST(BatchView, validate_rejectsBadMagicAndType) {
  auto bytes = three_records();
  bytes[24] = 9;
  EXPECT_EQ(BatchView(bytes).validate(), BatchError::bad_magic);
  bytes = three_records();
  bytes[25] = 200;
  EXPECT_EQ(BatchView(bytes).validate(), BatchError::bad_type);
}

TEST(BatchView, forEachRecord_rejectsRecordRunningPastBatch) {
  auto bytes = three_records();
  // Inflate the first record's length: the records no longer fit.
  std::uint32_t len;
  std::memcpy(&len, bytes.data() + kBatchHeaderSize, 4);
  len += 1000;
  std::memcpy(bytes.data() + kBatchHeaderSize, &len, 4);
  EXPECT_FALSE(BatchView(bytes).for_each_record([](const RecordView&) {}));
}

TEST(PayloadBatch, makePayloadBatch_roundTrips) {
  const std::vector<std::uint8_t> payload = {1, 2, 3, 4, 5};
  const auto bytes = make_payload_batch(BatchType::config, payload);
  BatchView v(bytes);
  ASSERT_EQ(v.validate(), BatchError::ok);
  EXPECT_EQ(v.offset_count(), 0);
  const auto p = batch_payload(v);
  EXPECT_EQ(std::vector<std::uint8_t>(p.begin(), p.end()), payload);
}

TEST(BatchError, toString_nonEmptyForEveryValue) {
  for (int e = 0; e <= static_cast<int>(BatchError::malformed_records); ++e)
    EXPECT_GT(std::string(to_string(static_cast<BatchError>(e))).size(), 0u);
}

}  // namespace
}  // namespace quorumq
