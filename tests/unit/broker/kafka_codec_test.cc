// Kafka wire primitives and RecordBatch v2 conversion (issue 17): round trips, the exact byte
// layout of a batch, and refusals (each with the Kafka error code a client would get). Real
// Kafka clients check the same code end to end once the listener speaks Produce and Fetch.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "kafka_batch.h"
#include "kafka_group_requests.h"
#include "kafka_requests.h"
#include "kafka_wire.h"
#include "quorumq/protocol/crc32c.h"

namespace quorumq::broker::kafka {
namespace {

// What compressed records may decompress to (kafka_compression_test.cc tests the limit).
constexpr std::size_t kMaxRecords = 4 << 20;

TEST(KafkaWire, primitivesRoundTrip) {
  Writer w;
  w.i8(-5);
  w.i16(-2);
  w.i32(std::numeric_limits<std::int32_t>::min());
  w.i64(std::numeric_limits<std::int64_t>::max());
  for (std::int32_t v : {0, 1, -1, 63, -64, 64, 300, std::numeric_limits<std::int32_t>::max(),
                         std::numeric_limits<std::int32_t>::min()})
    w.varint(v);
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, std::numeric_limits<std::int64_t>::max(),
                         std::numeric_limits<std::int64_t>::min()})
    w.varlong(v);
  w.string("topic");
  w.nullable_string(std::nullopt);
  w.compact_string("cs");
  w.compact_nullable_string(std::nullopt);
  const std::uint8_t raw[3] = {1, 2, 3};
  w.bytes(raw);
  w.nullable_bytes(std::nullopt);
  w.array_length(2);
  w.compact_array_length(3);
  w.empty_tagged_fields();

  Reader r(w.bytes());
  EXPECT_EQ(r.i8(), -5);
  EXPECT_EQ(r.i16(), -2);
  EXPECT_EQ(r.i32(), std::numeric_limits<std::int32_t>::min());
  EXPECT_EQ(r.i64(), std::numeric_limits<std::int64_t>::max());
  for (std::int32_t v : {0, 1, -1, 63, -64, 64, 300, std::numeric_limits<std::int32_t>::max(),
                         std::numeric_limits<std::int32_t>::min()})
    EXPECT_EQ(r.varint(), v);
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, std::numeric_limits<std::int64_t>::max(),
                         std::numeric_limits<std::int64_t>::min()})
    EXPECT_EQ(r.varlong(), v);
  EXPECT_EQ(r.string(), "topic");
  EXPECT_FALSE(r.nullable_string().has_value());
  EXPECT_EQ(r.compact_string(), "cs");
  EXPECT_FALSE(r.compact_nullable_string().has_value());
  auto b = r.nullable_bytes();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->size(), 3u);
  EXPECT_FALSE(r.nullable_bytes().has_value());
  EXPECT_FALSE(r.fail());
  EXPECT_EQ(r.array_length(), 2) << "2 elements fit the 2 bytes left";
  EXPECT_EQ(r.compact_array_length(), std::nullopt) << "3 elements cannot fit the 1 byte left";
  EXPECT_TRUE(r.fail());
}

TEST(KafkaWire, exactBytes) {
  Writer w;
  w.i32(0x01020304);
  w.varint(-1);   // zigzag 1
  w.varint(150);  // zigzag 300 = 0xAC 0x02
  w.string("ab");
  const std::vector<std::uint8_t> want{1, 2, 3, 4, 0x01, 0xAC, 0x02, 0, 2, 'a', 'b'};
  EXPECT_EQ(w.bytes(), want);
}

