#include "quorumq/protocol/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace quorumq {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

std::uint32_t crc_table(std::uint32_t crc, const unsigned char* p, std::size_t n) noexcept {
  crc = ~crc;
  while (n--) crc = kTable[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
// One crc32 instruction has a latency of 3 cycles but a throughput of one per cycle, so one
// dependency chain runs at a third of the speed the CPU allows. Long buffers are therefore cut
// into three equal blocks whose CRCs run interleaved, then joined: the CRC state after
// A||B equals shift(state after A, |B|) ^ (state of B alone from 0), where shift() feeds |B|
// zero bytes, a linear map precomputed per block size as four byte tables.
__attribute__((target("sse4.2"))) std::uint32_t chain(std::uint32_t c32, const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t c = c32;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  c32 = static_cast<std::uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

struct Shift {
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  __attribute__((target("sse4.2"))) explicit Shift(std::size_t bytes) {
    std::array<std::uint32_t, 32> bit{};
    for (int b = 0; b < 32; ++b) {
      std::uint64_t c = std::uint32_t{1} << b;
      for (std::size_t i = 0; i < bytes / 8; ++i) c = _mm_crc32_u64(c, 0);
      bit[static_cast<std::size_t>(b)] = static_cast<std::uint32_t>(c);
    }
    for (std::size_t k = 0; k < 4; ++k)
      for (std::uint32_t v = 0; v < 256; ++v) {
        std::uint32_t x = 0;
        for (std::size_t i = 0; i < 8; ++i)
          if (v & (1u << i)) x ^= bit[8 * k + i];
        t[k][v] = x;
      }
  }
  std::uint32_t operator()(std::uint32_t c) const noexcept {
    return t[0][c & 0xFF] ^ t[1][(c >> 8) & 0xFF] ^ t[2][(c >> 16) & 0xFF] ^ t[3][c >> 24];
  }
};

template <std::size_t kBlock>
__attribute__((target("sse4.2"))) std::uint32_t three_blocks(std::uint32_t c, const unsigned char* p) noexcept {
  static const Shift shift(kBlock);
  std::uint64_t a = c, b = 0, d = 0;
  const unsigned char* pb = p + kBlock;
  const unsigned char* pd = p + 2 * kBlock;
  for (std::size_t i = 0; i < kBlock; i += 8) {
    std::uint64_t va, vb, vd;
    std::memcpy(&va, p + i, 8);
    std::memcpy(&vb, pb + i, 8);
    std::memcpy(&vd, pd + i, 8);
    a = _mm_crc32_u64(a, va);
    b = _mm_crc32_u64(b, vb);
    d = _mm_crc32_u64(d, vd);
  }
  std::uint32_t r = shift(static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b);
  return shift(r) ^ static_cast<std::uint32_t>(d);
}

__attribute__((target("sse4.2"))) std::uint32_t crc_hw(std::uint32_t crc, const unsigned char* p,
                                                         std::size_t n) noexcept {
  std::uint32_t c = ~crc;
  constexpr std::size_t kLong = 4096, kShort = 256;
  while (n >= 3 * kLong) {
    c = three_blocks<kLong>(c, p);
    p += 3 * kLong;
    n -= 3 * kLong;
  }
  while (n >= 3 * kShort) {
    c = three_blocks<kShort>(c, p);
    p += 3 * kShort;
    n -= 3 * kShort;
  }
  return ~chain(c, p, n);
}

bool have_sse42() noexcept {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
}
const bool kHaveHw = have_sse42();
#endif

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__)
  if (kHaveHw) return crc_hw(crc, p, size);
#endif
  return crc_table(crc, p, size);
}

}  // namespace quorumq
