// Corruption: a bit flipped inside a stored batch is found by the CRC on read and reported as
// errc::corrupt naming the partition and offset; the batch is never served; others still read.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "test_util.h"

namespace quorumq::storage::test {
namespace {

// Flips one bit in every copy of `needle` in `file` (LMDB's copy-on-write may leave stale copies
// in free pages; the live one is among them). Returns how many copies it changed.
int flip_bit_in_all_copies(const fs::path& file, const std::string& needle) {
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  int n = 0;
  for (auto at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 1)) {
    bytes[at + needle.size() / 2] ^= 0x10;
    ++n;
  }
  std::ofstream out(file, std::ios::binary | std::ios::in | std::ios::out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return n;
}

TEST(CorruptionTest, read_flippedBitIsCorruptErrorNamingPartitionAndOffset) {
  TempDir dir;
  const std::string marker = "UNIQUE-PAYLOAD-5d1c9e27-the-one-to-damage";
  {
    auto s = open_storage(dir.path);
    PartitionLog* log = open_log(*s, "orders-3");
    append(*s, log, {data_batch("first", 2)});
    BatchBuilder b;
    b.add(std::nullopt, "before", 1000);
    b.add(std::nullopt, marker, 1000);  // offsets 2..3
    append(*s, log, {b.finish()});
    append(*s, log, {data_batch("last", 2)});
  }
  ASSERT_GE(flip_bit_in_all_copies(dir.path / "data.mdb", marker), 1);

  auto s = open_storage(dir.path);
  ASSERT_TRUE(s) << "a damaged record must not stop the broker from opening";
  PartitionLog* log = open_log(*s, "orders-3");
  auto bad = log->read(offset_t{2}, 1u << 20, offset_t{100});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::corrupt);
  EXPECT_NE(bad.error().message.find("orders-3"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("offset 2"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("CRC"), std::string::npos) << bad.error().message;
  EXPECT_EQ(log->read(offset_t{3}, 1u << 20, offset_t{100}).error().code, errc::corrupt);
  // Batches before it are served (the read ends early), batches after it are served.
  auto head = log->read(offset_t{0}, 1u << 20, offset_t{100});
  ASSERT_TRUE(head);
  EXPECT_EQ(head->batches, 1u);
  EXPECT_EQ(head->next_offset, offset_t{2});
  auto tail = log->read(offset_t{4}, 1u << 20, offset_t{100});
  ASSERT_TRUE(tail);
  EXPECT_EQ(records_of(tail->bytes), (std::vector<Rec>{{4, "last-0"}, {5, "last-1"}}));
  // Raft's path reports it too.
  auto es = log->entries(log_index{2}, log_index{2}, 1u << 20);
  ASSERT_FALSE(es);
  EXPECT_EQ(es.error().code, errc::corrupt);
  EXPECT_NE(es.error().message.find("orders-3"), std::string::npos);
  // The storage keeps working.
  EXPECT_EQ(append(*s, log, {data_batch("more", 1)}).base_offset, offset_t{6});
}

// The background check after a restart (PartitionLog::verify) finds the damaged entry and says
// which; reading headers only (for the producer table) does not need the payload to be whole.
TEST(CorruptionTest, verify_findsTheDamagedEntryInSteps_headersStillReadable) {
  TempDir dir;
  const std::string marker = "UNIQUE-PAYLOAD-7a0c31f4-verify-finds-me";
  {
    auto s = open_storage(dir.path);
    PartitionLog* log = open_log(*s, "orders-4");
    for (int i = 0; i < 5; ++i) append(*s, log, {data_batch("pad" + std::to_string(i), 2)});  // indexes 1..5
    BatchBuilder b;
    b.add(std::nullopt, marker, 1000);
    append(*s, log, {b.finish()});  // index 6
    append(*s, log, {data_batch("after", 2)});  // index 7
  }
  ASSERT_GE(flip_bit_in_all_copies(dir.path / "data.mdb", marker), 1);
  auto s = open_storage(dir.path);
  PartitionLog* log = open_log(*s, "orders-4");

  // Small steps: each stops after about max_bytes and says where to go on.
  log_index at{1};
  std::size_t steps = 0, bytes = 0;
  std::optional<log_index> damaged;
  while (at <= log_index{7} && !damaged && steps < 100) {
    auto r = log->verify(at, log_index{7}, 1);
    ASSERT_TRUE(r) << r.error().message;
    ++steps;
    bytes += r->bytes;
    damaged = r->damaged;
    if (!damaged) {
      ASSERT_GT(r->next, at) << "a step that checks nothing would never end";
    } else {
      EXPECT_EQ(r->next, *damaged) << "the damaged entry is where checking stopped";
    }
    at = r->next;
  }
  ASSERT_TRUE(damaged);
  EXPECT_EQ(*damaged, log_index{6});
  EXPECT_EQ(steps, 6u) << "one entry per step with max_bytes 1, the damaged one ends the check";
  EXPECT_GT(bytes, 0u);
  // A range after the damage checks clean; one step over everything stops at the damage.
  auto rest = log->verify(log_index{7}, log_index{7}, 1u << 20);
  ASSERT_TRUE(rest);
  EXPECT_FALSE(rest->damaged);
  EXPECT_EQ(rest->next, log_index{8});
  auto all = log->verify(log_index{1}, log_index{7}, 1u << 20);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->damaged, log_index{6});

  // Headers of every entry, the damaged one included (its header is intact).
  std::vector<std::uint64_t> seen;
  ASSERT_TRUE(log->for_each_header(log_index{1}, log_index{7}, [&](log_index i, std::span<const std::uint8_t> h) {
    EXPECT_EQ(h.size(), kBatchHeaderSize);
    EXPECT_EQ(BatchView(h).type(), BatchType::data);
    seen.push_back(i.value);
  }));
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7}));
}

}  // namespace
}  // namespace quorumq::storage::test