TEST(KafkaWire, hostileLengthsFailInsteadOfReading) {
  {
    const std::vector<std::uint8_t> b{0x00, 0x10, 'x'};  // string of 16 bytes, 1 present
    Reader r(b);
    (void)r.string();
    EXPECT_TRUE(r.fail());
  }
  {
    const std::vector<std::uint8_t> b{0xFF, 0xFE};  // string length -2
    Reader r(b);
    (void)r.nullable_string();
    EXPECT_TRUE(r.fail());
  }
  {
    const std::vector<std::uint8_t> b{0x7F, 0xFF, 0xFF, 0xFF, 1, 2};  // array of 2^31-1 elements
    Reader r(b);
    EXPECT_FALSE(r.array_length().has_value());
    EXPECT_TRUE(r.fail());
  }
  {
    const std::vector<std::uint8_t> b{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};  // varint of 6 bytes
    Reader r(b);
    (void)r.uvarint();
    EXPECT_TRUE(r.fail());
  }
  {
    const std::vector<std::uint8_t> b{0x05, 0x01};  // 5 tagged fields, 1 byte left
    Reader r(b);
    r.skip_tagged_fields();
    EXPECT_TRUE(r.fail());
  }
  Reader empty({});
  EXPECT_EQ(empty.i64(), 0);
  EXPECT_TRUE(empty.fail());
}

std::vector<std::uint8_t> sample_batch() {
  BatchBuilder b;
  const std::vector<std::pair<std::string, std::string>> h{{"trace", "abc"}, {"empty", ""}};
  b.add("k1", "value one", 1700000000000, h);
  b.add(std::nullopt, "value two", 1700000000005);
  b.add("k3", std::nullopt, 1699999999990);
  auto bytes = b.finish(ProducerInfo{77, 3, 41});
  stamp_batch(bytes, 1000, 9);
  return bytes;
}

TEST(KafkaBatch, quorumqBatchAsKafkaHasTheV2Layout) {
  const auto q = sample_batch();
  Writer w;
  ASSERT_TRUE(append_as_kafka(BatchView(q), w));
  const auto& k = w.bytes();
  Reader r(k);
  EXPECT_EQ(r.i64(), 1000);                                      // baseOffset
  EXPECT_EQ(r.i32(), static_cast<std::int32_t>(k.size() - 12));  // batchLength
  EXPECT_EQ(r.i32(), 9);                                         // partitionLeaderEpoch = term
  EXPECT_EQ(r.i8(), 2);                                          // magic
  EXPECT_EQ(r.u32(), crc32c(k.data() + 21, k.size() - 21));      // CRC-32C over attributes..end
  EXPECT_EQ(r.i16(), 0);                                         // attributes
  EXPECT_EQ(r.i32(), 2);                                         // lastOffsetDelta
  EXPECT_EQ(r.i64(), 1700000000000);                             // baseTimestamp (first record)
  EXPECT_EQ(r.i64(), 1700000000005);                             // maxTimestamp
  EXPECT_EQ(r.i64(), 77);
  EXPECT_EQ(r.i16(), 3);
  EXPECT_EQ(r.i32(), 41);
  EXPECT_EQ(r.i32(), 3);  // records
  // First record: attributes 0, timestampDelta 0, offsetDelta 0, key "k1", value, 2 headers.
  const std::int32_t len = r.varint();
  Reader rec(r.take(static_cast<std::size_t>(len)));
  EXPECT_EQ(rec.i8(), 0);
  EXPECT_EQ(rec.varlong(), 0);
  EXPECT_EQ(rec.varint(), 0);
  EXPECT_EQ(rec.varint(), 2);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(rec.take(2).data()), 2), "k1");
  EXPECT_EQ(rec.varint(), 9);
  rec.take(9);
  EXPECT_EQ(rec.varint(), 2);
  EXPECT_FALSE(rec.fail());
}

TEST(KafkaBatch, roundTripKeepsRecordsAndProducer) {
  const auto q = sample_batch();
  Writer w;
  ASSERT_TRUE(append_as_kafka(BatchView(q), w));
  std::vector<std::uint8_t> back;
  ConvertError err;
  ASSERT_TRUE(to_quorumq(w.bytes(), back, err, kMaxRecords)) << err.message;
  BatchView a(q), b(back);
  ASSERT_EQ(b.validate(), BatchError::ok);
  EXPECT_EQ(b.producer_id(), 77);
  EXPECT_EQ(b.producer_epoch(), 3);
  EXPECT_EQ(b.base_sequence(), 41);
  EXPECT_EQ(b.record_count(), 3u);
  std::vector<std::string> x, y;
  auto dump = [](std::vector<std::string>& out) {
    return [&out](const RecordView& r) {
      std::string s = std::to_string(r.offset) + "@" + std::to_string(r.timestamp_ms) + " " +
                      (r.key ? "k=" + std::string(*r.key) : "k=null") + " " +
                      (r.value ? "v=" + std::string(*r.value) : "v=null");
      r.for_each_header([&s](std::string_view k, std::string_view v) { s += " " + std::string(k) + ":" + std::string(v); });
      out.push_back(s);
    };
  };
  ASSERT_TRUE(a.for_each_record(dump(x)));
  ASSERT_TRUE(b.for_each_record(dump(y)));
  // Offsets are relative until the leader stamps the converted batch.
  for (auto& s : x) s = std::to_string(std::stoll(s.substr(0, s.find('@'))) - 1000) + s.substr(s.find('@'));
  EXPECT_EQ(x, y);
}

