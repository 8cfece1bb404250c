// Decompression of a Kafka RecordBatch v2's records section (the bytes after the 61-byte header)
// for the codecs in attributes bits 0-2: 1 gzip (zlib), 2 snappy (libsnappy), 3 lz4 (liblz4's
// frame format), 4 zstd (libzstd). Pure functions over bytes, no state between calls.
//
// Bomb defence: the output never grows past `max_out` (+1 byte, to tell "exactly the limit"
// from "more"); it grows in steps as the decoder produces bytes, so sizes declared inside the
// compressed data (gzip's ISIZE, zstd's and lz4's content size, snappy's preamble) are never
// trusted for an allocation beyond the limit. zstd frames asking for a window larger than the
// limit allows are refused before the decoder allocates it.
//
// What each codec accepts (as Kafka's broker and librdkafka do):
// - gzip: gzip-wrapped deflate (a zlib wrapper too); several members back to back.
// - snappy: the xerial framing Java clients and kafka-python send ("\x82SNAPPY\0", version,
//   compatible version, then blocks of [int32 big-endian length][raw snappy block]), or one raw
//   snappy block as librdkafka may send.
// - lz4: LZ4 frames (header and content checksums checked when present); several back to back.
// - zstd: zstd frames, with or without a content size; several back to back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace quorumq::broker::kafka {

enum class Codec : int { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };

enum class Decompressed {
  ok,
  unknown_codec,  // not 1-4
  corrupt,        // not valid data for the codec, truncated, trailing bytes, checksum mismatch
  too_large,      // would decompress to more than max_out bytes
};

// "gzip", "snappy", "lz4", "zstd", or "codec N".
std::string codec_name(int codec);

// Decompresses `in` with `codec` into `out` (replaced). On failure `why` says what was wrong and
// `out` holds nothing useful; it never held more than max_out + 1 bytes.
Decompressed decompress(int codec, std::span<const std::uint8_t> in, std::size_t max_out, std::vector<std::uint8_t>& out,
                        std::string& why);

}  // namespace quorumq::broker::kafka
