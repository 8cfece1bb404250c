#include "quorumq/protocol/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace quorumq {
namespace {

// Bitwise reference, independent of both production paths (SSE4.2 and table). The table path
// is internal to crc32c.cc and only taken on CPUs without SSE4.2, so it is reached here only on
// such machines; comparing against this reference covers whichever path the CPU selects.
std::uint32_t crc_reference(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, crc32c_knownVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  std::vector<std::uint8_t> zeros(32, 0), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<std::uint8_t>(i);
    dec[i] = static_cast<std::uint8_t>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c(dec.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32c, crc32c_matchesReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(12345);
  std::vector<std::uint8_t> buf(300);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (std::size_t off = 0; off < 8; ++off)
    for (std::size_t n = 0; n + off <= 280; n += 7)
      ASSERT_EQ(crc32c(buf.data() + off, n), crc_reference(buf.data() + off, n)) << off << " " << n;
}

// Long buffers are cut into three interleaved blocks (4 KiB and 256 B): lengths around those
// cuts, at every alignment, and extend() across them.
TEST(Crc32c, crc32c_matchesReferenceAcrossTheInterleavedBlockSizes) {
  std::mt19937 rng(777);
  std::vector<std::uint8_t> buf(3 * 3 * 4096 + 64);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  const std::size_t lengths[] = {767, 768, 769, 1535, 1536, 1543, 3 * 4096 - 1, 3 * 4096, 3 * 4096 + 1,
                                 3 * 4096 + 768, 2 * 3 * 4096 + 3 * 256 + 5, 3 * 3 * 4096};
  for (std::size_t off = 0; off < 8; ++off)
    for (std::size_t n : lengths) {
      ASSERT_EQ(crc32c(buf.data() + off, n), crc_reference(buf.data() + off, n)) << off << " " << n;
      const std::size_t cut = n / 3 + off;
      ASSERT_EQ(crc32c_extend(crc32c(buf.data() + off, cut), buf.data() + off + cut, n - cut),
                crc_reference(buf.data() + off, n)) << off << " " << n << " cut " << cut;
    }
}

TEST(Crc32c, extend_equalsOneShot) {
  const char* s = "the quick brown fox jumps over the lazy dog";
  const std::size_t n = std::strlen(s);
  for (std::size_t cut = 0; cut <= n; ++cut)
    EXPECT_EQ(crc32c_extend(crc32c(s, cut), s + cut, n - cut), crc32c(s, n)) << cut;
}

}  // namespace
}  // namespace quorumq
