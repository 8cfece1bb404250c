#include "kafka_compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

namespace quorumq::broker::kafka {

namespace {

// The output buffer: grows in steps as the decoder fills it, never past max_out + 1 bytes (the
// extra byte tells "more than the limit" from "exactly the limit").
class Output {
 public:
  Output(std::vector<std::uint8_t>& v, std::size_t max_out, std::size_t in_size)
      : v_(v), cap_(max_out == std::numeric_limits<std::size_t>::max() ? max_out : max_out + 1) {
    v_.clear();
    // A first guess from the input (typical ratios are below 8), at least 64 KiB.
    grow_to(std::min(cap_, std::max<std::size_t>(64 << 10, in_size < (cap_ >> 3) ? in_size * 8 : cap_)));
  }
  // Room to write at `used` (grows if full); false once the buffer is at its cap and full.
  bool make_room() {
    if (used < v_.size()) return true;
    if (v_.size() >= cap_) return false;
    grow_to(v_.size() > cap_ / 2 ? cap_ : std::max<std::size_t>(v_.size() * 2, 64 << 10));
    return true;
  }
  std::uint8_t* at() { return v_.data() + used; }
  std::size_t room() const { return v_.size() - used; }
  bool over(std::size_t max_out) const { return used > max_out; }
  void finish() { v_.resize(used); }

  std::size_t used = 0;

 private:
  // reserve() first: resize() alone may allocate up to twice the old size, past the cap.
  void grow_to(std::size_t n) {
    if (v_.capacity() < n) v_.reserve(n);
    v_.resize(n);
  }

