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
  auto bad = log->read(2, 1u << 20, 100);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::corrupt);
  EXPECT_NE(bad.error().message.find("orders-3"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("offset 2"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("CRC"), std::string::npos) << bad.error().message;
  EXPECT_EQ(log->read(3, 1u << 20, 100).error().code, errc::corrupt);
  // Batches before it are served (the read ends early), batches after it are served.
  auto head = log->read(0, 1u << 20, 100);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->batches, 1u);
  EXPECT_EQ(head->next_offset, 2);
  auto tail = log->read(4, 1u << 20, 100);
  ASSERT_TRUE(tail);
  EXPECT_EQ(records_of(tail->bytes), (std::vector<Rec>{{4, "last-0"}, {5, "last-1"}}));
  // Raft's path reports it too.
  auto es = log->entries(log_index{2}, log_index{2}, 1u << 20);
  ASSERT_FALSE(es);
  EXPECT_EQ(es.error().code, errc::corrupt);
  EXPECT_NE(es.error().message.find("orders-3"), std::string::npos);
  // The storage keeps working.
  EXPECT_EQ(append(*s, log, {data_batch("more", 1)}).base_offset, 6);
}

}  // namespace
}  // namespace quorumq::storage::test