TEST(KafkaBatch, refusalsCarryKafkaCodes) {
  const auto q = sample_batch();
  Writer w;
  ASSERT_TRUE(append_as_kafka(BatchView(q), w));
  auto expect = [](std::vector<std::uint8_t> k, BatchCheck code, const char* what) {
    std::vector<std::uint8_t> out;
    ConvertError err;
    EXPECT_FALSE(to_quorumq(k, out, err, kMaxRecords)) << what;
    EXPECT_EQ(err.code, code) << what << ": " << err.message;
    EXPECT_FALSE(err.message.empty());
  };
  auto fix_crc = [](std::vector<std::uint8_t>& k) {
    const std::uint32_t c = crc32c(k.data() + 21, k.size() - 21);
    for (int i = 0; i < 4; ++i) k[17 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(c >> (8 * (3 - i)));
  };
  auto k = w.bytes();
  k.back() ^= 1;
  expect(k, BatchCheck::corrupt_message, "flipped bit");
  k = w.bytes();
  k[16] = 1;
  expect(k, BatchCheck::unsupported_for_message_format, "magic 1");
  k = w.bytes();
  k[22] |= 0x02;  // snappy, but the records are not snappy data
  fix_crc(k);
  expect(k, BatchCheck::corrupt_message, "claims snappy");
  k = w.bytes();
  k[22] |= 0x05;  // no such codec
  fix_crc(k);
  expect(k, BatchCheck::unsupported_compression_type, "codec 5");
  k = w.bytes();
  k[22] |= 0x10;
  fix_crc(k);
  expect(k, BatchCheck::invalid_record, "transactional");
  k = w.bytes();
  k[26] = 5;  // lastOffsetDelta 5 for 3 records
  fix_crc(k);
  expect(k, BatchCheck::invalid_record, "lastOffsetDelta");
  k = w.bytes();
  k.resize(k.size() - 3);
  expect(k, BatchCheck::corrupt_message, "truncated");
  std::vector<std::span<const std::uint8_t>> parts;
  ConvertError err;
  auto two = w.bytes();
  two.insert(two.end(), w.bytes().begin(), w.bytes().end());
  ASSERT_TRUE(split_batches(two, parts, err));
  EXPECT_EQ(parts.size(), 2u);
  two.push_back(0);
  parts.clear();
  EXPECT_FALSE(split_batches(two, parts, err));
  // A v0 message set (what a Produce v0-2 of an old client carries), even one too short for a
  // RecordBatch header: the old format's code, not CORRUPT_MESSAGE.
  const std::vector<std::uint8_t> v0{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 14, 1, 2, 3, 4, 0, 0,
                                     0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  parts.clear();
  EXPECT_FALSE(split_batches(v0, parts, err));
  EXPECT_EQ(err.code, BatchCheck::unsupported_for_message_format) << err.message;
}

// Random damage never crashes the decoder (the fuzz target fuzz_kafka_batch goes further).
TEST(KafkaBatch, randomDamageIsRefusedOrConverted) {
  const auto q = sample_batch();
  Writer w;
  ASSERT_TRUE(append_as_kafka(BatchView(q), w));
  std::mt19937 rng(99);
  for (int i = 0; i < 5000; ++i) {
    auto k = w.bytes();
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) k[rng() % k.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 3 == 0) k.resize(rng() % k.size());
    std::vector<std::uint8_t> out;
    ConvertError err;
    if (to_quorumq(k, out, err, kMaxRecords)) {
      EXPECT_EQ(BatchView(out).validate(), BatchError::ok);
    } else {
      EXPECT_NE(err.code, BatchCheck::ok);
    }
  }
}

// Requests captured from kcat (librdkafka 2.0.2), kafka-python 2.0.2 and confluent-kafka on the
// wire (tests/fuzz/seeds/fuzz_kafka_request, also the fuzzer's seeds): each decodes whole.
TEST(KafkaRequests, realClientRequestsDecode) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(QUORUMQ_KAFKA_REQUEST_SEEDS)) {
    std::ifstream f(e.path(), std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Reader r(bytes);
    RequestHeader h;
    ASSERT_TRUE(parse_header(r, h)) << e.path();
    bool ok = false;
    switch (h.key) {
      case api::api_versions: { ApiVersionsRequest q; ok = parse_api_versions(r, h.version, q); break; }
      case api::metadata: { MetadataRequest q; ok = parse_metadata(r, h.version, 100, q); break; }
      case api::produce: {
        ProduceRequest q;
        ok = parse_produce(r, h.version, 100, q);
        // Its one batch converts, CRC and all.
        ASSERT_TRUE(ok && q.topics.size() == 1 && q.topics[0].partitions.size() == 1) << e.path();
        std::vector<std::span<const std::uint8_t>> parts;
        std::vector<std::uint8_t> out;
        ConvertError err;
        ASSERT_TRUE(split_batches(*q.topics[0].partitions[0].records, parts, err)) << err.message;
        ASSERT_EQ(parts.size(), 1u);
        EXPECT_TRUE(to_quorumq(parts[0], out, err, kMaxRecords)) << e.path() << ": " << err.message;
        break;
      }
      case api::fetch: { FetchRequest q; ok = parse_fetch(r, h.version, 100, q); break; }
      case api::list_offsets: { ListOffsetsRequest q; ok = parse_list_offsets(r, h.version, 100, q); break; }
      case api::init_producer_id: { InitProducerIdRequest q; ok = parse_init_producer_id(r, h.version, q); break; }
      case api::find_coordinator: {
        FindCoordinatorRequest q;
        ok = parse_find_coordinator(r, h.version, q) && !q.key.empty();
        break;
      }
      case api::join_group: {
        JoinGroupRequest q;
        ok = parse_join_group(r, h.version, 100, q) && q.protocol_type == "consumer" && !q.protocols.empty();
        // The member's subscription (the consumer protocol's metadata) names the topic it reads.
        std::vector<std::string_view> topics;
        if (ok) {
          EXPECT_TRUE(parse_subscription(q.protocols[0].metadata, 100, topics) && topics.size() == 1) << e.path();
        }
        break;
      }
      case api::sync_group: {
        SyncGroupRequest q;
        ok = parse_sync_group(r, h.version, 100, q);
        // The leader's assignment (it is the only member) decodes to partitions of its topic.
        ASSERT_TRUE(ok && q.assignments.size() == 1) << e.path();
        std::vector<TopicPartitions> parts;
        EXPECT_TRUE(parse_assignment(q.assignments[0].assignment, 100, parts) && parts.size() == 1 &&
                    !parts[0].partitions.empty())
            << e.path();
        break;
      }
      case api::heartbeat: { HeartbeatRequest q; ok = parse_heartbeat(r, h.version, q); break; }
      case api::leave_group: {
        LeaveGroupRequest q;
        ok = parse_leave_group(r, h.version, 100, q) && q.member_ids.size() == 1;
        break;
      }
      case api::offset_commit: {
        OffsetCommitRequest q;
        ok = parse_offset_commit(r, h.version, 100, q) && !q.topics.empty();
        break;
      }
      case api::offset_fetch: { OffsetFetchRequest q; ok = parse_offset_fetch(r, h.version, 100, q); break; }
      case api::list_groups: ok = parse_list_groups(r, h.version); break;
      case api::describe_groups: {
        DescribeGroupsRequest q;
        ok = parse_describe_groups(r, h.version, 100, q) && q.groups.size() == 1;
        break;
      }
      case api::create_topics: {
        CreateTopicsRequest q;
        ok = parse_create_topics(r, h.version, 100, q) && q.topics.size() == 1 && q.topics[0].partitions == 1;
        break;
      }
      case api::delete_topics: {
        DeleteTopicsRequest q;
        ok = parse_delete_topics(r, h.version, 100, q) && q.topics.size() == 1;
        break;
      }
      case api::describe_configs: {
        DescribeConfigsRequest q;
        ok = parse_describe_configs(r, h.version, 100, q) && q.resources.size() == 1 && q.resources[0].type == 2;
        break;
      }
      default: FAIL() << e.path() << ": api " << h.key;
    }
    EXPECT_TRUE(ok) << e.path() << " (api " << h.key << " v" << h.version << ")";
    ++n;
  }
  EXPECT_GE(n, 30);
}