  std::vector<std::uint8_t>& v_;
  std::size_t cap_;
};

Decompressed too_large(std::string& why, const char* codec, std::size_t max_out) {
  why = std::string(codec) + " records decompress to more than " + std::to_string(max_out) +
        " bytes (the topic's max.message.bytes, else --max-message-bytes)";
  return Decompressed::too_large;
}
Decompressed corrupt(std::string& why, std::string what) {
  why = std::move(what);
  return Decompressed::corrupt;
}

// ---- gzip ---------------------------------------------------------------------------------
Decompressed gunzip(std::span<const std::uint8_t> in, std::size_t max_out, std::vector<std::uint8_t>& v,
                    std::string& why) {
  if (in.size() > std::numeric_limits<uInt>::max()) return corrupt(why, "gzip input larger than zlib takes at once");
  z_stream z{};
  // 15 + 32: a 32 KiB window, gzip or zlib header detected (as librdkafka does).
  if (inflateInit2(&z, 15 + 32) != Z_OK) return corrupt(why, "gzip: zlib could not start (out of memory?)");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  Output out(v, max_out, in.size());
  for (;;) {
    if (!out.make_room()) return too_large(why, "gzip", max_out);
    const uInt room = static_cast<uInt>(std::min<std::size_t>(out.room(), std::numeric_limits<uInt>::max()));
    z.next_out = out.at();
    z.avail_out = room;
    const int r = inflate(&z, Z_NO_FLUSH);
    out.used += room - z.avail_out;
    if (out.over(max_out)) return too_large(why, "gzip", max_out);
    if (r == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      if (inflateReset(&z) != Z_OK) return corrupt(why, "gzip: zlib could not reset");
      continue;  // another member follows
    }
    if (r == Z_OK) continue;
    if (r == Z_BUF_ERROR && z.avail_out == 0) continue;  // output full: grow
    if (r == Z_BUF_ERROR) return corrupt(why, "gzip data is truncated");
    return corrupt(why, std::string("gzip data is corrupt: ") + (z.msg ? z.msg : "zlib error " + std::to_string(r)));
  }
  out.finish();
  return Decompressed::ok;
}

// ---- snappy -------------------------------------------------------------------------------
constexpr std::uint8_t kXerialMagic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr std::size_t kXerialHeader = 16;  // magic, int32 version, int32 compatible version

// One raw snappy block appended to v (v.size() grows by its length, at most to max_out).
Decompressed unsnappy_block(std::span<const std::uint8_t> in, std::size_t max_out, std::vector<std::uint8_t>& v,
                            std::string& why) {
  const char* p = reinterpret_cast<const char*>(in.data());
  std::size_t n = 0;
  if (!snappy::GetUncompressedLength(p, in.size(), &n)) return corrupt(why, "snappy block has no valid length preamble");
  // The declared length is checked against the limit before anything is allocated for it; the
  // decoder then fills exactly that many bytes or fails.
  if (n > max_out - v.size()) return too_large(why, "snappy", max_out);
  const std::size_t at = v.size();
  // reserve() first: resize() alone may allocate up to twice the old size, past the limit.
  if (v.capacity() < at + n) v.reserve(std::min(max_out, std::max(at + n, 2 * v.capacity())));
  v.resize(at + n);
  if (!snappy::RawUncompress(p, in.size(), reinterpret_cast<char*>(v.data() + at)))
    return corrupt(why, "snappy data is corrupt or truncated");
  return Decompressed::ok;
}

Decompressed unsnappy(std::span<const std::uint8_t> in, std::size_t max_out, std::vector<std::uint8_t>& v,
                      std::string& why) {
  v.clear();
  if (in.size() < kXerialHeader || std::memcmp(in.data(), kXerialMagic, sizeof kXerialMagic) != 0)
    return unsnappy_block(in, max_out, v, why);  // raw snappy (librdkafka)
  std::size_t at = kXerialHeader;
  if (at == in.size()) return corrupt(why, "snappy (xerial) stream has no blocks");
  while (at < in.size()) {
    if (in.size() - at < 4) return corrupt(why, "snappy (xerial) block length is truncated");
    const std::uint32_t len = (std::uint32_t{in[at]} << 24) | (std::uint32_t{in[at + 1]} << 16) |
                              (std::uint32_t{in[at + 2]} << 8) | std::uint32_t{in[at + 3]};
    at += 4;
    if (len == 0 || len > in.size() - at)
      return corrupt(why, "snappy (xerial) block of " + std::to_string(static_cast<std::int32_t>(len)) +
                              " bytes does not fit the data");
    if (auto r = unsnappy_block(in.subspan(at, len), max_out, v, why); r != Decompressed::ok) return r;
    at += len;
  }
  return Decompressed::ok;
}

// ---- lz4 ----------------------------------------------------------------------------------
Decompressed unlz4(std::span<const std::uint8_t> in, std::size_t max_out, std::vector<std::uint8_t>& v,
                   std::string& why) {
  LZ4F_dctx* raw = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw, LZ4F_VERSION)))
    return corrupt(why, "lz4: could not start (out of memory?)");
  std::unique_ptr<LZ4F_dctx, LZ4F_errorCode_t (*)(LZ4F_dctx*)> guard(raw, LZ4F_freeDecompressionContext);
  Output out(v, max_out, in.size());
  std::size_t at = 0;
  for (;;) {
    if (!out.make_room()) return too_large(why, "lz4", max_out);
    std::size_t dst = out.room(), src = in.size() - at;
    const std::size_t r = LZ4F_decompress(raw, out.at(), &dst, in.data() + at, &src, nullptr);
    if (LZ4F_isError(r)) return corrupt(why, std::string("lz4 data is corrupt: ") + LZ4F_getErrorName(r));
    out.used += dst;
    at += src;
    if (out.over(max_out)) return too_large(why, "lz4", max_out);
    if (r != 0 && src == 0 && dst == 0 && at < in.size()) return corrupt(why, "lz4 decoder made no progress");
    if (r == 0 && at == in.size()) break;  // the last frame is complete
    if (r == 0) continue;                  // a frame ended, another follows (the context is reset)
    // The frame is not complete: with all input read and room left, the decoder has given all it
    // can and wants bytes that are not there.
    if (at == in.size() && out.room() > 0) return corrupt(why, "lz4 data is truncated");
  }
  out.finish();
  return Decompressed::ok;
}

