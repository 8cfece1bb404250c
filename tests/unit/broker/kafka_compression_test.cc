// Kafka produce compression (broker/src/kafka/kafka_compression.h): each codec's data, made here
// by the codec libraries themselves (zlib, snappy, liblz4, libzstd), converts to the same quorumq
// batch as the uncompressed records; decompression bombs stop at the limit without a buffer past
// it; truncated, damaged and garbage data is CORRUPT_MESSAGE; codecs 5-7 are
// UNSUPPORTED_COMPRESSION_TYPE. kafka_batch_oracle.py checks batches kafka-python compresses.
#include <gtest/gtest.h>

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <random>
#include <string>

#include "kafka_batch.h"
#include "kafka_compression.h"
#include "quorumq/protocol/crc32c.h"

namespace quorumq::broker::kafka {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::size_t kGiB = std::size_t{1} << 30;
constexpr std::size_t kMiB = std::size_t{1} << 20;

// ---- compressors, straight from the libraries -------------------------------------------------
// gzip (windowBits 15 + 16); the input `chunk` fed `times` times, so a 1 GiB input never exists.
Bytes gzip(std::span<const std::uint8_t> chunk, std::size_t times = 1, int level = 6) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out;
  std::vector<std::uint8_t> buf(256 << 10);
  auto drain = [&](int flush) {
    int r;
    do {
      z.next_out = buf.data();
      z.avail_out = static_cast<uInt>(buf.size());
      r = deflate(&z, flush);
      out.insert(out.end(), buf.data(), buf.data() + (buf.size() - z.avail_out));
    } while (z.avail_out == 0 || (flush == Z_FINISH && r != Z_STREAM_END));
  };
  for (std::size_t i = 0; i < times; ++i) {
    z.next_in = const_cast<Bytef*>(chunk.data());
    z.avail_in = static_cast<uInt>(chunk.size());
    drain(Z_NO_FLUSH);
  }
  z.avail_in = 0;
  drain(Z_FINISH);
  deflateEnd(&z);
  return out;
}

Bytes snappy_raw(std::span<const std::uint8_t> in) {
  std::string out;
  snappy::Compress(reinterpret_cast<const char*>(in.data()), in.size(), &out);
  return Bytes(out.begin(), out.end());
}

// xerial framing as Java clients and kafka-python write it: the 16-byte header, then blocks of
// [int32 big-endian length][raw snappy of at most `block` input bytes].
void put_be32(Bytes& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}
Bytes xerial_header() {
  Bytes out{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
  put_be32(out, 1);
  put_be32(out, 1);
  return out;
}
Bytes snappy_xerial(std::span<const std::uint8_t> in, std::size_t block = 32 << 10) {
  Bytes out = xerial_header();
  for (std::size_t at = 0; at < in.size(); at += block) {
    const Bytes b = snappy_raw(in.subspan(at, std::min(block, in.size() - at)));
    put_be32(out, static_cast<std::uint32_t>(b.size()));
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

// An LZ4 frame (independent blocks, as Kafka wants), streamed chunk by chunk.
Bytes lz4(std::span<const std::uint8_t> chunk, std::size_t times = 1, bool content_checksum = true,
          std::uint64_t content_size = 0) {
  LZ4F_cctx* c = nullptr;
  EXPECT_FALSE(LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)));
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = content_checksum ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum;
  prefs.frameInfo.contentSize = content_size;
  Bytes out(LZ4F_compressBound(chunk.size(), &prefs) + LZ4F_HEADER_SIZE_MAX);
  std::size_t used = LZ4F_compressBegin(c, out.data(), out.size(), &prefs);
  EXPECT_FALSE(LZ4F_isError(used));
  for (std::size_t i = 0; i < times; ++i) {
    out.resize(used + LZ4F_compressBound(chunk.size(), &prefs));
    const std::size_t n = LZ4F_compressUpdate(c, out.data() + used, out.size() - used, chunk.data(), chunk.size(), nullptr);
    EXPECT_FALSE(LZ4F_isError(n));
    used += n;
  }
  out.resize(used + LZ4F_compressBound(0, &prefs));
  const std::size_t n = LZ4F_compressEnd(c, out.data() + used, out.size() - used, nullptr);
  EXPECT_FALSE(LZ4F_isError(n));
  out.resize(used + n);
  LZ4F_freeCompressionContext(c);
  return out;
}

// A zstd frame, streamed; with `pledged` the frame header carries the content size, without it
// (as Java's ZstdOutputStream writes) it does not.
Bytes zstd(std::span<const std::uint8_t> chunk, std::size_t times = 1, bool pledged = true, int level = 3) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, pledged ? 1 : 0);
  if (pledged) ZSTD_CCtx_setPledgedSrcSize(c, chunk.size() * times);
  Bytes out;
  std::vector<std::uint8_t> buf(ZSTD_CStreamOutSize());
  for (std::size_t i = 0; i <= times; ++i) {
    const bool last = i == times;
    ZSTD_inBuffer ib{chunk.data(), last ? 0 : chunk.size(), 0};
    std::size_t left;
    do {
      ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
      left = ZSTD_compressStream2(c, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
      EXPECT_FALSE(ZSTD_isError(left)) << ZSTD_getErrorName(left);
      out.insert(out.end(), buf.data(), buf.data() + ob.pos);
    } while (last ? left != 0 : ib.pos < ib.size);
  }
  ZSTD_freeCCtx(c);
  return out;
}