// Group requests: what one request may name is bounded, and the consumer protocol's
// assignment round-trips.
TEST(KafkaRequests, groupRequestLimitsAndAssignmentRoundTrip) {
  Writer j;  // JoinGroup v1 with 3 protocols
  j.string("g");
  j.i32(10000);
  j.i32(30000);
  j.string("");
  j.string("consumer");
  j.array_length(3);
  for (const char* p : {"range", "roundrobin", "cooperative-sticky"}) {
    j.string(p);
    j.bytes({});
  }
  {
    Reader r(j.bytes());
    JoinGroupRequest q;
    EXPECT_FALSE(parse_join_group(r, 1, 2, q));
  }
  {
    Reader r(j.bytes());
    JoinGroupRequest q;
    ASSERT_TRUE(parse_join_group(r, 1, 3, q));
    EXPECT_EQ(q.protocols.size(), 3u);
    EXPECT_EQ(q.rebalance_timeout_ms, 30000);
  }
  // The same bytes at v5 lack GroupInstanceId: refused, not misread.
  {
    Reader r(j.bytes());
    JoinGroupRequest q;
    EXPECT_FALSE(parse_join_group(r, 5, 3, q));
  }
  Writer a;
  write_assignment(a, {{"t", {0, 2, 4}}, {"u", {1}}});
  std::vector<TopicPartitions> parts;
  ASSERT_TRUE(parse_assignment(a.bytes(), 10, parts));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].topic, "t");
  EXPECT_EQ(parts[0].partitions, (std::vector<std::int32_t>{0, 2, 4}));
  EXPECT_EQ(parts[1].topic, "u");
  parts.clear();
  EXPECT_FALSE(parse_assignment(a.bytes(), 3, parts)) << "4 partitions over a limit of 3";
  // An OffsetCommit v2 whose partitions run past the end.
  Writer c;
  c.string("g");
  c.i32(1);
  c.string("m");
  c.i64(-1);
  c.array_length(1);
  c.string("t");
  c.array_length(5);
  c.i32(0);
  Reader r(c.bytes());
  OffsetCommitRequest q;
  EXPECT_FALSE(parse_offset_commit(r, 2, 100, q));
}

TEST(KafkaRequests, limitsAndTruncationRefuse) {
  // Metadata v1 naming 3 topics with a limit of 2; then a Produce cut in its records.
  Writer w;
  w.array_length(3);
  for (const char* t : {"a", "b", "c"}) w.string(t);
  {
    Reader r(w.bytes());
    MetadataRequest q;
    EXPECT_FALSE(parse_metadata(r, 1, 2, q));
  }
  {
    Reader r(w.bytes());
    MetadataRequest q;
    EXPECT_TRUE(parse_metadata(r, 1, 3, q));
    ASSERT_TRUE(q.topics);
    EXPECT_EQ(q.topics->size(), 3u);
  }
  Writer p;
  p.nullable_string(std::nullopt);
  p.i16(-1);
  p.i32(30000);
  p.array_length(1);
  p.string("t");
  p.array_length(1);
  p.i32(0);
  p.i32(100);  // 100 bytes of records announced, 2 present
  p.i16(0);
  Reader r(p.bytes());
  ProduceRequest q;
  EXPECT_FALSE(parse_produce(r, 7, 10, q));
}

}  // namespace
}  // namespace quorumq::broker::kafka