// ---- zstd ---------------------------------------------------------------------------------
// Largest window a frame may ask for: the limit rounded up to a power of two, at least 8 MiB
// (what levels up to 19 use when the producer streams without a content size), at most
// zstd's own default limit of 128 MiB.
int zstd_window_log(std::size_t max_out) {
  int log = 23;
  while (log < 27 && (std::size_t{1} << log) < max_out) ++log;
  return log;
}

Decompressed unzstd(std::span<const std::uint8_t> in, std::size_t max_out, std::vector<std::uint8_t>& v,
                    std::string& why) {
  std::unique_ptr<ZSTD_DCtx, std::size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!d) return corrupt(why, "zstd: could not start (out of memory?)");
  const int wlog = zstd_window_log(max_out);
  if (ZSTD_isError(ZSTD_DCtx_setParameter(d.get(), ZSTD_d_windowLogMax, wlog)))
    return corrupt(why, "zstd: could not set the window limit");
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  Output out(v, max_out, in.size());
  for (;;) {
    if (!out.make_room()) return too_large(why, "zstd", max_out);
    ZSTD_outBuffer ob{out.at(), out.room(), 0};
    const std::size_t in_before = ib.pos;
    const std::size_t r = ZSTD_decompressStream(d.get(), &ob, &ib);
    if (ZSTD_isError(r)) {
      if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
        return corrupt(why, "zstd frame asks for a window larger than " + std::to_string(std::size_t{1} << wlog) +
                                " bytes (compress with a level of 19 or less)");
      return corrupt(why, std::string("zstd data is corrupt: ") + ZSTD_getErrorName(r));
    }
    out.used += ob.pos;
    if (out.over(max_out)) return too_large(why, "zstd", max_out);
    if (r != 0 && ib.pos == in_before && ob.pos == 0 && ib.pos < ib.size)
      return corrupt(why, "zstd decoder made no progress");
    if (r == 0 && ib.pos == ib.size) break;  // the last frame is complete and flushed
    // Not complete: with all input read and room left, the decoder has flushed all it can and
    // wants bytes that are not there.
    if (ib.pos == ib.size && ob.pos < ob.size) return corrupt(why, "zstd data is truncated");
  }
  out.finish();
  return Decompressed::ok;
}

}  // namespace

std::string codec_name(int codec) {
  switch (static_cast<Codec>(codec)) {
    case Codec::none: return "none";
    case Codec::gzip: return "gzip";
    case Codec::snappy: return "snappy";
    case Codec::lz4: return "lz4";
    case Codec::zstd: return "zstd";
  }
  return "codec " + std::to_string(codec);
}

Decompressed decompress(int codec, std::span<const std::uint8_t> in, std::size_t max_out, std::vector<std::uint8_t>& out,
                        std::string& why) {
  out.clear();
  if (codec < 1 || codec > 4) {
    why = codec_name(codec) + " is not a Kafka compression codec (1 gzip, 2 snappy, 3 lz4, 4 zstd)";
    return Decompressed::unknown_codec;
  }
  if (in.empty()) return corrupt(why, codec_name(codec) + " records section is empty");
  Decompressed r = Decompressed::ok;
  switch (static_cast<Codec>(codec)) {
    case Codec::gzip: r = gunzip(in, max_out, out, why); break;
    case Codec::snappy: r = unsnappy(in, max_out, out, why); break;
    case Codec::lz4: r = unlz4(in, max_out, out, why); break;
    case Codec::zstd: r = unzstd(in, max_out, out, why); break;
    case Codec::none: break;
  }
  if (r != Decompressed::ok) out.clear();
  return r;
}

}  // namespace quorumq::broker::kafka