// ---- batches ----------------------------------------------------------------------------------
// Many records, each different, compressible like real traffic (about 150 KiB of records).
Bytes plain_kafka_batch() {
  BatchBuilder b;
  std::mt19937 rng(7);
  for (int i = 0; i < 1500; ++i) {
    std::string value = "{\"order\":" + std::to_string(i) + ",\"customer\":\"c" + std::to_string(rng() % 97) +
                        "\",\"amount\":" + std::to_string(rng() % 100000) + ",\"note\":\"";
    for (int k = 0; k < 40; ++k) value.push_back(static_cast<char>('a' + rng() % 26));
    value += "\"}";
    const std::vector<std::pair<std::string, std::string>> h{{"trace", std::to_string(rng())}};
    b.add("key-" + std::to_string(i % 50), value, 1700000000000 + i, h);
  }
  auto q = b.finish(ProducerInfo{42, 1, 7});
  stamp_batch(q, 0, 1);
  Writer w;
  EXPECT_TRUE(append_as_kafka(BatchView(q), w));
  return w.bytes();
}
std::span<const std::uint8_t> records_of(const Bytes& kafka_batch) {
  return std::span<const std::uint8_t>(kafka_batch).subspan(kRecordBatchHeaderSize);
}

// `plain`'s header over `records` (compressed with `codec`), lengths and CRC-32C made right.
Bytes with_records(const Bytes& plain, int codec, std::span<const std::uint8_t> records) {
  Bytes k(kRecordBatchHeaderSize + records.size());
  std::memcpy(k.data(), plain.data(), kRecordBatchHeaderSize);
  if (!records.empty()) std::memcpy(k.data() + kRecordBatchHeaderSize, records.data(), records.size());
  const auto len = static_cast<std::uint32_t>(k.size() - 12);
  for (int i = 0; i < 4; ++i) k[8 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (8 * (3 - i)));
  k[22] = static_cast<std::uint8_t>((k[22] & ~0x7) | codec);
  const std::uint32_t c = crc32c(k.data() + 21, k.size() - 21);
  for (int i = 0; i < 4; ++i) k[17 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(c >> (8 * (3 - i)));
  return k;
}

struct Compressed {
  const char* name;
  int codec;
  Bytes data;
};
std::vector<Compressed> every_codec(std::span<const std::uint8_t> r) {
  return {{"gzip", 1, gzip(r)},
          {"gzip level 1", 1, gzip(r, 1, 1)},
          {"snappy xerial", 2, snappy_xerial(r)},
          {"snappy raw", 2, snappy_raw(r)},
          {"lz4", 3, lz4(r)},
          {"lz4 with content size, no checksum", 3, lz4(r, 1, false, r.size())},
          {"zstd with content size", 4, zstd(r)},
          {"zstd without content size", 4, zstd(r, 1, false)},
          {"zstd level 19", 4, zstd(r, 1, false, 19)}};
}

TEST(KafkaCompression, eachCodecConvertsToTheSameBatchAsUncompressed) {
  const Bytes plain = plain_kafka_batch();
  std::vector<std::uint8_t> want;
  ConvertError err;
  ASSERT_TRUE(to_quorumq(plain, want, err, 4 * kMiB)) << err.message;
  for (const auto& c : every_codec(records_of(plain))) {
    SCOPED_TRACE(c.name);
    EXPECT_LT(c.data.size(), records_of(plain).size());  // it did compress
    std::vector<std::uint8_t> got;
    ASSERT_TRUE(to_quorumq(with_records(plain, c.codec, c.data), got, err, 4 * kMiB)) << err.message;
    EXPECT_EQ(got, want) << "stored uncompressed, record for record";
    EXPECT_EQ(BatchView(got).validate(), BatchError::ok);
  }
}

// Back-to-back gzip members, zstd frames and lz4 frames decode as one stream (as gzip -d, zstd
// -d and lz4 -d do); a xerial stream of many small blocks too.
TEST(KafkaCompression, concatenatedFramesAndSmallBlocks) {
  const Bytes plain = plain_kafka_batch();
  const auto r = records_of(plain);
  const auto half = r.size() / 2;
  auto cat = [](Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::vector<Compressed> cases{
      {"gzip members", 1, cat(gzip(r.first(half)), gzip(r.subspan(half)))},
      {"lz4 frames", 3, cat(lz4(r.first(half)), lz4(r.subspan(half)))},
      {"zstd frames", 4, cat(zstd(r.first(half)), zstd(r.subspan(half), 1, false))},
      {"xerial 100-byte blocks", 2, snappy_xerial(r, 100)}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::uint8_t> out;
    std::string why;
    ASSERT_EQ(decompress(c.codec, c.data, 4 * kMiB, out, why), Decompressed::ok) << why;
    EXPECT_TRUE(out.size() == r.size() && std::equal(out.begin(), out.end(), r.begin()));
  }
}

// The limit is exact: records of N bytes decompress with a limit of N, not N - 1.
TEST(KafkaCompression, limitIsExact) {
  const Bytes plain = plain_kafka_batch();
  const auto r = records_of(plain);
  for (const auto& c : every_codec(r)) {
    SCOPED_TRACE(c.name);
    std::vector<std::uint8_t> out;
    std::string why;
    EXPECT_EQ(decompress(c.codec, c.data, r.size(), out, why), Decompressed::ok) << why;
    EXPECT_EQ(out.size(), r.size());
    std::vector<std::uint8_t> fresh;
    EXPECT_EQ(decompress(c.codec, c.data, r.size() - 1, fresh, why), Decompressed::too_large);
    EXPECT_LE(fresh.capacity(), r.size()) << "never a buffer past the limit + 1";
    ConvertError err;
    EXPECT_FALSE(to_quorumq(with_records(plain, c.codec, c.data), out, err, r.size() - 1));
    EXPECT_EQ(err.code, BatchCheck::message_too_large) << err.message;
  }
}

// Decompression bombs: 1 GiB of zeros (256 MiB for snappy, whose best ratio is about 21:1) in
// each codec. Each is refused with MESSAGE_TOO_LARGE as soon as the output passes the 1 MiB
// limit; the output buffer never grew past it, whatever size the data declares.
TEST(KafkaCompression, bombsStopAtTheLimit) {
  const std::vector<std::uint8_t> zeros(kMiB);
  Bytes xerial = xerial_header();
  {
    const Bytes block = snappy_raw(zeros);
    for (int i = 0; i < 256; ++i) {
      put_be32(xerial, static_cast<std::uint32_t>(block.size()));
      xerial.insert(xerial.end(), block.begin(), block.end());
    }
  }
  // Raw snappy whose preamble declares 1 GiB (varint 0x80 0x80 0x80 0x80 0x04) over a few
  // literal bytes: refused from the preamble, before anything is allocated for it.
  const Bytes snappy_declares_1gib{0x80, 0x80, 0x80, 0x80, 0x04, 0x08, 'a', 'b', 'c'};
  const std::vector<Compressed> bombs{
      {"gzip 1 GiB", 1, gzip(zeros, 1024, 1)},
      {"snappy xerial 256 MiB", 2, xerial},
      {"snappy raw declaring 1 GiB", 2, snappy_declares_1gib},
      {"lz4 1 GiB declaring its size", 3, lz4(zeros, 1024, true, kGiB)},
      {"lz4 1 GiB", 3, lz4(zeros, 1024)},
      {"zstd 1 GiB declaring its size", 4, zstd(zeros, 1024, true, 1)},
      {"zstd 1 GiB", 4, zstd(zeros, 1024, false, 1)}};
  const Bytes plain = plain_kafka_batch();
  for (const auto& b : bombs) {
    SCOPED_TRACE(b.name + (" (" + std::to_string(b.data.size()) + " bytes compressed)"));
    std::vector<std::uint8_t> out;
    std::string why;
    EXPECT_EQ(decompress(b.codec, b.data, kMiB, out, why), Decompressed::too_large);
    EXPECT_NE(why.find("more than 1048576 bytes"), std::string::npos) << why;
    EXPECT_LE(out.capacity(), kMiB + 1);
    ConvertError err;
    EXPECT_FALSE(to_quorumq(with_records(plain, b.codec, b.data), out, err, kMiB));
    EXPECT_EQ(err.code, BatchCheck::message_too_large) << err.message;
  }
}

// A zstd frame whose header asks for a 1 GiB window (with one raw byte of content) is refused
// before the decoder allocates the window.
TEST(KafkaCompression, zstdWindowLargerThanTheLimitAllowsIsRefused) {
  // magic, descriptor (no content size, not single segment), window 2^(10+20), one last raw block
  // of 1 byte.
  const Bytes frame{0x28, 0xB5, 0x2F, 0xFD, 0x00, 20 << 3, 0x09, 0x00, 0x00, 'x'};
  std::vector<std::uint8_t> out;
  std::string why;
  EXPECT_EQ(decompress(4, frame, kMiB, out, why), Decompressed::corrupt);
  EXPECT_NE(why.find("window larger than"), std::string::npos) << why;
  // The same frame with an 8 MiB window decodes.
  Bytes small = frame;
  small[5] = 13 << 3;
  EXPECT_EQ(decompress(4, small, kMiB, out, why), Decompressed::ok) << why;
  EXPECT_EQ(out, Bytes{'x'});
}

// Cut short anywhere, a compressed batch is CORRUPT_MESSAGE (the CRC made right, so the codec or
// the records behind it must notice); so is garbage, and a damaged byte never crashes.
TEST(KafkaCompression, truncatedDamagedAndGarbageDataIsCorrupt) {
  const Bytes plain = plain_kafka_batch();
  std::mt19937 rng(3);
  for (const auto& c : every_codec(records_of(plain))) {
    SCOPED_TRACE(c.name);
    ConvertError err;
    std::vector<std::uint8_t> out;
    for (std::size_t cut = 0; cut < c.data.size(); cut += 1 + c.data.size() / 97) {
      EXPECT_FALSE(to_quorumq(with_records(plain, c.codec, std::span(c.data).first(cut)), out, err, 4 * kMiB))
          << "cut at " << cut;
      EXPECT_EQ(err.code, BatchCheck::corrupt_message) << "cut at " << cut << ": " << err.message;
    }
    // The last byte too (a trailer, a checksum, an end mark or the last literal).
    EXPECT_FALSE(to_quorumq(with_records(plain, c.codec, std::span(c.data).first(c.data.size() - 1)), out, err,
                            4 * kMiB));
    EXPECT_EQ(err.code, BatchCheck::corrupt_message) << err.message;
    for (int i = 0; i < 300; ++i) {
      Bytes d = c.data;
      d[rng() % d.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
      if (to_quorumq(with_records(plain, c.codec, d), out, err, 4 * kMiB))
        EXPECT_EQ(BatchView(out).validate(), BatchError::ok);  // a damaged literal can still decode
      else
        EXPECT_NE(err.code, BatchCheck::ok);
    }
    Bytes garbage(4096);
    for (auto& g : garbage) g = static_cast<std::uint8_t>(rng());
    std::string why;
    EXPECT_EQ(decompress(c.codec, garbage, 4 * kMiB, out, why), Decompressed::corrupt);
    EXPECT_FALSE(why.empty());
    EXPECT_EQ(decompress(c.codec, {}, 4 * kMiB, out, why), Decompressed::corrupt);
  }
  // Trailing bytes after a complete gzip member or zstd frame are not ignored.
  const auto r = records_of(plain);
  for (auto [codec, data] : {std::pair{1, gzip(r)}, std::pair{4, zstd(r)}, std::pair{3, lz4(r)}}) {
    data.push_back(0x42);
    std::vector<std::uint8_t> out;
    std::string why;
    EXPECT_EQ(decompress(codec, data, 4 * kMiB, out, why), Decompressed::corrupt) << codec_name(codec);
  }
}

TEST(KafkaCompression, codecsFiveToSevenAreUnsupported) {
  const Bytes plain = plain_kafka_batch();
  for (int codec = 5; codec <= 7; ++codec) {
    ConvertError err;
    std::vector<std::uint8_t> out;
    EXPECT_FALSE(to_quorumq(with_records(plain, codec, records_of(plain)), out, err, 4 * kMiB));
    EXPECT_EQ(err.code, BatchCheck::unsupported_compression_type) << err.message;
    EXPECT_NE(err.message.find("codec " + std::to_string(codec)), std::string::npos) << err.message;
    std::string why;
    EXPECT_EQ(decompress(codec, records_of(plain), 4 * kMiB, out, why), Decompressed::unknown_codec);
  }
}

}  // namespace
}  // namespace quorumq::broker::kafka
